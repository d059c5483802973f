namespace RLMServing.Simulation.Batching;

/// <summary>
/// Defaults for planners that keep no batch of their own (continuous batching and its relatives): they never hold
/// the replica, want no wake-ups besides arrivals, and keep at most max_num_seqs requests running.
/// </summary>
internal abstract class BatchPlanner : IBatchPlanner
{
    public abstract bool Step(IReplicaScheduler replica);

    public virtual bool HoldsBatch => false;

    public virtual double NextWakeS(IReplicaScheduler replica) => double.PositiveInfinity;

    public virtual void OnPreempted(SimRequest r) { }

    public virtual void Verify(IReplicaScheduler replica)
    {
        if (replica.RunningCount > replica.Config.MaxNumSeqs) throw new InvalidOperationException("more running than max_num_seqs");
    }

    /// <summary>Runs the chunks planned this turn, or else a decode stretch; false when there is nothing to run.</summary>
    protected static bool RunPlannedOrDecode(IReplicaScheduler replica, bool withDecodes, bool justPreempted = false)
    {
        replica.EndAdmissions();
        if (replica.PlannedChunks > 0)
        {
            replica.RunPrefillIteration(withDecodes);
            return true;
        }
        if (replica.DecodingCount == 0) return false;
        replica.DecodeStretch(respectArrivals: true, singleStep: justPreempted);
        return true;
    }
}
