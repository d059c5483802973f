using RLMServing.Scenarios;

namespace RLMServing.Simulation.Batching;

/// <summary>
/// A batching policy: at each scheduler turn it decides what the next iteration runs — which waiting requests are
/// admitted, which prefill chunks of what size, whether the decodes ride along — and hands the iteration to the
/// replica to run. It reads the replica and acts on it only through <see cref="IReplicaScheduler"/>, whose
/// operations keep the KV ledger, the decode set and the serving policies consistent, so a planner cannot corrupt
/// the engine's bookkeeping. One class per policy, registered in <see cref="BatchPlanners"/>.
/// </summary>
internal interface IBatchPlanner
{
    /// <summary>Plans one scheduler turn and runs its iteration; false when nothing can run now (the replica waits).</summary>
    bool Step(IReplicaScheduler replica);

    /// <summary>True while a batch is in flight that new requests may not join (the replica is not idle meanwhile).</summary>
    bool HoldsBatch { get; }

    /// <summary>Besides arrivals, the next time this planner wants a turn (a static batch's timeout); +∞ for none.</summary>
    double NextWakeS(IReplicaScheduler replica);

    /// <summary>A running request was preempted (its KV freed or swapped out) and is waiting again.</summary>
    void OnPreempted(SimRequest r);

    /// <summary>The planner's invariants, checked at every turn when invariant checking is on (tests).</summary>
    void Verify(IReplicaScheduler replica);
}

/// <summary>
/// What a batch planner sees of a replica and the operations it may use. Admissions and chunk plans allocate KV
/// blocks through the ledger and fail (return false) when the blocks are not free; the run methods execute the
/// planned iteration (priced by the cost model, or on a real executor) and apply its progress.
/// </summary>
internal interface IReplicaScheduler
{
    SchedulerConfig Config { get; }
    double ClockS { get; }
    int WaitingCount { get; }
    int RunningCount { get; }
    int DecodingCount { get; }

    /// <summary>Admitted requests whose prefill has not finished, in admission order.</summary>
    IReadOnlyList<SimRequest> Prefilling { get; }

    /// <summary>Chunks planned for the iteration being built.</summary>
    int PlannedChunks { get; }

    /// <summary>The head of the waiting queue, with the prefix-cache hit it would get if admitted now.</summary>
    SimRequest PeekWaiting();

    /// <summary>Arrival time of the longest-waiting request (static batching's timeout).</summary>
    double OldestWaitingArrivalS();

    /// <summary>
    /// Admits the head of the queue if the KV blocks of its first chunk (or, swapped out, of its whole KV) fit beside
    /// <paramref name="reservedBlocks"/> and the admission watermark. A swapped-out request rejoins the decode set
    /// (<see cref="SimRequest.State"/> is then Decoding) and needs no chunk.
    /// </summary>
    bool TryAdmit(SimRequest r, int firstChunkTokens, long reservedBlocks = 0);

    /// <summary>Allocates an admitted request's next chunk and plans it, if its blocks are free.</summary>
    bool TryPlanChunk(SimRequest r, int tokens, long reservedBlocks);

    /// <summary>Plans a chunk whose blocks <see cref="TryAdmit"/> already allocated.</summary>
    void PlanChunk(SimRequest r, int tokens);

    /// <summary>Preempts (latest admitted first) until the decode set's next step fits; true when it preempted.</summary>
    bool EnsureDecodeBlocks();

    /// <summary>KV blocks the decode set's next step opens.</summary>
    long DecodeBlocksNeeded();

    /// <summary>The serving policies' turn: once admissions are done and before the iteration runs.</summary>
    void EndAdmissions();

    /// <summary>Runs the planned chunks as one iteration, with one step of every decode when <paramref name="withDecodes"/>.</summary>
    void RunPrefillIteration(bool withDecodes);

    /// <summary>
    /// Runs decode-only iterations until the scheduler has something to decide: a completion or milestone, KV
    /// exhaustion, a sample point, the horizon, and (when <paramref name="respectArrivals"/>) the next arrival.
    /// <paramref name="singleStep"/>: exactly one iteration (freed blocks may let a waiting request in).
    /// </summary>
    void DecodeStretch(bool respectArrivals, bool singleStep = false);
}
