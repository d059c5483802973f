using System.Globalization;

namespace RLMServing.IO.Results;

/// <summary>
/// Marks an output folder as in use by this process (<c>.rlms.lock</c> holding the pid and the verb), so a second run
/// into the same folder stops with "in use by pid N" instead of colliding with the first. A lock left by a process
/// that no longer runs (kill -9) is taken over.
/// </summary>
public sealed class FolderLock : IDisposable
{
    public const string FileName = ".rlms.lock";

    private static readonly List<FolderLock> Held = [];
    private readonly string _path;
    private bool _released;

    private FolderLock(string path) { _path = path; }

    /// <summary>Locks <paramref name="dir"/> (which must exist) for <paramref name="verb"/>, or one clear error naming the holder.</summary>
    public static FolderLock Acquire(string dir, string verb)
    {
        var path = Path.Combine(dir, FileName);
        lock (Held)
            if (Held.FirstOrDefault(h => h._path == path && !h._released) is not null)
                throw new UserInputException($"{dir}: in use by this process already (pid {Environment.ProcessId})");
        for (int attempt = 0; attempt < 5; attempt++)
        {
            // Written whole under a private name and linked into place, so a reader never sees a lock without its pid.
            var tmp = TempFiles.For(path);
            try
            {
                File.WriteAllText(tmp, string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {verb}\n"));
                try
                {
                    File.Move(tmp, path, overwrite: false);
                    var held = new FolderLock(path);
                    lock (Held) Held.Add(held);
                    return held;
                }
                catch (IOException) when (File.Exists(path)) { }
            }
            finally { TempFiles.Delete(tmp); }

            var (pid, holder) = Read(path);
            if (pid is int p && p != Environment.ProcessId && TempFiles.IsAlive(p))
                throw new UserInputException($"{dir}: in use by pid {p} ({holder}); wait for it to finish or choose another --out");
            // The holder is gone (or the lock is unreadable): take it over.
            try { File.Delete(path); }
            catch (IOException) { }
        }
        throw new UserInputException($"{dir}: could not take its lock {path}; another run keeps taking it");
    }

    private static (int? Pid, string Holder) Read(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            var parts = text.Split(' ', 2);
            return int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                ? (pid, parts.Length > 1 ? "rlms " + parts[1] : "rlms")
                : (null, "");
        }
        catch (IOException) { return (null, ""); }
        catch (UnauthorizedAccessException) { return (null, ""); }
    }

    /// <summary>Releases every lock this process holds (an interrupted run, on its way out).</summary>
    public static void ReleaseAll()
    {
        List<FolderLock> held;
        lock (Held) held = [.. Held];
        foreach (var h in held) h.Dispose();
    }

    public void Dispose()
    {
        if (_released) return;
        _released = true;
        lock (Held) Held.Remove(this);
        if (Read(_path).Pid == Environment.ProcessId)
        {
            try { File.Delete(_path); }
            catch (IOException) { }
        }
    }
}
