using System.Runtime.CompilerServices;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Simulation.Batching;

namespace RLMServing.Tests.Simulation.Batching;

/// <summary>
/// An example batching policy added from outside the engine, as a user would: one class and one registry line
/// (<see cref="Registration"/>). It is continuous batching that admits at most one new prefill per iteration, so
/// a burst of arrivals is spread over several iterations. Because the property tests draw policies from the
/// registry, it runs through fast-vs-naive equivalence and every invariant check with no other edit.
/// </summary>
internal sealed class OnePrefillPerIterationPlanner : BatchPlanner
{
    public static readonly BatchingPolicy Policy = new("one_prefill_per_iteration", "OnePrefillPerIteration");

    public override bool Step(IReplicaScheduler replica)
    {
        while (replica.PlannedChunks == 0 && replica.WaitingCount > 0 && replica.RunningCount < replica.Config.MaxNumSeqs)
        {
            var r = replica.PeekWaiting();
            int tokens = r.PrefillLeft;
            if (!replica.TryAdmit(r, tokens)) break;
            if (r.State == RequestState.Decoding) continue;   // swapped back in: decodes, no prefill
            replica.PlanChunk(r, tokens);
        }
        return RunPlannedOrDecode(replica, withDecodes: false);
    }
}

internal static class Registration
{
    [ModuleInitializer]
    internal static void RegisterExamplePlanner() =>
        BatchPlanners.Register(OnePrefillPerIterationPlanner.Policy, "example: continuous batching, one new prefill per iteration", false, () => new OnePrefillPerIterationPlanner());
}
