using System.Collections.Concurrent;
using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.IO.Catalog;

namespace RLMServing.IO.Scenarios;

/// <summary>
/// The files a scenario reads besides itself — the hardware catalog, the serving policies' quality data,
/// calibrations and machine-speed series — read once and shared by every binding that uses the same instance. A
/// sweep binds each configuration, seed and capacity probe from the same few files; it creates one instance and
/// reads each file once. Thread-safe (sweep workers bind in parallel); a file that fails to read is not cached.
/// </summary>
public sealed class ScenarioInputs
{
    private readonly IReadOnlyList<string> _catalogPaths;
    private readonly Lazy<QualityCatalog> _quality;
    private readonly ConcurrentDictionary<string, Lazy<CalibrationFile>> _calibrations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Path, CalibrationFile? Against), Lazy<IReadOnlyList<(double TimeS, double Factor)>>> _slowdowns = new();

    /// <param name="catalogPaths">
    /// The extra catalog folders given with --catalog (besides the bundled catalog and RLMS_CATALOG): their
    /// <c>quality/</c> subfolders add quality data as their GPU and model files add hardware.
    /// </param>
    public ScenarioInputs(HardwareCatalog catalog, IEnumerable<string>? catalogPaths = null)
    {
        Catalog = catalog;
        _catalogPaths = catalogPaths?.ToList() ?? [];
        _quality = new Lazy<QualityCatalog>(() => QualityCatalog.LoadDefault(_catalogPaths));
    }

    public HardwareCatalog Catalog { get; }

    /// <summary>The quality data of the serving policies (catalog/quality, and quality/ beside each --catalog folder).</summary>
    public QualityCatalog Quality => _quality.Value;

    /// <summary>A calibration file, read and checked once per full path.</summary>
    public CalibrationFile Calibration(string fullPath) =>
        Cached(_calibrations, fullPath, () => IO.Calibration.CalibrationStore.Read(fullPath));

    /// <summary>A machine-speed series, read once per file (and, priced against a calibration, once per calibration).</summary>
    public IReadOnlyList<(double TimeS, double Factor)> SlowdownSamples(string fullPath, CalibrationFile? against) =>
        Cached(_slowdowns, (fullPath, against), () => against is null ? SlowdownFile.Read(fullPath) : SlowdownFile.AgainstCalibration(fullPath, against.ToModel()));

    private static TValue Cached<TKey, TValue>(ConcurrentDictionary<TKey, Lazy<TValue>> cache, TKey key, Func<TValue> read) where TKey : notnull
    {
        var lazy = cache.GetOrAdd(key, _ => new Lazy<TValue>(read, LazyThreadSafetyMode.ExecutionAndPublication));
        try { return lazy.Value; }
        catch
        {
            cache.TryRemove(new KeyValuePair<TKey, Lazy<TValue>>(key, lazy));   // a bad file is reported again, not remembered
            throw;
        }
    }
}
