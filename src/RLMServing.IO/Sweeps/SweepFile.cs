using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Sweeps;
using YamlDotNet.RepresentationModel;

namespace RLMServing.IO.Sweeps;

/// <summary>
/// The capacity search of a sweep: per configuration and seed, the highest value of <see cref="RateKey"/> meeting
/// the objective (<see cref="GoodputFraction"/> of requests within the scenario's SLO and every summary metric in
/// <see cref="MaxMetrics"/> at or below its limit, on a stable run). A pilot run of <see cref="PilotFraction"/> of
/// the requests stops clearly unstable rates early.
/// </summary>
public sealed record CapacitySpec(
    string RateKey,
    double? StartRate,
    double MinRate,
    double MaxRate,
    double Tolerance,
    int MaxProbes,
    double PilotFraction,
    double? GoodputFraction,
    IReadOnlyList<(string Metric, double Limit)> MaxMetrics,
    double? TargetRate)
{
    /// <summary>capacity.convergence: probes run until the answer settles (null: off, one horizon).</summary>
    public CapacityConvergence? Convergence { get; init; } = CapacityConvergence.Default;
}

/// <summary>
/// capacity.convergence: the horizon doubles from workload.requests up to <see cref="MaxRequests"/> (default 32 times
/// that) until the answer settles: the same decisions at two horizons, and the steady window spans
/// <see cref="ServiceTimes"/> of the longest requests' service times, or <see cref="MinServiceTimes"/> of them with the
/// figures moving less than <see cref="MaxChange"/> (ConvergenceOptions).
/// </summary>
public sealed record CapacityConvergence(int? MaxRequests, double MaxChange, double MinServiceTimes, double ServiceTimes)
{
    public static readonly CapacityConvergence Default = new(null, 0.02, 10, 20);
}

/// <summary>Prices for cost per million tokens: one $/GPU-hour for every GPU, or one per GPU name.</summary>
public sealed record CostSpec(double? UsdPerGpuHour, IReadOnlyDictionary<string, double> UsdPerGpuHourByGpu)
{
    public double? PriceOf(string gpu) =>
        UsdPerGpuHourByGpu.FirstOrDefault(kv => string.Equals(kv.Key, gpu, StringComparison.OrdinalIgnoreCase)) is { Key: not null } kv ? kv.Value : UsdPerGpuHour;
}

/// <summary>A parsed sweep file: the base scenario, the axes and how they are sampled, seeds, capacity search and costs.</summary>
public sealed record SweepFile(
    string Path,
    string Name,
    string BasePath,
    ConfigMap BaseTree,
    IReadOnlyList<Axis> Axes,
    Sampling Sampling,
    IReadOnlyList<int> Seeds,
    CapacitySpec? Capacity,
    CostSpec? Cost,
    string ParetoLatency,
    string Fingerprint)
{
    /// <summary>The percentiles every configuration reports (metrics.percentiles of the base, with the SLO keys' added).</summary>
    public IReadOnlyList<double> Percentiles { get; init; } = MetricPercentiles.Default;
}
