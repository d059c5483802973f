namespace RLMServing.Catalog;

/// <summary>Thrown when a name is not in the catalog; the message carries the nearest known names.</summary>
public sealed class CatalogException(string message) : Exception(message);

/// <summary>The GPUs and model architectures a scenario may name. Built from data files by the IO layer.</summary>
public sealed class HardwareCatalog
{
    private readonly Dictionary<string, GpuSpec> _gpus = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, ModelArchitecture> _models = new(StringComparer.OrdinalIgnoreCase);

    public HardwareCatalog(IEnumerable<GpuSpec> gpus, IEnumerable<ModelArchitecture> models)
    {
        foreach (var g in gpus)
        {
            _gpus[g.Name] = g;
            foreach (var a in g.Aliases) _gpus.TryAdd(a, g);
        }
        foreach (var m in models)
        {
            _models[m.Name] = m;
            if (!string.IsNullOrEmpty(m.HfId) && m.HfId != "none") _models.TryAdd(m.HfId, m);
        }
    }

    public IEnumerable<GpuSpec> Gpus => _gpus.Values.Distinct();
    public IEnumerable<ModelArchitecture> Models => _models.Values.Distinct();

    public GpuSpec Gpu(string name) =>
        _gpus.TryGetValue(name, out var g) ? g
        : throw new CatalogException($"unknown GPU '{name}'{Suggest(name, _gpus.Keys)}");

    public ModelArchitecture Model(string name) =>
        _models.TryGetValue(name, out var m) ? m
        : throw new CatalogException($"unknown model '{name}'{Suggest(name, _models.Keys)}");

    public bool TryModel(string name, out ModelArchitecture model) => _models.TryGetValue(name, out model!);

    private static string Suggest(string name, IEnumerable<string> known)
    {
        var nearest = NameDistance.Nearest(name, known, 3);
        return nearest.Count == 0 ? "" : $"; did you mean {string.Join(", ", nearest.Select(n => $"'{n}'"))}?";
    }
}

/// <summary>Edit distance used to suggest the names a user probably meant.</summary>
public static class NameDistance
{
    public static IReadOnlyList<string> Nearest(string name, IEnumerable<string> known, int count) =>
        known.Distinct(StringComparer.OrdinalIgnoreCase)
            .Select(k => (k, d: Levenshtein(name.ToLowerInvariant(), k.ToLowerInvariant())))
            .Where(x => x.d <= Math.Max(3, name.Length / 2))
            .OrderBy(x => x.d).ThenBy(x => x.k, StringComparer.Ordinal)
            .Take(count).Select(x => x.k).ToList();

    public static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
