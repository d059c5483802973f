using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.IO.Catalog;
using RLMServing.Policies;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Workloads;

namespace RLMServing.Tests.Simulation;

/// <summary>Small random scenarios over every batching policy and queue order, with KV caches tight enough to preempt.</summary>
public static class TestScenarios
{
    public static readonly HardwareCatalog Catalog = CatalogLoader.Load([CatalogLoader.BundledDirectory]);
    public static ModelArchitecture Tiny => Catalog.Model("tiny");

    /// <summary>A made-up GPU with a few MiB, so the tiny model's KV cache holds only a few thousand tokens.</summary>
    public static GpuSpec SmallGpu(double memoryMib) =>
        new("test-gpu", memoryMib / 1024.0, 1000, 100, 100, 10, "none", 10, []);

    public static Scenario Random(int seed)
    {
        var rng = new Random(seed);
        // Every registered policy, a new one included, is drawn (never a hard-coded count).
        var policies = RLMServing.Simulation.Batching.BatchPlanners.All;
        var batching = policies[rng.Next(policies.Count)].Policy;
        var queue = (QueueOrder)rng.Next(3);
        int maxSeqs = rng.Next(1, 24);
        int budget = Math.Max(maxSeqs, rng.Next(8, 400));
        var sched = new SchedulerConfig(batching, maxSeqs, budget, queue, PreemptionMode.Recompute,
            batching == BatchingPolicy.Static && rng.Next(2) == 0 ? rng.Next(1, 200) : 0, RouterKind.RoundRobin);
        // Half the vllm_v0 draws pad their prefill steps as vLLM 0.2.x did, on a stream of their own (the rest of the
        // scenario stays what the seed drew before).
        var padding = new Random(seed ^ 0x9add);
        if (batching == BatchingPolicy.VllmV0 && padding.Next(2) == 0) sched = sched with { MaxPaddings = padding.Next(0, 300) };
        int requests = rng.Next(1, 60);
        ArrivalProcess arrival = rng.Next(4) switch
        {
            0 => new PoissonArrivals(rng.Next(1, 200)),
            1 => new GammaArrivals(rng.Next(1, 200), 0.2 + rng.NextDouble()),
            2 => new ConstantArrivals(rng.Next(1, 200)),
            // Closed batches share the closed-loop draw and pick between them on a stream of their own, so every seed
            // draws the rest of the scenario it drew before (fixed-seed tests keep their scenarios).
            _ => new Random(seed ^ 0xc10b).Next(2) == 0 ? new ClosedLoopArrivals(rng.Next(1, 10), rng.Next(0, 50))
                : new ClosedBatchArrivals(2 * rng.Next(1, 10), rng.Next(0, 50)),
        };
        var workload = new SyntheticWorkload(requests, arrival,
            new Clamped(new LogNormalTokens(rng.Next(4, 200), 0.8), 1, 600),
            new Clamped(new MixtureTokens([(0.6, new LogNormalTokens(20, 0.5)), (0.4, new LogNormalTokens(rng.Next(50, 400), 0.4))]), 1, 2000),
            rng.NextDouble() < 0.5 ? 0.8 : 0.0, null, null, 4096, rng.Next(3) == 0 ? rng.Next(0, 100) : null,
            queue == QueueOrder.Priority ? new UniformTokens(0, 3) : null);
        var kv = new KvCacheConfig(new[] { 1, 4, 16 }[rng.Next(3)], 1.0, 0);
        return new Scenario($"random-{seed}", seed, new HardwareConfig("test-gpu", rng.Next(1, 4), 1), "tiny",
            new CostModelConfig("roofline", null, 0.6, 0.85, 1.0, 10), workload, null, sched, kv,
            new SloConfig(200, 50, null), new MetricsConfig(0.05), new SimulationConfig(true));
    }

    /// <summary>Memory for roughly 1,500 to 6,000 KV tokens of the tiny model (512 bytes per token).</summary>
    public static GpuSpec GpuFor(int seed) => SmallGpu(1 + new Random(seed ^ 0x5eed).Next(0, 3));

    public static SimulationResult Run(Scenario s, GpuSpec gpu, bool check = true) =>
        Simulator.Run(s, Tiny, gpu, CostModelFactory.Build(s, Tiny, gpu, s.Hardware.TensorParallel, Catalog), checkInvariants: check);

    /// <summary>The one run of a scenario file, with <c>--set</c> overrides, bound as the CLI binds it.</summary>
    public static RLMServing.IO.Runs.PreparedRun PrepareFile(string path, params string[] sets) =>
        RLMServing.IO.Runs.ScenarioRunner.Prepare(RLMServing.IO.Scenarios.ScenarioLoader.Load(path, sets), CatalogLoader.LoadDefault()).Single();

    /// <summary>Two runs gave the same requests, the same summary.json bytes and the same time series.</summary>
    public static void AssertIdentical(SimulationResult expected, SimulationResult actual)
    {
        Xunit.Assert.Equal(expected.Requests, actual.Requests);
        Xunit.Assert.Equal(System.Text.Json.JsonSerializer.Serialize(expected.Summary, RLMServing.IO.Results.ResultWriter.Json),
            System.Text.Json.JsonSerializer.Serialize(actual.Summary, RLMServing.IO.Results.ResultWriter.Json));
        Xunit.Assert.Equal(expected.Timeseries, actual.Timeseries);
        // The ITL gaps by time (the steady window's ITL) are not in summary.json: bucket by bucket, the same.
        var (e, a) = (expected.Summary.ItlByTime, actual.Summary.ItlByTime);
        Xunit.Assert.Equal(e is null, a is null);
        if (e is null || a is null) return;
        Xunit.Assert.Equal(e.WidthS, a.WidthS);
        for (int i = 0; i < RLMServing.Metrics.TimedQuantileSketch.MaxBuckets; i++)
        {
            var (eb, ab) = (e.Between(i * e.WidthS, (i + 1) * e.WidthS), a.Between(i * a.WidthS, (i + 1) * a.WidthS));
            Xunit.Assert.Equal(eb?.Count, ab?.Count);
            foreach (var q in new[] { 0.5, 0.99 }) Xunit.Assert.Equal(eb?.Quantile(q), ab?.Quantile(q));
        }
    }

    /// <summary>
    /// A random scenario with a combination of serving policies: bit 0 of <paramref name="combination"/> turns KV
    /// compression on, bit 1 speculative decoding, bit 2 a thinking budget; their knobs are drawn from the seed.
    /// </summary>
    public static Scenario WithRandomPolicies(Scenario s, int seed, int combination)
    {
        var rng = new Random(seed ^ 0x70111c);
        var compression = CompressionConfig.Off;
        if ((combination & 1) != 0)
        {
            var policy = (CompressionPolicy)rng.Next(1, 5);
            int interval = policy == CompressionPolicy.Streaming ? s.KvCache.BlockSize : rng.Next(1, 64);
            compression = new CompressionConfig(policy, rng.Next(1, 300), 0.05 + 0.95 * rng.NextDouble(), interval, rng.Next(1, 33),
                new QualityEstimate([(16, 0.5), (256, 1.0)], null, "test"));
        }
        SpeculativeConfig? spec = null;
        if ((combination & 2) != 0)
        {
            var method = (SpeculativeMethod)rng.Next(3);
            // A draft model is a catalog model, as the loader requires: the tiny model drafts for itself.
            spec = new SpeculativeConfig(method, method == SpeculativeMethod.Draft ? "tiny" : null, rng.Next(1, 8), 0.05 + 0.9 * rng.NextDouble(), 0.1, "test");
            // Draft memory and step overhead from their own stream, so the draws above stay what they were. The
            // reservation is small beside the test GPUs' 1-3 MiB: up to 64 KiB fixed and half the tiny model's KV per token.
            var draft = new Random(seed ^ 0xd4af7);
            spec = spec with
            {
                Memory = spec.Method == SpeculativeMethod.Ngram ? RLMServing.Memory.DraftMemory.None
                    : draft.Next(4) == 0 ? new RLMServing.Memory.DraftMemory(0, 0, draft.Next(0, 65_536))
                    : new RLMServing.Memory.DraftMemory(draft.Next(0, 65_536), draft.Next(0, 257)),
                DraftStepOverheadMs = draft.Next(2) == 0 ? null : 2 * draft.NextDouble(),
            };
        }
        ThinkingBudgetConfig? budget = null;
        if ((combination & 4) != 0)
            budget = new ThinkingBudgetConfig(rng.Next(2) == 0 ? ThinkingBudgetPolicy.Static : ThinkingBudgetPolicy.Adaptive,
                rng.Next(0, 400), rng.Next(0, 100), 0.5 + 8 * rng.NextDouble(), new QualityEstimate([(64, 0.2), (1024, 0.6)], null, "test"))
            {
                // Adaptive budgets follow the queue alone or the KV usage too, with or without a hysteresis band.
                KvThreshold = rng.Next(2) == 0 ? null : 0.95 * rng.NextDouble(),
                Hysteresis = rng.Next(3) == 0 ? 0 : 0.5 * rng.NextDouble(),
            };
        return s with { Policies = new PolicyConfig(compression, spec, budget) };
    }

    /// <summary>One replica group of the tiny model on <paramref name="gpu"/>, as many replicas as the scenario's hardware.</summary>
    /// <summary>The scenario's hardware as one replica group, its cost model built as every run builds it (CostModelFactory).</summary>
    public static ReplicaGroup Group(Scenario s, GpuSpec gpu) =>
        new("default", s.Hardware.Replicas, gpu, 1, s.Scheduler, CostModelFactory.Build(s, Tiny, gpu, 1, Catalog));

    public static SimulationResult RunGroups(Scenario s, IReadOnlyList<ReplicaGroup> groups, bool check = true, bool lockstep = false) =>
        Simulator.Run(s, Tiny, groups, checkInvariants: check, lockstep: lockstep);

    /// <summary>
    /// <see cref="Random"/> plus every cluster and memory policy drawn at random: the router, swap or recompute
    /// preemption with a small swap space, a watermark, and prefix caching over requests that share prefixes
    /// (system-prompt families, Mooncake-style hash chains, or multi-turn sessions).
    /// </summary>
    public static Scenario RandomCombination(int seed)
    {
        var s = Random(seed);
        var rng = new Random(seed * 31 + 7);
        var routers = Enum.GetValues<RouterKind>();
        var sched = s.Scheduler with
        {
            Router = routers[rng.Next(routers.Length)],
            Preemption = rng.Next(2) == 0 ? PreemptionMode.Swap : PreemptionMode.Recompute,
        };
        var memory = new MemoryPolicyConfig(rng.Next(3) != 0, rng.Next(3) * 0.0005, 1 + rng.Next(50), rng.Next(3) == 0 ? 0.05 : 0);
        var requests = WithPrefixes(s.Workload!.Generate(s.Seed), rng);
        return s with { Scheduler = sched, KvCache = s.KvCache with { Memory = memory }, ReplayRequests = requests };
    }

    /// <summary>Gives requests prefix identities of one random kind (see <see cref="RequestSpec.PrefixHashes"/>).</summary>
    public static IReadOnlyList<RequestSpec> WithPrefixes(IReadOnlyList<RequestSpec> requests, Random rng)
    {
        int kind = rng.Next(3);
        int unit = new[] { 4, 16, 48 }[rng.Next(3)];
        return requests.Select(r => kind switch
        {
            0 => r with { PrefixHashes = [rng.Next(3)], PrefixHashTokens = unit * 4 },
            1 => r with { PrefixHashes = Chain(r.Id, rng, (r.PromptTokens + unit - 1) / unit), PrefixHashTokens = unit },
            _ => r with { PrefixHashes = [1_000_000 + rng.Next(4)], PrefixHashTokens = int.MaxValue },
        }).ToList();
    }

    private static long[] Chain(long id, Random rng, int units)
    {
        var chain = new long[units];
        int family = rng.Next(3), branch = rng.Next(2);
        for (int j = 0; j < units; j++)
            chain[j] = j == 0 ? family : j == 1 ? 100 + family * 10 + branch : 1_000 + id * 1_000 + j;
        return chain;
    }
}
