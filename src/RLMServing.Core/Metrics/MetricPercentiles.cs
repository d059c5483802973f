using System.Globalization;

namespace RLMServing.Metrics;

/// <summary>
/// The percentiles a run reports, as vLLM's <c>--metric-percentiles</c> names them: a list such as 50,90,95,99,99.9
/// gives the keys <c>p50_ttft_ms</c> … <c>p99.9_ttft_ms</c> (a whole percentile without decimals, another one as
/// written). One parser and formatter for scenario files, command-line flags, SLO keys and result columns.
/// </summary>
public static class MetricPercentiles
{
    /// <summary>The latency metrics that carry percentile keys (vLLM's four and our time to first answer token).</summary>
    public static readonly IReadOnlyList<string> Metrics = ["ttft", "tpot", "itl", "e2el", "ttfat"];

    /// <summary>Reported when nothing is asked for: vLLM's p90 and p99 keys, which summary.json always carries, and p95.</summary>
    public static readonly IReadOnlyList<double> Default = [90, 95, 99];

    /// <summary>The fixed keys of summary.json (<see cref="RunSummary"/> properties): always written, whatever the list.</summary>
    public static readonly IReadOnlyList<string> FixedKeys =
        ["p90_ttft_ms", "p99_ttft_ms", "p90_tpot_ms", "p99_tpot_ms", "p90_itl_ms", "p99_itl_ms", "p90_e2el_ms", "p99_e2el_ms", "p99_ttfat_ms"];

    /// <summary>The percentile as it appears in a key: 99 → "99", 99.9 → "99.9".</summary>
    public static string Word(double p) => p.ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>The summary key of percentile <paramref name="p"/> of <paramref name="metric"/>: p95, ttft → p95_ttft_ms.</summary>
    public static string Key(double p, string metric) => $"p{Word(p)}_{metric}_ms";

    /// <summary>A comma-separated list ("50,90,95,99.9"); throws a <see cref="UserInputException"/> naming <paramref name="source"/>.</summary>
    public static IReadOnlyList<double> Parse(string text, string source)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new List<double>();
        foreach (var part in parts)
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var p))
                throw new UserInputException($"{source}: '{Quote(part)}' is not a number; expected percentiles such as 50,90,95,99,99.9");
            values.Add(p);
        }
        return Normalize(values, source);
    }

    /// <summary>Checks 0 &lt; p &lt; 100 for each, drops repeats and sorts.</summary>
    public static IReadOnlyList<double> Normalize(IEnumerable<double> values, string source)
    {
        var list = values.ToList();
        if (list.Count == 0) throw new UserInputException($"{source}: expected at least one percentile, e.g. 50,90,95,99");
        if (list.Count > 64) throw new UserInputException($"{source}: at most 64 percentiles, got {list.Count}");
        foreach (var p in list)
            if (!(p > 0 && p < 100))
                throw new UserInputException($"{source}: percentiles are between 0 and 100 (exclusive), got {p.ToString(CultureInfo.InvariantCulture)}");
        return list.Select(p => double.Parse(Word(p), CultureInfo.InvariantCulture)).Distinct().Order().ToList();
    }

    /// <summary>
    /// Reads a percentile key: "p99.9_ttft_ms" → (99.9, "ttft"). False for anything else (median_ttft_ms, p100_…,
    /// an unknown metric).
    /// </summary>
    public static bool TryParseKey(string key, out double percentile, out string metric)
    {
        percentile = 0;
        metric = "";
        if (key.Length < 6 || key[0] != 'p' || !key.EndsWith("_ms", StringComparison.Ordinal)) return false;
        int us = key.IndexOf('_');
        if (us < 2) return false;
        var word = key[1..us];
        var m = key[(us + 1)..^3];
        if (!Metrics.Contains(m)) return false;
        if (word.Any(c => !(char.IsAsciiDigit(c) || c == '.'))) return false;
        if (!double.TryParse(word, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var p) || !(p > 0 && p < 100)) return false;
        if (Word(p) != word) return false;   // one spelling per key: p95, not p95.0 or p095
        percentile = p;
        metric = m;
        return true;
    }

    /// <summary>The percentiles of summary.json's steady_state: the list and the always-written p90 and p99.</summary>
    public static IReadOnlyList<double> WithFixed(IReadOnlyList<double> list) => list.Concat([90, 99]).Distinct().Order().ToList();

    /// <summary>The list with the percentiles of <paramref name="keys"/> (SLO limits) added: asking for a limit computes it.</summary>
    public static IReadOnlyList<double> WithKeys(IReadOnlyList<double> list, IEnumerable<string> keys)
    {
        var all = list.ToList();
        foreach (var k in keys)
            if (TryParseKey(k, out var p, out _)) all.Add(p);
        return all.Distinct().Order().ToList();
    }

    /// <summary>A value of a summary's percentile keys: a double when built, a JSON number when read back from summary.json.</summary>
    public static double? ValueOf(object? value) => value switch
    {
        double d => d,
        System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.Number } e => e.GetDouble(),
        _ => null,
    };

    private static string Quote(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
