using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Scenarios;
using RLMServing.Tests.Cli;
using RLMServing.Tests.Simulation;
using Xunit;

namespace RLMServing.Tests.Scenarios;

/// <summary>Binding <c>cluster</c>, the router and preemption names and the <c>kv_cache</c> memory policies.</summary>
public class ClusterScenarioTests
{
    private const string Workload = """
        model: DeepSeek-R1-Distill-Qwen-7B
        workload:
          requests: 40
          arrival: { process: poisson, rate: 20 }
          prompt_tokens: { dist: uniform, min: 10, max: 200 }
          output_tokens: { dist: uniform, min: 10, max: 300 }
        """;

    private static Scenario Bind(string yaml, params string[] sets)
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "c.yaml");
        File.WriteAllText(path, yaml);
        var file = ScenarioLoader.Load(path, sets);
        return ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
    }

    private static string Error(string yaml, params string[] sets) => Assert.Throws<UserInputException>(() => Bind(yaml, sets)).Message;

    [Fact]
    public void ExistingKeysKeepWorking()
    {
        var s = Bind("hardware: { gpu: H100-SXM-80G, replicas: 3, tensor_parallel: 2 }\nscheduler: { router: random }\n" + Workload);
        Assert.Null(s.Cluster);
        Assert.Equal(RouterKind.Random, s.Scheduler.Router);
        Assert.Equal(3, s.Hardware.Replicas);
        Assert.True(s.KvCache.Memory.PrefixCaching);   // vLLM V1's default
        Assert.Equal(PreemptionMode.Recompute, s.Scheduler.Preemption);
    }

    /// <summary>
    /// <c>hardware:</c> is a cluster of one group: the same checks, with the same words, each naming its own keys.
    /// </summary>
    [Theory]
    [InlineData("tensor_parallel: 3", "tensor_parallel: 3 does not divide the 28 attention heads of DeepSeek-R1-Distill-Qwen-7B")]
    [InlineData("gpu: H100-SXM-8OG", "gpu: ")]
    [InlineData("replicas: 0", "replicas: ")]
    public void HardwareAndAOneGroupClusterAreCheckedAlike(string setting, string message)
    {
        string keys = setting.StartsWith("gpu:") ? setting : $"gpu: H100-SXM-80G, {setting}";
        var hardware = Error($"hardware: {{ {keys} }}\n" + Workload);
        var cluster = Error($"cluster: {{ groups: [ {{ name: a, {keys} }} ] }}\n" + Workload);
        Assert.Contains("hardware." + message, hardware);
        Assert.Contains("cluster.groups[0]." + message, cluster);
        Assert.Equal(hardware[(hardware.IndexOf("hardware.") + "hardware.".Length)..], cluster[(cluster.IndexOf("cluster.groups[0].") + "cluster.groups[0].".Length)..]);
    }

    [Theory]
    [InlineData("least_outstanding", RouterKind.LeastOutstanding)]
    [InlineData("least_kv", RouterKind.LeastKv)]
    [InlineData("power_of_two", RouterKind.PowerOfTwo)]
    [InlineData("prefix_affinity", RouterKind.PrefixAffinity)]
    public void RoutersBindFromEitherPlace(string name, RouterKind kind)
    {
        Assert.Equal(kind, Bind("hardware: { gpu: H100-SXM-80G, replicas: 2 }\n" + Workload, $"scheduler.router={name}").Scheduler.Router);
        var s = Bind("hardware: { gpu: H100-SXM-80G, replicas: 2 }\n" + Workload, $"cluster.router={name}");
        Assert.Equal(kind, s.Scheduler.Router);
        Assert.Empty(s.Cluster!.Groups);
    }

    [Fact]
    public void GroupsInheritTheSchedulerAndOverrideKeys()
    {
        var s = Bind("""
            scheduler: { batching: chunked_prefill, max_num_seqs: 64, max_num_batched_tokens: 1024 }
            cluster:
              router: least_kv
              groups:
                - { name: big, gpu: H200-SXM-141G, replicas: 2, tensor_parallel: 2 }
                - { name: small, gpu: A100-SXM-80G, replicas: 3, scheduler: { max_num_seqs: 32 } }
            """ + "\n" + Workload);
        Assert.Equal(5, s.Hardware.Replicas);
        Assert.Equal(2, s.Hardware.TensorParallel);
        var g = s.Cluster!.Groups;
        Assert.Equal(64, g[0].Scheduler.MaxNumSeqs);
        Assert.Equal(32, g[1].Scheduler.MaxNumSeqs);
        Assert.Equal(BatchingPolicy.ChunkedPrefill, g[1].Scheduler.Batching);
        Assert.Equal(1024, g[1].Scheduler.MaxNumBatchedTokens);
        Assert.All(g, x => Assert.Equal(RouterKind.LeastKv, x.Scheduler.Router));
    }

    /// <summary>Serving policies apply to clusters of replica groups as to one group (they were once dropped there).</summary>
    [Fact]
    public void GroupsKeepTheServingPolicies()
    {
        var s = Bind("cluster: { groups: [ { gpu: H100-SXM-80G, replicas: 2 } ] }\n" + Workload,
            "thinking_budget={policy: adaptive, max_thinking_tokens: 1024, kv_threshold: 0.5}");
        Assert.Equal(RLMServing.Policies.ThinkingBudgetPolicy.Adaptive, s.PoliciesOrNone.ThinkingBudget!.Policy);
        Assert.Equal(0.5, s.PoliciesOrNone.ThinkingBudget.KvThreshold);
    }

    [Fact]
    public void MemoryPoliciesBind()
    {
        var s = Bind("hardware: { gpu: H100-SXM-80G }\nengine: vllm-v0\nscheduler: { preemption: swap }\nkv_cache: { prefix_caching: true, swap_space_gib: 8, swap_bandwidth_gbps: 50, watermark: 0.01 }\n" + Workload);
        Assert.Equal(PreemptionMode.Swap, s.Scheduler.Preemption);
        Assert.Equal(new MemoryPolicyConfig(true, 8, 50, 0.01), s.KvCache.Memory);
    }

    [Theory]
    [InlineData("hardware: { gpu: H100-SXM-80G }\ncluster: { groups: [ { gpu: H100-SXM-80G } ] }", "give either hardware or cluster.groups")]
    [InlineData("hardware: { gpu: H100-SXM-80G }\nscheduler: { router: random }\ncluster: { router: least_kv }", "give either cluster.router or scheduler.router")]
    [InlineData("hardware: { gpu: H100-SXM-80G }\nscheduler: { router: fastest }", "scheduler.router: unknown value 'fastest'")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G, scheduler: { router: random } } ] }", "cluster.groups[0].scheduler.router: the router is cluster-wide")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G, replicas: 0 } ] }", "cluster.groups[0].replicas: must be greater than 0")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G, tensor_parallel: 3 } ] }", "cluster.groups[0].tensor_parallel: 3 does not divide")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G, role: prefill }, { gpu: H100-SXM-80G, role: decode } ] }", "cluster.kv_transfer: is required")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G, role: prefill }, { gpu: H100-SXM-80G } ], kv_transfer: { bandwidth_gbps: 10 } }", "every group to be role: prefill or role: decode")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G } ], kv_transfer: { bandwidth_gbps: 10 } }", "cluster.kv_transfer: only applies to a disaggregated cluster")]
    [InlineData("cluster: { groups: [ { gpu: H100-SXM-80G, colour: red } ] }", "cluster.groups[0].colour: unknown key")]
    [InlineData("hardware: { gpu: H100-SXM-80G }\nkv_cache: { watermark: 2 }", "kv_cache.watermark: must be in [0, 1]")]
    public void MistakesNameTheKey(string cluster, string expected)
    {
        Assert.Contains(expected, Error(cluster + "\n" + Workload));
    }

    [Fact]
    public void SharedSystemPromptsFeedThePrefixCache()
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "sp.yaml");
        File.WriteAllText(path, "hardware: { gpu: H100-SXM-80G }\nkv_cache: { prefix_caching: true }\n" + Workload);
        var catalog = CatalogLoader.Load([CatalogLoader.BundledDirectory]);
        var run = ScenarioRunner.Prepare(ScenarioLoader.Load(path, ["workload.system_prompt={tokens: 1024, count: 2}"]), catalog)[0];
        var plain = ScenarioRunner.Prepare(ScenarioLoader.Load(path), catalog)[0];
        var requests = run.Scenario.Requests();
        var without = plain.Scenario.Requests();
        Assert.All(requests.Zip(without), p => Assert.Equal(p.Second.PromptTokens + 1024, p.First.PromptTokens));
        Assert.Equal([0L, 1L], requests.Select(r => r.PrefixHashes![0]).Distinct().Order());
        var result = ScenarioRunner.Simulate(run, null);
        // Every request after the first of each system prompt can reuse its 1,024 tokens (64 blocks).
        Assert.InRange(result.Summary.PrefixCacheHitRate!.Value, 0.5, 1.0);
        Assert.Contains("workload.system_prompt: applies to synthetic workloads", Error("hardware: { gpu: H100-SXM-80G }\nmodel: Llama-3.1-8B-Instruct\nworkload: { trace: x.jsonl, system_prompt: { tokens: 10 } }"));
    }

    /// <summary>A heterogeneous, disaggregated cluster runs end to end from YAML, each group with its own GPU and cost model.</summary>
    [Fact]
    public void ADisaggregatedHeterogeneousClusterRunsFromYaml()
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "d.yaml");
        File.WriteAllText(path, """
            cluster:
              router: least_outstanding
              groups:
                - { name: prefill, gpu: H100-SXM-80G, replicas: 1, role: prefill }
                - { name: decode, gpu: A100-SXM-80G, replicas: 2, role: decode }
              kv_transfer: { bandwidth_gbps: 25, latency_ms: 1 }
            """ + "\n" + Workload);
        var run = ScenarioRunner.Prepare(ScenarioLoader.Load(path), CatalogLoader.Load([CatalogLoader.BundledDirectory]))[0];
        Assert.Equal(["H100-SXM-80G", "A100-SXM-80G", "A100-SXM-80G"], run.Groups.SelectMany(g => Enumerable.Repeat(g.Gpu.Name, g.Replicas)));
        var result = ScenarioRunner.Simulate(run, null);
        Assert.Equal(40, result.Summary.Completed);
        Assert.Equal("H100-SXM-80G + A100-SXM-80G", result.Summary.Gpu);
        Assert.Equal(40, result.Summary.KvTransfers);
        Assert.All(result.Requests, r => Assert.InRange(r.Replica, 1, 2));
    }
}
