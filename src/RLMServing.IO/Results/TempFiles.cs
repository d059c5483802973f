using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace RLMServing.IO.Results;

/// <summary>
/// Temporary files beside an output, named per host and process (<c>.NAME.rlms-HOST-PID-N.tmp</c>) so two runs into
/// one folder never share one, remembered while they live so an interrupted run removes them, and swept on the next
/// run on the same host when the process that left them is gone (kill -9 runs no clean-up). Another host's
/// temporaries (shards of a sweep sharing a folder on a shared file system) are never touched: their process cannot
/// be seen from here.
/// </summary>
public static partial class TempFiles
{
    private static readonly ConcurrentDictionary<string, byte> Live = new(StringComparer.Ordinal);
    private static readonly ConcurrentStack<Action> Cleanups = new();
    private static long _counter;

    /// <summary>A fresh temporary path beside <paramref name="finalPath"/>, remembered until <see cref="Forget"/>.</summary>
    public static string For(string finalPath)
    {
        var full = Path.GetFullPath(finalPath);
        var dir = Path.GetDirectoryName(full)!;
        long n = Interlocked.Increment(ref _counter);
        var tmp = Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $".{Path.GetFileName(full)}.rlms-{Host}-{Environment.ProcessId}-{n}.tmp"));
        Live[tmp] = 0;
        return tmp;
    }

    /// <summary>The temporary file was moved into place or deleted.</summary>
    public static void Forget(string tmp) => Live.TryRemove(tmp, out _);

    /// <summary>Deletes a temporary file (if it is there) and forgets it.</summary>
    public static void Delete(string tmp)
    {
        try { if (File.Exists(tmp)) File.Delete(tmp); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        Forget(tmp);
    }

    /// <summary>Something else to undo when the run is interrupted (a folder this run created); returns its handle.</summary>
    public static IDisposable OnInterrupt(Action cleanup)
    {
        var entry = new Registration(cleanup);
        Cleanups.Push(entry.Run);
        return entry;
    }

    /// <summary>
    /// On an interrupt: deletes every live temporary file of this process and runs the registered clean-ups (newest
    /// first); returns how many temporary files were removed.
    /// </summary>
    public static int RemoveAllLive()
    {
        int removed = 0;
        foreach (var tmp in Live.Keys)
        {
            if (File.Exists(tmp)) removed++;
            Delete(tmp);
        }
        while (Cleanups.TryPop(out var cleanup))
        {
            try { cleanup(); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    /// <summary>
    /// Deletes temporary files in <paramref name="dir"/> (not below it) left by processes that no longer run;
    /// returns how many. Another live run's temporaries are left alone.
    /// </summary>
    /// <param name="pattern">Which temporaries to consider (a sweep shard: only its own configurations' parts).</param>
    public static int SweepStale(string dir, string pattern = ".*.tmp")
    {
        if (!Directory.Exists(dir)) return 0;
        int removed = 0;
        foreach (var f in Directory.EnumerateFiles(dir, pattern))
        {
            var m = TempName().Match(Path.GetFileName(f));
            if (!m.Success || !int.TryParse(m.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (m.Groups["host"].Success && m.Groups["host"].Value != Host) continue;
            if (pid == Environment.ProcessId || IsAlive(pid)) continue;
            try { File.Delete(f); removed++; }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    /// <summary>Whether a process with this id runs (on this machine).</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0) return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>This machine's name as temporary and lock files carry it: letters, digits and '-', at most 32.</summary>
    public static string Host { get; } = HostName();

    private static string HostName()
    {
        var name = new string(Environment.MachineName.Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '-').ToArray());
        return name.Length == 0 ? "host" : name[..Math.Min(name.Length, 32)];
    }

    // Our own names (.NAME.rlms-HOST-PID-N.tmp), and the older per-process names (.NAME.PID.tmp, .NAME.PID.GUID.tmp)
    // some writers used, which carry no host and are taken to be this host's.
    [GeneratedRegex(@"\.(?:rlms-(?<host>[A-Za-z0-9-]+)-(?<pid>\d+)-\d+|(?<pid>\d+)(?:\.[0-9a-f]{32})?)\.tmp$")]
    private static partial Regex TempName();

    private sealed class Registration(Action cleanup) : IDisposable
    {
        private int _done;
        public void Run() { if (Interlocked.Exchange(ref _done, 1) == 0) cleanup(); }
        public void Dispose() => Interlocked.Exchange(ref _done, 1);
    }
}
