using RLMServing.Catalog;
using RLMServing.Memory;
using RLMServing.Scenarios;
using RLMServing.Workloads;

namespace RLMServing.IO.Scenarios;

/// <summary>
/// <c>cluster:</c> (router, balance threshold, replica groups) and the memory policies of <c>kv_cache</c>.
/// How they relate to <c>hardware</c> and <c>scheduler.router</c> is defined in docs/scenarios.md ("cluster").
/// </summary>
public static partial class ScenarioLoader
{
    private static readonly (string, RouterKind)[] RouterNames =
    [
        ("round_robin", RouterKind.RoundRobin), ("random", RouterKind.Random), ("least_outstanding", RouterKind.LeastOutstanding),
        ("least_kv", RouterKind.LeastKv), ("power_of_two", RouterKind.PowerOfTwo), ("prefix_affinity", RouterKind.PrefixAffinity),
    ];

    private static RouterKind BindRouter(MapReader r, string key) => r.Enum(key, RouterKind.RoundRobin, RouterNames);

    /// <summary><c>workload.system_prompt: { tokens, count }</c>; traces carry their own prefixes (hash ids, sessions).</summary>
    private static SystemPromptConfig? BindSystemPrompt(MapReader w)
    {
        if (w.Map("system_prompt") is not { } sp) return null;
        if (w.Has("trace")) throw w.Error("system_prompt", "applies to synthetic workloads and dataset presets; a trace's shared prefixes come from its hash_ids or sessions");
        var cfg = new SystemPromptConfig(sp.PositiveInt("tokens"), sp.PositiveInt("count", 1));
        sp.Done();
        return cfg;
    }

    private static MemoryPolicyConfig BindMemoryPolicies(MapReader k, EngineDefaults defaults)
    {
        var d = MemoryPolicyConfig.Default with { PrefixCaching = defaults.PrefixCaching, Watermark = defaults.Watermark };
        return new MemoryPolicyConfig(
            k.Bool("prefix_caching") ?? d.PrefixCaching,
            k.NonNegativeDouble("swap_space_gib", d.SwapSpaceGib),
            k.PositiveDouble("swap_bandwidth_gbps", d.SwapBandwidthGBps),
            k.Fraction("watermark", d.Watermark, allowZero: true));
    }

    /// <summary>The first group's GPU and tensor parallelism stand for the cluster in <c>hardware</c> (result metadata, the default cost model).</summary>
    private static HardwareConfig FirstGroupHardware(MapReader cluster, string file)
    {
        if (cluster.List("groups") is not { Items.Count: > 0 } list)
            throw cluster.Error("groups", "expected a non-empty list of { name, gpu, replicas, tensor_parallel, scheduler }");
        if (list.Items[0] is not ConfigMap first) throw cluster.Error("groups", "item 0 must be a mapping", list.Items[0]);
        var g = new MapReader(first, file, "cluster.groups[0]");
        var gpu = g.RequiredString("gpu");
        int tp = g.Int("tensor_parallel") ?? 1;
        return new HardwareConfig(gpu, 1, tp);
    }

    /// <summary>
    /// Binds <c>cluster</c>. The router comes from <c>cluster.router</c> or <c>scheduler.router</c> (not both). Each
    /// group's <c>scheduler</c> map is applied over the top-level scheduler, key by key, like a variant's <c>set</c>.
    /// </summary>
    private static (ClusterConfig, SchedulerConfig) BindCluster(MapReader c, ConfigMap? schedulerTree, SchedulerConfig scheduler,
        string file, HardwareCatalog catalog, ModelArchitecture model, KvCacheConfig kv, CostModelConfig cost, bool arrivalIsClosedLoop,
        DraftMemory? draftMemory, EngineDefaults defaults)
    {
        if (c.Has("router"))
        {
            if (schedulerTree?.Get("router") is not null)
                throw c.Error("router", "give either cluster.router or scheduler.router, not both");
            scheduler = scheduler with { Router = BindRouter(c, "router") };
        }
        int balance = c.PositiveInt("balance_threshold", 32);
        var groups = new List<ReplicaGroupConfig>();
        if (c.List("groups") is { } list)
        {
            for (int i = 0; i < list.Items.Count; i++)
            {
                string path = $"cluster.groups[{i}]";
                if (list.Items[i] is not ConfigMap m) throw c.Error("groups", $"item {i} must be a mapping", list.Items[i]);
                var g = new MapReader(m, file, path);
                string name = g.String("name") ?? $"group{i}";
                if (groups.Any(x => x.Name == name)) throw g.Error("name", $"duplicate group name '{name}'");
                string gpuName = g.RequiredString("gpu");
                GpuSpec gpu;
                try { gpu = catalog.Gpu(gpuName); }
                catch (CatalogException e) { throw g.Error("gpu", e.Message); }
                int replicas = g.PositiveInt("replicas", 1);
                var role = g.Enum("role", ReplicaRole.Both, ("both", ReplicaRole.Both), ("prefill", ReplicaRole.Prefill), ("decode", ReplicaRole.Decode));
                int tp = g.PositiveInt("tensor_parallel", 1);
                if (model.Heads % tp != 0)
                    throw g.Error("tensor_parallel", $"{tp} does not divide the {model.Heads} attention heads of {model.Name}");
                var groupScheduler = scheduler;
                if (g.Map("scheduler") is { } sr)
                {
                    var merged = (ConfigMap?)schedulerTree?.Clone() ?? new ConfigMap([], m.Line);
                    merged.Entries.RemoveAll(e => e.Key == "router");
                    foreach (var (key, value) in ((ConfigMap)m.Get("scheduler")!).Entries)
                    {
                        if (key == "router") throw sr.Error("router", "the router is cluster-wide: set cluster.router");
                        merged.SetPath(key, value.Clone(), $"{file}: {path}.scheduler.{key}");
                    }
                    groupScheduler = BindScheduler(new MapReader(merged, file, $"{path}.scheduler"), defaults) with { Router = scheduler.Router };
                }
                if (RLMServing.Simulation.Batching.BatchPlanners.Get(groupScheduler.Batching).DecodesShareTokenBudget && groupScheduler.MaxNumBatchedTokens < groupScheduler.MaxNumSeqs)
                    throw g.Error("scheduler", $"max_num_batched_tokens must be at least max_num_seqs ({groupScheduler.MaxNumSeqs}) with {groupScheduler.Batching.Name}");
                if (cost.Calibration is { } cal && (!string.Equals(cal.Gpu, gpu.Name, StringComparison.OrdinalIgnoreCase) || cal.TensorParallel != tp))
                    throw g.Error("gpu", $"the calibrated cost model ({cost.File}) was fitted on {cal.TensorParallel} x {cal.Gpu}; this group runs {tp} x {gpu.Name}");
                try { KvCachePlan.For(model, gpu, tp, kv, groupScheduler, draftMemory); }
                catch (UserInputException e) { throw new UserInputException($"{file}: {path}: {e.Message}"); }
                g.Done();
                groups.Add(new ReplicaGroupConfig(name, gpu.Name, replicas, tp, groupScheduler, role));
            }
        }
        KvTransferConfig? link = null;
        if (c.Map("kv_transfer") is { } t)
        {
            link = new KvTransferConfig(t.PositiveDouble("bandwidth_gbps"), t.NonNegativeDouble("latency_ms", 0));
            t.Done();
        }
        var cluster = new ClusterConfig(groups, balance, link);
        if (cluster.Disaggregated)
        {
            if (groups.Any(g => g.Role == ReplicaRole.Both) || !groups.Any(g => g.Role == ReplicaRole.Prefill) || !groups.Any(g => g.Role == ReplicaRole.Decode))
                throw c.Error("groups", "a disaggregated cluster needs every group to be role: prefill or role: decode, with at least one of each");
            if (link is null) throw c.Error("kv_transfer", "is required with prefill and decode groups: { bandwidth_gbps: GB/s per transfer, latency_ms }");
            if (arrivalIsClosedLoop) throw c.Error("groups", "closed-loop arrivals (closed_loop, closed_batches) cannot drive a disaggregated cluster yet; use an open-loop arrival process or a trace");
        }
        else if (link is not null) throw c.Error("kv_transfer", "only applies to a disaggregated cluster (groups with role: prefill and role: decode)");
        c.Done();
        return (cluster, scheduler);
    }
}
