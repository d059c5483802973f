using RLMServing.Metrics;
using RLMServing.Routing;
using RLMServing.Scenarios;
using RLMServing.Workloads;

namespace RLMServing.Simulation;

/// <summary>
/// Runs replicas in lockstep for routers that read replica state: before each arrival every replica is advanced to
/// the arrival time (to the end of the iteration in flight then, so the router sees each replica's last
/// iteration boundary at or after the arrival), the router picks one, and the request joins it.
/// </summary>
internal static class ClusterDriver
{
    public static IEnumerable<RequestSpec> InArrivalOrder(IReadOnlyList<RequestSpec> requests) =>
        requests.OrderBy(r => r.ArrivalTimeS).ThenBy(r => r.Id);

    public static void RunLockstep(IReadOnlyList<RequestSpec> requests, ReplicaEngine[] engines, IRouter router)
    {
        foreach (var spec in InArrivalOrder(requests))
        {
            foreach (var e in engines) e.Advance(spec.ArrivalTimeS);
            engines[router.Route(spec, engines)].AddArrival(new SimRequest(spec, spec.ArrivalTimeS));
        }
        foreach (var e in engines) e.Run();
    }

    /// <summary>Prefix-cache hit rate (cached over prompt tokens at admission, vLLM's definition) and swap counts.</summary>
    public static RunSummary AddMemoryPolicyMetrics(RunSummary summary, Scenario scenario, ReplicaEngine[] engines, ReplicaStats[] stats)
    {
        double? hitRate = null;
        if (scenario.KvCache.Memory.PrefixCaching)
        {
            long query = engines.Sum(e => e.PrefixCache!.QueryTokens), hit = engines.Sum(e => e.PrefixCache!.HitTokens);
            hitRate = query == 0 ? 0 : (double)hit / query;
        }
        return summary with
        {
            PrefixCacheHitRate = hitRate,
            SwapOuts = stats.Sum(s => s.SwapOuts),
            SwapSpaceExhausted = stats.Sum(s => s.SwapFallbacks),
        };
    }
}
