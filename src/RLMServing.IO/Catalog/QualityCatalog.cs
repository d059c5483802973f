using RLMServing.Policies;

namespace RLMServing.IO.Catalog;

/// <summary>One cited quality curve: y (accuracy or accuracy retention) against x (a budget or a kept fraction).</summary>
public sealed record QualityCurve(string Kind, string Policy, string Dataset, string Model, string X, IReadOnlyList<(double X, double Y)> Points, string File, IReadOnlyList<string> Sources);

/// <summary>One cited speculative-decoding acceptance rate (per draft token) for a method and dataset.</summary>
public sealed record AcceptanceRate(string Method, string Dataset, string Model, double Rate, string File, string Source);

/// <summary>
/// Quality data behind the serving policies (<c>catalog/quality/*.yaml</c>): accuracy retention against KV budget
/// per compression policy and dataset, accuracy against thinking budget per dataset and model, speculative
/// acceptance rates per method and dataset. Every point names the paper, table or figure it was read from, and is
/// marked <c>estimate: true</c> where it was not read off a table. Extra folders: RLMS_CATALOG's <c>quality/</c>.
/// </summary>
public sealed class QualityCatalog
{
    public IReadOnlyList<QualityCurve> Curves { get; }
    public IReadOnlyList<AcceptanceRate> Rates { get; }

    private QualityCatalog(IReadOnlyList<QualityCurve> curves, IReadOnlyList<AcceptanceRate> rates)
    {
        Curves = curves;
        Rates = rates;
    }

    public static string BundledDirectory => Path.Combine(AppContext.BaseDirectory, "catalog", "quality");

    public static QualityCatalog LoadDefault()
    {
        var dirs = new List<string> { BundledDirectory };
        var env = Environment.GetEnvironmentVariable(CatalogLoader.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            dirs.AddRange(env.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "quality")));
        return Load(dirs.Where(Directory.Exists).SelectMany(d => Directory.EnumerateFiles(d, "*.yaml").Order(StringComparer.Ordinal)));
    }

    public static QualityCatalog Load(IEnumerable<string> files)
    {
        var curves = new List<QualityCurve>();
        var rates = new List<AcceptanceRate>();
        foreach (var file in files)
        {
            var doc = Parse(file);
            var sources = (doc.Sources ?? []).ToDictionary(s => s.Id ?? throw new UserInputException($"{file}: sources: every source needs an id"), s => s.Citation ?? "");
            string Cite(string? id, string where)
            {
                if (id is null) throw new UserInputException($"{file}: {where}.source: is required");
                return sources.TryGetValue(id, out var c) ? c : throw new UserInputException($"{file}: {where}.source: unknown source '{id}'; known: {string.Join(", ", sources.Keys)}");
            }
            foreach (var (c, i) in (doc.Curves ?? []).Select((c, i) => (c, i)))
            {
                string where = $"curves[{i}]";
                var points = (c.Points ?? []).Select((p, j) =>
                {
                    if (p.Y is not double y || y < 0) throw new UserInputException($"{file}: {where}.points[{j}].y: is required and must not be negative");
                    if (p.X is not double x) throw new UserInputException($"{file}: {where}.points[{j}].x: is required");
                    Cite(p.Source, $"{where}.points[{j}]");
                    return (x, y);
                }).ToList();
                if (points.Count == 0) throw new UserInputException($"{file}: {where}.points: needs at least one point");
                for (int j = 1; j < points.Count; j++)
                    if (points[j].x <= points[j - 1].x) throw new UserInputException($"{file}: {where}.points[{j}].x: must increase along the curve");
                curves.Add(new QualityCurve(doc.Kind ?? throw new UserInputException($"{file}: kind: is required"),
                    c.Policy ?? "", c.Dataset ?? throw new UserInputException($"{file}: {where}.dataset: is required"),
                    c.Model ?? "", c.X ?? "", points, file,
                    (c.Points ?? []).Select(p => p.Source!).Distinct().Select(id => sources[id]).ToList()));
            }
            foreach (var (r, i) in (doc.Rates ?? []).Select((r, i) => (r, i)))
            {
                string where = $"rates[{i}]";
                if (r.AcceptanceRate is not (> 0 and < 1)) throw new UserInputException($"{file}: {where}.acceptance_rate: must be in (0, 1)");
                rates.Add(new AcceptanceRate(r.Method ?? throw new UserInputException($"{file}: {where}.method: is required"),
                    r.Dataset ?? throw new UserInputException($"{file}: {where}.dataset: is required"), r.Model ?? "",
                    r.AcceptanceRate.Value, file, Cite(r.Source, where)));
            }
        }
        return new QualityCatalog(curves, rates);
    }

    /// <summary>
    /// The curve of a kind and policy for a dataset, the scenario's model's own if there is one, else the dataset's
    /// curve measured on another model (the source string says which); null when the dataset has none.
    /// </summary>
    public QualityEstimate? Curve(string kind, string policy, string dataset, string model)
    {
        var matches = Curves.Where(c => c.Kind == kind && string.Equals(c.Policy, policy, StringComparison.OrdinalIgnoreCase)
            && string.Equals(c.Dataset, dataset, StringComparison.OrdinalIgnoreCase)).ToList();
        var curve = matches.FirstOrDefault(c => string.Equals(c.Model, model, StringComparison.OrdinalIgnoreCase)) ?? matches.FirstOrDefault();
        if (curve is null) return null;
        string on = string.Equals(curve.Model, model, StringComparison.OrdinalIgnoreCase) ? "" : $" (measured on {curve.Model}, not {model})";
        return new QualityEstimate(curve.Points, null, $"{Path.GetFileName(curve.File)}: {policy} on {curve.Dataset}{on}");
    }

    public AcceptanceRate? Rate(string method, string dataset) =>
        Rates.FirstOrDefault(r => string.Equals(r.Method, method, StringComparison.OrdinalIgnoreCase) && string.Equals(r.Dataset, dataset, StringComparison.OrdinalIgnoreCase));

    public IEnumerable<string> Datasets(string kind, string policy) =>
        Curves.Where(c => c.Kind == kind && string.Equals(c.Policy, policy, StringComparison.OrdinalIgnoreCase)).Select(c => c.Dataset).Distinct();

    private static QualityDocument Parse(string file) => CatalogLoader.Parse<QualityDocument>(file);

    private sealed class QualityDocument
    {
        public string? Kind { get; set; }
        public string? Description { get; set; }
        public List<SourceEntry>? Sources { get; set; }
        public List<CurveEntry>? Curves { get; set; }
        public List<RateEntry>? Rates { get; set; }
    }

    private sealed class SourceEntry
    {
        public string? Id { get; set; }
        public string? Citation { get; set; }
        public string? Url { get; set; }
    }

    private sealed class CurveEntry
    {
        public string? Policy { get; set; }
        public string? Dataset { get; set; }
        public string? Model { get; set; }
        public string? X { get; set; }
        public string? Y { get; set; }
        public string? Note { get; set; }
        public List<PointEntry>? Points { get; set; }
    }

    private sealed class PointEntry
    {
        public double? X { get; set; }
        public double? Y { get; set; }
        public string? Source { get; set; }
        public string? Where { get; set; }
        public bool Estimate { get; set; }
        public string? Reasoning { get; set; }
    }

    private sealed class RateEntry
    {
        public string? Method { get; set; }
        public string? Dataset { get; set; }
        public string? Model { get; set; }
        public double? AcceptanceRate { get; set; }
        public string? Source { get; set; }
        public string? Where { get; set; }
        public bool Estimate { get; set; }
        public string? Reasoning { get; set; }
    }
}
