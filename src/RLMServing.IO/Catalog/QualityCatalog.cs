using RLMServing.Policies;

namespace RLMServing.IO.Catalog;

/// <summary>
/// Where one quality figure comes from: the source id, the table/figure/file it was read from, whether it is an
/// estimate (not read anywhere), and whether it was derived from read numbers by a stated formula.
/// </summary>
public sealed record QualityCitation(string SourceId, string Where, bool Estimate, bool Derived);

/// <summary>One point of a cited curve; <see cref="Accuracy"/>/<see cref="FullAccuracy"/> are the raw accuracies a retention was computed from.</summary>
public sealed record QualityPoint(double X, double Y, QualityCitation Citation, double? Accuracy, double? FullAccuracy);

/// <summary>One cited quality curve: y (accuracy or accuracy retention) against x (a budget or a kept fraction).</summary>
public sealed record QualityCurve(string Kind, string Policy, string Dataset, string Model, string X, IReadOnlyList<QualityPoint> Cited, string File, IReadOnlyList<string> Sources)
{
    public IReadOnlyList<(double X, double Y)> Points { get; } = Cited.Select(p => (p.X, p.Y)).ToList();
}

/// <summary>
/// One cited speculative-decoding acceptance rate (per draft token) for a method and dataset; <see cref="Tau"/> and
/// <see cref="K"/> are the mean accepted length and draft length it was converted from, when a paper gave them.
/// </summary>
public sealed record AcceptanceRate(string Method, string Dataset, string Model, double Rate, string File, string Source, QualityCitation Citation, double? Tau, int? K)
{
    /// <summary>Mean tokens per step of a chain of <paramref name="k"/> drafts with per-token acceptance <paramref name="rate"/>: (1 - a^(k+1)) / (1 - a).</summary>
    public static double TokensPerStep(double rate, int k) => (1 - Math.Pow(rate, k + 1)) / (1 - rate);
}

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

    /// <summary>The bundled quality data, plus quality/ beside each catalog folder of RLMS_CATALOG and <paramref name="catalogPaths"/> (--catalog).</summary>
    public static QualityCatalog LoadDefault(IEnumerable<string>? catalogPaths = null)
    {
        var dirs = new List<string> { BundledDirectory };
        var env = Environment.GetEnvironmentVariable(CatalogLoader.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            dirs.AddRange(env.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "quality")));
        if (catalogPaths is not null) dirs.AddRange(catalogPaths.Where(Directory.Exists).Select(d => Path.Combine(d, "quality")));
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
                    string at = $"{where}.points[{j}]";
                    if (p.Y is not double y || y < 0) throw new UserInputException($"{file}: {at}.y: is required and must not be negative");
                    if (p.X is not double x) throw new UserInputException($"{file}: {at}.x: is required");
                    Cite(p.Source, at);
                    var citation = Citation(file, at, p.Source!, p.Where, p.Estimate, p.Derived, p.Reasoning);
                    if (p.Accuracy is not null || p.FullAccuracy is not null)
                    {
                        if (p.Accuracy is not (>= 0 and <= 1)) throw new UserInputException($"{file}: {at}.accuracy: must be given with full_accuracy, as a fraction in [0, 1]");
                        if (p.FullAccuracy is not (> 0 and <= 1)) throw new UserInputException($"{file}: {at}.full_accuracy: must be given with accuracy, as a fraction in (0, 1]");
                        double retention = p.Accuracy.Value / p.FullAccuracy.Value;
                        if (Math.Abs(retention - y) > RetentionTolerance)
                            throw new UserInputException($"{file}: {at}.y: {y} is not accuracy / full_accuracy = {p.Accuracy} / {p.FullAccuracy} = {retention:0.###}");
                    }
                    else if (p.Derived) throw new UserInputException($"{file}: {at}.derived: a derived retention needs the accuracy and full_accuracy it was computed from");
                    return new QualityPoint(x, y, citation, p.Accuracy, p.FullAccuracy);
                }).ToList();
                if (points.Count == 0) throw new UserInputException($"{file}: {where}.points: needs at least one point");
                for (int j = 1; j < points.Count; j++)
                    if (points[j].X <= points[j - 1].X) throw new UserInputException($"{file}: {where}.points[{j}].x: must increase along the curve");
                curves.Add(new QualityCurve(doc.Kind ?? throw new UserInputException($"{file}: kind: is required"),
                    c.Policy ?? "", c.Dataset ?? throw new UserInputException($"{file}: {where}.dataset: is required"),
                    c.Model ?? "", c.X ?? "", points, file,
                    (c.Points ?? []).Select(p => p.Source!).Distinct().Select(id => sources[id]).ToList()));
            }
            foreach (var (r, i) in (doc.Rates ?? []).Select((r, i) => (r, i)))
            {
                string where = $"rates[{i}]";
                if (r.AcceptanceRate is not (> 0 and < 1)) throw new UserInputException($"{file}: {where}.acceptance_rate: must be in (0, 1)");
                string cite = Cite(r.Source, where);
                var citation = Citation(file, where, r.Source!, r.Where, r.Estimate, r.Derived, r.Reasoning);
                if (r.Tau is not null || r.K is not null)
                {
                    if (r.K is not (>= 1 and <= 64)) throw new UserInputException($"{file}: {where}.k: must be given with tau, the draft length (1 to 64) the paper measured tau at");
                    if (r.Tau is not double tau || tau < 1 || tau > r.K.Value + 1) throw new UserInputException($"{file}: {where}.tau: must be given with k, a mean accepted length between 1 and k + 1 = {r.K + 1}");
                    double implied = AcceptanceRate.TokensPerStep(r.AcceptanceRate.Value, r.K.Value);
                    if (Math.Abs(implied - tau) > TauTolerance)
                        throw new UserInputException($"{file}: {where}.acceptance_rate: {r.AcceptanceRate} gives (1 - a^(k+1)) / (1 - a) = {implied:0.###} at k = {r.K}, not tau = {tau}");
                }
                else if (r.Derived) throw new UserInputException($"{file}: {where}.derived: a derived rate needs the tau and k it was converted from");
                rates.Add(new AcceptanceRate(r.Method ?? throw new UserInputException($"{file}: {where}.method: is required"),
                    r.Dataset ?? throw new UserInputException($"{file}: {where}.dataset: is required"), r.Model ?? "",
                    r.AcceptanceRate.Value, file, cite, citation, r.Tau, r.K));
            }
        }
        return new QualityCatalog(curves, rates);
    }

    // Rates and retentions are stored rounded to three decimals; the checks allow that rounding and no more.
    private const double RetentionTolerance = 0.001;
    private const double TauTolerance = 0.01;

    private static QualityCitation Citation(string file, string at, string source, string? where, bool estimate, bool derived, string? reasoning)
    {
        if (string.IsNullOrWhiteSpace(where)) throw new UserInputException($"{file}: {at}.where: is required (the table, figure or file the value was read from)");
        if (estimate && derived) throw new UserInputException($"{file}: {at}: a value is either derived from read numbers or an estimate, not both");
        if (estimate && string.IsNullOrWhiteSpace(reasoning)) throw new UserInputException($"{file}: {at}.reasoning: an estimate must say why no source gives the number");
        return new QualityCitation(source, where, estimate, derived);
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

    /// <summary>
    /// The acceptance rate of a method on a dataset, the scenario's model's own if there is one, else the dataset's
    /// rate measured with another model (<see cref="RateSource"/> says which); null when the dataset has none.
    /// </summary>
    public AcceptanceRate? Rate(string method, string dataset, string model)
    {
        var matches = Rates.Where(r => string.Equals(r.Method, method, StringComparison.OrdinalIgnoreCase)
            && string.Equals(r.Dataset, dataset, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.FirstOrDefault(r => string.Equals(r.Model, model, StringComparison.OrdinalIgnoreCase)) ?? matches.FirstOrDefault();
    }

    /// <summary>The provenance line of a cited rate as used for <paramref name="model"/>: file, method, dataset, model if it differs, citation.</summary>
    public static string RateSource(AcceptanceRate rate, string model)
    {
        string on = string.Equals(rate.Model, model, StringComparison.OrdinalIgnoreCase) ? "" : $" (measured on {rate.Model}, not {model})";
        string how = rate.Citation.Estimate ? ", estimate" : rate.Citation.Derived ? $", derived from tau {rate.Tau} at k {rate.K}" : "";
        return $"{Path.GetFileName(rate.File)}: {rate.Method} on {rate.Dataset}{on}{how}: {rate.Source}";
    }

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
        public bool Derived { get; set; }
        public string? Reasoning { get; set; }
        public double? Accuracy { get; set; }
        public double? FullAccuracy { get; set; }
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
        public bool Derived { get; set; }
        public string? Reasoning { get; set; }
        public double? Tau { get; set; }
        public int? K { get; set; }
    }
}
