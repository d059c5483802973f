using System.Globalization;

namespace RLMServing.IO.Results;

/// <summary>
/// Marks an output folder as in use by this process (<c>.rlms.lock</c> holding the pid, the verb and the host), so a
/// second run into the same folder stops with "in use by pid N" instead of colliding with the first. A lock left by a
/// process that no longer runs (kill -9) is taken over, and so is one of another host, whose processes cannot be seen
/// from here (a requeued job on another node); shards of a sweep lock their own slice, not the shared folder.
/// </summary>
public sealed class FolderLock : IDisposable
{
    public const string FileName = ".rlms.lock";

    private static readonly List<FolderLock> Held = [];
    private readonly string _path;
    private bool _released;

    private FolderLock(string path) { _path = path; }

    /// <summary>Locks <paramref name="dir"/> (which must exist) for <paramref name="verb"/>, or one clear error naming the holder.</summary>
    /// <param name="fileName">The lock's name: <see cref="FileName"/>, or one per shard of a sweep sharing the folder.</param>
    public static FolderLock Acquire(string dir, string verb, string fileName = FileName)
    {
        var path = Path.Combine(dir, fileName);
        lock (Held)
            if (Held.FirstOrDefault(h => h._path == path && !h._released) is not null)
                throw new UserInputException($"{dir}: in use by this process already (pid {Environment.ProcessId})");
        for (int attempt = 0; attempt < 5; attempt++)
        {
            // Written whole under a private name and linked into place, so a reader never sees a lock without its pid.
            var tmp = TempFiles.For(path);
            try
            {
                File.WriteAllText(tmp, string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {TempFiles.Host} {verb}\n"));
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

            var (pid, host, holder) = Read(path);
            if (pid is int p && p != Environment.ProcessId && host == TempFiles.Host && TempFiles.IsAlive(p))
                throw new UserInputException($"{dir}: in use by pid {p} ({holder}); wait for it to finish or choose another --out");
            // The holder is gone (or the lock is unreadable): take it over.
            try { File.Delete(path); }
            catch (IOException) { }
        }
        throw new UserInputException($"{dir}: could not take its lock {path}; another run keeps taking it");
    }

    /// <summary>The lock's pid, host and verb ("PID HOST VERB..."; a lock without a host is this host's).</summary>
    private static (int? Pid, string Host, string Holder) Read(string path)
    {
        try
        {
            var parts = File.ReadAllText(path).Trim().Split(' ', 3);
            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) return (null, "", "");
            return parts.Length == 3 ? (pid, parts[1], "rlms " + parts[2]) : (pid, TempFiles.Host, parts.Length > 1 ? "rlms " + parts[1] : "rlms");
        }
        catch (IOException) { return (null, "", ""); }
        catch (UnauthorizedAccessException) { return (null, "", ""); }
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
        if (Read(_path) is { Pid: var pid, Host: var host } && pid == Environment.ProcessId && host == TempFiles.Host)
        {
            try { File.Delete(_path); }
            catch (IOException) { }
        }
    }
}
