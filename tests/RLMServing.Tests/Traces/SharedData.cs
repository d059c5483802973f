namespace RLMServing.Tests.Traces;

/// <summary>Finds ../shared/data (the public traces) by walking up from the test binary; /work/shared as a fallback.</summary>
internal static class SharedData
{
    private static readonly Lazy<string> Root = new(Find);

    public static string Traces => Path.Combine(Root.Value, "traces");

    public static string Path_(params string[] parts) => Path.Combine([Traces, .. parts]);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(Path.Combine(candidate, "traces"))) return candidate;
        }
        const string fallback = "/work/shared/data";
        if (Directory.Exists(fallback)) return fallback;
        throw new InvalidOperationException("shared/data not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary folder deleted after the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rlms-test-" + Guid.NewGuid().ToString("N"));

    public string File(string name, string? content = null)
    {
        string path = System.IO.Path.Combine(Path, name);
        if (content is not null) System.IO.File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
