using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.Scenarios;

namespace RLMServing.Simulation;

/// <summary>Replicas that share a GPU type, tensor-parallel degree, scheduler and cost model.</summary>
public sealed record ReplicaGroup(string Name, int Replicas, GpuSpec Gpu, int TensorParallel, SchedulerConfig Scheduler, ICostModel Cost,
    ReplicaRole Role = ReplicaRole.Both)
{
    /// <summary>The one group that a scenario's <c>hardware</c> section describes.</summary>
    public static ReplicaGroup Single(Scenario scenario, GpuSpec gpu, ICostModel cost) =>
        new("default", scenario.Hardware.Replicas, gpu, scenario.Hardware.TensorParallel, scenario.Scheduler, cost);
}
