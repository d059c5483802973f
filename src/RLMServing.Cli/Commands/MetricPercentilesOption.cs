using RLMServing.Metrics;

namespace RLMServing.Cli.Commands;

/// <summary>The <c>--metric-percentiles 50,90,95,99</c> option shared by <c>simulate</c>, <c>sweep</c> and <c>replay</c> (vLLM's name).</summary>
internal static class MetricPercentilesOption
{
    public const string HelpText = "Percentiles the summary, results.parquet and the report carry as pNN_*_ms keys, e.g. 50,90,95,99,99.9 (replaces metrics.percentiles; p90 and p99 are always written).";

    /// <summary>The parsed list, or null when the option was not given; a bad list is one line naming the option.</summary>
    public static IReadOnlyList<double>? Parse(string? text) =>
        text is null ? null : MetricPercentiles.Parse(text, $"--metric-percentiles {text}");

    /// <summary>The option as a <c>--set metrics.percentiles=[...]</c> override (empty when not given).</summary>
    public static IEnumerable<string> AsSet(string? text) =>
        Parse(text) is { } list ? [$"metrics.percentiles=[{string.Join(", ", list.Select(MetricPercentiles.Word))}]"] : [];
}
