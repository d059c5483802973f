namespace RLMServing.IO.Traces;

/// <summary>
/// The importers behind <c>rlms trace import --format F</c>, by format name. The composition root (the CLI) builds
/// one from every project's importers — request traces and measured runs here, GPU profiles in RLMServing.Profiling,
/// which this project cannot reference — and hands it to the verb.
/// </summary>
public sealed class TraceImporterRegistry
{
    private readonly List<ITraceImporter> _importers = [];

    /// <summary>The importers in order; a format named twice keeps its first importer.</summary>
    public TraceImporterRegistry(IEnumerable<ITraceImporter> importers)
    {
        foreach (var i in importers)
            if (!_importers.Any(e => string.Equals(e.Format, i.Format, StringComparison.OrdinalIgnoreCase))) _importers.Add(i);
    }

    /// <summary>The formats this project itself reads: request traces and measured runs.</summary>
    public static IEnumerable<ITraceImporter> OwnImporters => [.. RequestTraceFormats.Importers, .. Runs.MeasuredRunFormats.Importers];

    public IReadOnlyList<ITraceImporter> All => _importers;

    public ITraceImporter Get(string format) =>
        _importers.FirstOrDefault(i => string.Equals(i.Format, format, StringComparison.OrdinalIgnoreCase))
        ?? throw new UserInputException(
            $"--format: unknown format '{format}'; known formats: {string.Join(", ", _importers.Select(i => i.Format))}");
}
