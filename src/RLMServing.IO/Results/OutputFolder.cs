namespace RLMServing.IO.Results;

/// <summary>
/// An output folder a run writes into: checked (<see cref="OutputPath.CheckFolder"/>), created if new, locked
/// against a second run (<see cref="FolderLock"/>), and cleared of temporaries that dead runs left. Disposed without
/// <see cref="Commit"/> (the run failed or was interrupted), a folder this run created and left empty is removed.
/// </summary>
public sealed class OutputFolder : IDisposable
{
    private readonly FolderLock _lock;
    private readonly IDisposable _onInterrupt;
    private readonly bool _created;
    private bool _committed, _disposed;

    private OutputFolder(string path, bool created, FolderLock folderLock)
    {
        Path = path;
        _created = created;
        _lock = folderLock;
        _onInterrupt = TempFiles.OnInterrupt(RemoveIfUnused);
    }

    /// <summary>The folder's full path.</summary>
    public string Path { get; }

    /// <param name="lockName">The lock's file name: one per shard when shards of a sweep share the folder.</param>
    public static OutputFolder Open(string path, string option, string verb, string lockName = FolderLock.FileName)
    {
        var full = OutputPath.CheckFolder(path, option);
        bool created = !Directory.Exists(full);
        Directory.CreateDirectory(full);
        FolderLock held;
        try { held = FolderLock.Acquire(full, verb, lockName); }
        catch
        {
            if (created) TryDeleteEmpty(full);
            throw;
        }
        TempFiles.SweepStale(full);
        return new OutputFolder(full, created, held);
    }

    /// <summary>The run finished: keep the folder whatever it holds.</summary>
    public void Commit() => _committed = true;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _onInterrupt.Dispose();
        _lock.Dispose();
        if (!_committed) RemoveIfUnused();
    }

    private void RemoveIfUnused()
    {
        _lock.Dispose();
        if (_created) TryDeleteEmpty(Path);
    }

    /// <summary>Deletes a folder tree that holds no file (only empty folders); anything with a file in it stays.</summary>
    internal static void TryDeleteEmpty(string dir)
    {
        try
        {
            if (!Directory.Exists(dir) || Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Any()) return;
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
