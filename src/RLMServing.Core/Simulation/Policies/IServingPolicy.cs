namespace RLMServing.Simulation.Policies;

/// <summary>
/// A serving policy inside the iteration loop (KV compression, speculative decoding, thinking budgets). Each hook
/// is called at one point of the loop; a policy changes a decoding request's progress only through
/// <see cref="IPolicyHost.Reanchor"/>, so the fast-forward engine stays exact. Per-request state lives in a state
/// object of the policy's own type on the request (it travels with a request handed to another replica).
/// </summary>
internal interface IServingPolicy
{
    /// <summary>A request arrived at the replica (before admission checks).</summary>
    void OnArrival(SimRequest r) { }

    /// <summary>A request was (re)admitted: into prefill, or swapped back into the decode set.</summary>
    void OnAdmitted(SimRequest r) { }

    /// <summary>The batching policy has admitted what it could; the iteration has not run yet.</summary>
    void OnSchedulerTurn() { }

    /// <summary>A request joined the decode set (its events are scheduled right after).</summary>
    void OnJoinDecode(SimRequest r) { }

    /// <summary>A request left the decode set (finished, preempted or handed off).</summary>
    void OnLeaveDecode(SimRequest r) { }

    /// <summary>One decode step of the whole decode set has run.</summary>
    void AfterDecodeStep() { }

    /// <summary>An iteration of <paramref name="timeS"/> has been accounted.</summary>
    void OnIteration(double timeS) { }

    /// <summary>A request completed (not rejected).</summary>
    void OnCompleted(SimRequest r) { }

    /// <summary>The policy's invariants, checked at every scheduler turn in tests.</summary>
    void Verify() { }
}

/// <summary>What a serving policy may read of its replica and the changes it may make.</summary>
internal interface IPolicyHost
{
    /// <summary>Decode iterations executed (the lazy-progress counter).</summary>
    long Dc { get; }

    bool FastForward { get; }
    bool CheckInvariants { get; }
    int WaitingCount { get; }
    Memory.KvBlockLedger Ledger { get; }
    Engine.DecodeSet Decoding { get; }
    IReadOnlyList<SimRequest> Prefilling { get; }
    PolicyStats Totals { get; }

    /// <summary>The scenario's seed: the stream of speculative acceptance draws.</summary>
    int Seed { get; }

    /// <summary>Moves a decoding request to new (generated, KV) values now: KV sum, block phases, ledger and events follow.</summary>
    void Reanchor(SimRequest r, int generated, long kv);

    /// <summary>A decoding request's length or thinking changed: its completion and milestone events are re-scheduled.</summary>
    void RescheduleEvents(SimRequest r);

    /// <summary>Schedules a decode event of a decoding request (fast-forward only; the reference mode scans).</summary>
    void ScheduleEvent(SimRequest r, Engine.DecodeEventKind kind, long dc);
}
