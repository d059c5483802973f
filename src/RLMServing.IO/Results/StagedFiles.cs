namespace RLMServing.IO.Results;

/// <summary>
/// The files of one result written under temporary names and moved into place together by <see cref="Commit"/>, so
/// a run that fails or is interrupted part way (a variant after others, a full disk) leaves none of them: never a
/// variant's folder without the comparison.json that goes with it. Folders it had to create are removed again.
/// </summary>
public sealed class StagedFiles : IDisposable
{
    private readonly List<(string Tmp, string Final)> _pending = [];
    private readonly List<string> _createdDirs = [];
    private readonly IDisposable _onInterrupt;
    private bool _committed;

    public StagedFiles() { _onInterrupt = TempFiles.OnInterrupt(RemoveCreatedFolders); }

    /// <summary>Writes one file through <paramref name="write"/> (given the temporary path) into <paramref name="dir"/>.</summary>
    public async Task StageAsync(string dir, string name, Func<string, Task> write)
    {
        Prepare(dir);
        var final = Path.Combine(dir, name);
        var tmp = TempFiles.For(final);
        try { await write(tmp); }
        catch
        {
            TempFiles.Delete(tmp);
            throw;
        }
        _pending.Add((tmp, final));
    }

    /// <summary>Moves every staged file into place (each move is a rename within its folder).</summary>
    public void Commit()
    {
        foreach (var (tmp, final) in _pending)
        {
            File.Move(tmp, final, overwrite: true);
            TempFiles.Forget(tmp);
        }
        _pending.Clear();
        _committed = true;
    }

    public void Dispose()
    {
        _onInterrupt.Dispose();
        foreach (var (tmp, _) in _pending) TempFiles.Delete(tmp);
        _pending.Clear();
        if (!_committed) RemoveCreatedFolders();
    }

    private void Prepare(string dir)
    {
        var full = Path.GetFullPath(dir);
        var missing = new List<string>();
        for (var d = full; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d)) missing.Add(d);
        Directory.CreateDirectory(full);
        _createdDirs.AddRange(missing);   // deepest first
        if (missing.Count == 0) TempFiles.SweepStale(full);
    }

    private void RemoveCreatedFolders()
    {
        foreach (var d in _createdDirs) OutputFolder.TryDeleteEmpty(d);
    }
}
