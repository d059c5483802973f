namespace RLMServing.Simulation.Batching;

/// <summary>
/// Request-level (static) batching: a batch is formed from the queue (up to max_num_seqs, after an optional
/// batch_timeout_ms), prefilled, then decoded until its last member finishes; nothing joins mid-batch, so one long
/// request holds every slot (head-of-line blocking).
/// </summary>
internal sealed class StaticBatchPlanner : BatchPlanner
{
    private readonly List<SimRequest> _batch = new();
    private bool _active;

    public override bool HoldsBatch => _active;

    public override bool Step(IReplicaScheduler replica)
    {
        var config = replica.Config;
        if (!_active)
        {
            if (replica.WaitingCount == 0) return false;
            if (config.BatchTimeoutMs > 0 && replica.WaitingCount < config.MaxNumSeqs
                && replica.ClockS < replica.OldestWaitingArrivalS() + config.BatchTimeoutMs / 1000.0)
                return false;
            while (replica.WaitingCount > 0 && _batch.Count < config.MaxNumSeqs)
            {
                var r = replica.PeekWaiting();
                if (!replica.TryAdmit(r, r.PrefillLeft)) break;
                _batch.Add(r);
            }
            if (_batch.Count == 0) return false;
            _active = true;
        }
        replica.EndAdmissions();
        if (replica.Prefilling.Count > 0) return RunLeftoverPrefills(replica);
        if (replica.DecodingCount > 0)
        {
            replica.DecodeStretch(respectArrivals: false);
            return true;
        }
        // Every member has finished.
        _batch.Clear();
        _active = false;
        return true;
    }

    /// <summary>Prefills of admitted requests that have not run yet, whole prompts within the token budget.</summary>
    private static bool RunLeftoverPrefills(IReplicaScheduler replica)
    {
        int budget = replica.Config.MaxNumBatchedTokens;
        var prefilling = replica.Prefilling;
        for (int i = 0; i < prefilling.Count; i++)
        {
            var r = prefilling[i];
            int tokens = r.PrefillTarget - r.Prefilled;
            if (tokens > budget && replica.PlannedChunks > 0) break;
            if (!replica.TryPlanChunk(r, tokens, reservedBlocks: 0)) break;
            budget -= tokens;
            if (budget <= 0) break;
        }
        if (replica.PlannedChunks == 0) return false;
        replica.RunPrefillIteration(withDecodes: false);
        return true;
    }

    public override double NextWakeS(IReplicaScheduler replica) =>
        replica.WaitingCount > 0 && replica.Config.BatchTimeoutMs > 0
            ? replica.OldestWaitingArrivalS() + replica.Config.BatchTimeoutMs / 1000.0
            : double.PositiveInfinity;

    public override void OnPreempted(SimRequest r) => _batch.Remove(r);

    /// <summary>The batch never outgrows max_num_seqs (members leave it only by finishing or being preempted).</summary>
    public override void Verify(IReplicaScheduler replica)
    {
        if (_batch.Count > replica.Config.MaxNumSeqs) throw new InvalidOperationException("static batch larger than max_num_seqs");
    }
}
