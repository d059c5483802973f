using RLMServing.Scenarios;
using RLMServing.Simulation.Batching;
using RLMServing.Tests.Simulation;
using Xunit;

namespace RLMServing.Tests.Simulation.Batching;

public class BatchPlannerRegistryTests
{
    [Fact]
    public void ExamplePolicyRegisteredFromTheTestProjectIsDrawnByTheRandomScenarios()
    {
        Assert.NotNull(BatchPlanners.Find(OnePrefillPerIterationPlanner.Policy.Name));
        var drawn = Enumerable.Range(0, 200).Select(seed => TestScenarios.Random(seed).Scheduler.Batching).ToHashSet();
        Assert.Equal(BatchPlanners.All.Select(e => e.Policy).ToHashSet(), drawn);
    }

    [Fact]
    public void ExamplePolicyIsBoundFromAScenarioFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rlms-example-planner-{Environment.ProcessId}.yaml");
        File.WriteAllText(path, "name: example\nmodel: tiny\nhardware: { gpu: H100-SXM-80G }\nworkload: { requests: 20, arrival: { process: poisson, rate: 50 }, prompt_tokens: { dist: constant, value: 64 }, output_tokens: { dist: constant, value: 16 } }\nscheduler: { batching: one_prefill_per_iteration }\n");
        try
        {
            var run = TestScenarios.PrepareFile(path);
            Assert.Equal(OnePrefillPerIterationPlanner.Policy, run.Scenario.Scheduler.Batching);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ExamplePolicySpreadsABurstOverIterations()
    {
        // Twenty requests at once: continuous batching prefills them in one iteration, this policy in twenty.
        var burst = Enumerable.Range(0, 20).Select(i => new RLMServing.Workloads.RequestSpec(i, 0, 32, 0, 8)).ToList();
        Scenario With(BatchingPolicy b) => new("burst", 3, new HardwareConfig("test-gpu", 1, 1), "tiny", new CostModelConfig("roofline", null, 0.6, 0.85, 1.0, 10),
            null, burst, new SchedulerConfig(b, 32, 8192, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin),
            new KvCacheConfig(16, 1.0, 0), new SloConfig(null, null, null), new MetricsConfig(0.1), new SimulationConfig(true));
        var one = TestScenarios.Run(With(OnePrefillPerIterationPlanner.Policy), TestScenarios.SmallGpu(64));
        var continuous = TestScenarios.Run(With(BatchingPolicy.Continuous), TestScenarios.SmallGpu(64));
        var firstTokens = one.Requests.Select(r => r.FirstTokenTimeS).Distinct().Count();
        Assert.Equal(20, firstTokens);
        Assert.Single(continuous.Requests.Select(r => r.FirstTokenTimeS).Distinct());
    }

    [Fact]
    public void DocsListEveryBuiltInPolicy()
    {
        string docs = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "scenarios.md"));
        foreach (var e in BatchPlanners.All.Where(e => e.Policy != OnePrefillPerIterationPlanner.Policy))
            Assert.Contains($"**{e.Policy.Name}**", docs);
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RLMServing.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
