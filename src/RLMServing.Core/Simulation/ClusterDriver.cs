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
    /// <summary>KV hand-offs from prefill to decode replicas: how many, their total time, and per request (each must be one).</summary>
    internal sealed class KvTransferStats
    {
        public long Count;
        public double TotalS;
        public Dictionary<long, int> PerRequest { get; } = new();
    }

    public static IEnumerable<RequestSpec> InArrivalOrder(IReadOnlyList<RequestSpec> requests) =>
        requests.OrderBy(r => r.ArrivalTimeS).ThenBy(r => r.Id);

    /// <summary>
    /// Routes a request; parallel sampling sends every sample of a prompt where its first sample went (they share the
    /// prompt's KV), whatever the router, so the router sees each prompt once.
    /// </summary>
    public static int Route(RequestSpec spec, IRouter router, ReplicaEngine[] engines, Dictionary<long, int> promptReplica)
    {
        if (spec.PromptId is not { } prompt) return router.Route(spec, engines);
        if (spec.SampleIndex > 0 && promptReplica.TryGetValue(prompt, out int replica)) return replica;
        int chosen = router.Route(spec, engines);
        promptReplica.Clear();   // in arrival order a prompt's samples come together (same arrival, consecutive ids)
        promptReplica[prompt] = chosen;
        return chosen;
    }

    public static void RunLockstep(IReadOnlyList<RequestSpec> requests, ReplicaEngine[] engines, IRouter router)
    {
        var promptReplica = new Dictionary<long, int>();
        foreach (var spec in InArrivalOrder(requests))
        {
            foreach (var e in engines) e.Advance(spec.ArrivalTimeS);
            engines[Route(spec, router, engines, promptReplica)].AddArrival(new SimRequest(spec, spec.ArrivalTimeS));
        }
        foreach (var e in engines) e.Run();
    }

    /// <summary>
    /// Closed batches: each batch (requests in id order) arrives at once, is routed by the scenario's router as an
    /// open-loop arrival would be (a state-reading router sees the batch's earlier requests as outstanding), and every
    /// replica runs until the batch has drained; the next batch arrives when the batch's last request finished (a
    /// rejection finishes at its arrival) plus the gap. Replicas are idle at each boundary, so draining them one after
    /// another is exact.
    /// </summary>
    public static void RunClosedBatches(IReadOnlyList<RequestSpec> requests, ReplicaEngine[] engines, IRouter router,
        ClosedBatchArrivals batches)
    {
        var records = engines[0].Records;   // the replicas share one list of rows
        double atS = 0;
        for (int first = 0; first < requests.Count; first += batches.Batch)
        {
            int seen = records.Count;
            int end = Math.Min(requests.Count, first + batches.Batch);
            for (int i = first; i < end; i++)
            {
                var spec = requests[i] with { ArrivalTimeS = atS };
                engines[router.Route(spec, engines)].AddArrival(new SimRequest(spec, atS));
            }
            foreach (var e in engines) e.Advance(double.PositiveInfinity);
            double lastS = atS;
            for (int i = seen; i < records.Count; i++) lastS = Math.Max(lastS, records[i].CompletionTimeS ?? records[i].ArrivalTimeS);
            if (records.Count - seen != end - first)
                throw new InvalidOperationException($"closed batch from request {first}: {records.Count - seen} of {end - first} requests finished");
            atS = lastS + batches.GapMs / 1000.0;
        }
        foreach (var e in engines) e.Run();
    }

    /// <summary>
    /// Disaggregated serving. Prefill replicas do not depend on decode replicas (no back-pressure: a prefill replica
    /// frees the KV once it is sent), so the prefill pool runs first and records each hand-off; each request's KV
    /// then travels once, taking prompt KV bytes / link bandwidth + latency, and the decode pool runs in lockstep to
    /// those arrivals with its own router.
    /// </summary>
    public static KvTransferStats RunDisaggregated(IReadOnlyList<RequestSpec> requests, ReplicaEngine[] prefill, ReplicaEngine[] decode,
        IRouter prefillRouter, IRouter decodeRouter, KvTransferConfig link, long kvBytesPerToken)
    {
        var handoffs = new List<(double ReadyS, SimRequest Request)>();
        var stats = new KvTransferStats();
        foreach (var p in prefill)
            p.OnPrefilled = (r, doneS) =>
            {
                double transferS = (double)r.PrefillTarget * kvBytesPerToken / (link.BandwidthGBps * 1e9) + link.LatencyMs / 1000;
                stats.Count++;
                stats.TotalS += transferS;
                stats.PerRequest[r.Spec.Id] = stats.PerRequest.GetValueOrDefault(r.Spec.Id) + 1;
                handoffs.Add((doneS + transferS, r));
            };
        if (prefillRouter.StateDependent) RunLockstep(requests, prefill, prefillRouter);
        else
        {
            foreach (var spec in InArrivalOrder(requests)) prefill[prefillRouter.Route(spec, prefill)].AddArrival(new SimRequest(spec, spec.ArrivalTimeS));
            foreach (var e in prefill) e.Run();
        }
        foreach (var (readyS, r) in handoffs.OrderBy(h => h.ReadyS).ThenBy(h => h.Request.Spec.Id))
        {
            foreach (var e in decode) e.Advance(readyS);
            decode[decodeRouter.Route(r.Spec, decode)].AddTransferred(r, readyS);
        }
        foreach (var e in decode) e.Run();
        return stats;
    }

    /// <summary>
    /// Prefix-cache hit rate (cached over prompt tokens at admission, vLLM's definition), swap counts and the prompt KV
    /// that parallel samples shared (the rows are read only when <paramref name="sampled"/>: no sample, nothing shared).
    /// </summary>
    public static RunSummary AddMemoryPolicyMetrics(RunSummary summary, Scenario scenario, ReplicaEngine[] engines, ReplicaStats[] stats,
        IReadOnlyList<RequestRecord> records, bool sampled)
    {
        double? hitRate = null;
        if (scenario.KvCache.Memory.PrefixCaching)
        {
            long query = engines.Sum(e => e.PrefixCache!.QueryTokens), hit = engines.Sum(e => e.PrefixCache!.HitTokens);
            hitRate = query == 0 ? 0 : (double)hit / query;
        }
        int samples = 1;
        long shared = 0;
        foreach (var r in sampled ? records : [])
        {
            if (r.PromptId is not null) samples = Math.Max(samples, r.SampleIndex + 1);
            if (r.SampleIndex > 0) shared += r.CachedPromptTokens;
        }
        return summary with
        {
            ParallelSamples = samples > 1 ? samples : null,
            SharedPromptTokens = samples > 1 ? shared : null,
            SharedPromptBlocks = samples > 1 ? shared / scenario.KvCache.BlockSize : null,
            PrefixCacheHitRate = hitRate,
            SwapOuts = stats.Sum(s => s.SwapOuts),
            SwapSpaceExhausted = stats.Sum(s => s.SwapFallbacks),
        };
    }
}
