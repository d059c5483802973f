using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Scheduling;

namespace RLMServing.Simulation;

/// <summary>Totals a replica accumulates over a run; memory is constant in the number of tokens.</summary>
internal sealed class ReplicaStats(double itlAccuracy)
{
    public double BusyS;
    public double Flops;
    public double Bytes;
    public long Iterations;
    public long BatchRequestsSum;
    public double KvBlockSeconds;
    public long PeakBlocks;
    public long Preemptions;
    public long SwapOuts;
    public long SwapIns;
    public long SwapFallbacks;
    public double SwapTransferS;
    public double EndS;
    public QuantileSketch Itl { get; } = new(itlAccuracy);
}

/// <summary>
/// One serving replica: an iteration-level loop over a waiting queue, a running batch and a paged KV cache.
/// The batching policy decides each iteration; the cost model prices it; progress is applied at its end.
/// Steady decode stretches (no arrival that matters, no completion, no milestone, no KV exhaustion, no sample
/// point) are advanced with O(1) work per iteration and none per request. With fast-forward off the engine is the
/// naive reference instead: every iteration goes back through the scheduler, every decoding request's token and KV
/// counts are stepped one by one, KV blocks are allocated by looking at each request, and completions are found by
/// scanning the batch rather than from the event queue. A property test requires both to give identical results.
/// </summary>
internal sealed partial class ReplicaEngine
{
    private const int FinishEvent = 0, AnswerEvent = 1;

    private readonly int _replica;
    private readonly SchedulerConfig _sched;
    private readonly ICostModel _cost;
    private readonly KvCachePlan _kv;
    private readonly bool _fastForward;
    private readonly double _sampleIntervalS;
    private readonly IClientLoop? _clients;
    private readonly IIterationExecutor? _executor;
    private readonly List<ChunkWork> _chunkWork = new();
    private readonly List<DecodeWork> _decodeWork = new();

    private readonly PriorityQueue<SimRequest, (double, long)> _arrivals = new();
    private readonly WaitingQueue _waiting;
    private readonly List<SimRequest> _prefilling = new();   // admitted, prefill not finished, in admission order
    private readonly List<SimRequest> _decoding = new();     // decode set (unordered; removal by swap)
    private readonly Dictionary<SimRequest, int> _decodeIndex = new(ReferenceEqualityComparer.Instance);
    private readonly List<SimRequest> _fresh = new();        // joined the decode set since the last decode iteration
    private readonly PriorityQueue<(SimRequest R, int Version, int Kind), (long Dc, long Seq)> _decodeEvents = new();
    private readonly long[] _phaseCount;
    private readonly List<SimRequest> _batch = new();        // static batching: members of the current batch
    private readonly List<PrefillChunk> _chunkBuffer = new();
    private readonly List<SimRequest> _chunkOwners = new();

    private double _clock;
    private long _dc;              // decode iterations executed
    private long _kvSum;           // sum of KV entries over the decode set
    private long _usedBlocks;
    private long _admitSeq;
    private double _lastDecodeEndS;
    private double _nextSampleS;
    private long _sampleIndex;
    private bool _batchActive;
    private double _horizonS = double.PositiveInfinity;
    private double _lastCheckedClock;

    public ReplicaEngine(int replica, SchedulerConfig sched, ICostModel cost, KvCachePlan kv, bool fastForward,
        double sampleIntervalS, IClientLoop? clients, ReplicaStats stats,
        List<RequestRecord> records, List<TimeseriesPoint> timeseries, IIterationExecutor? executor = null)
    {
        if (executor is not null && fastForward)
            throw new ArgumentException("a real executor runs one iteration per scheduler turn: fast-forward must be off");
        _executor = executor;
        _replica = replica;
        _sched = sched;
        _cost = cost;
        _kv = kv;
        _fastForward = fastForward;
        _sampleIntervalS = sampleIntervalS;
        _clients = clients;
        Stats = stats;
        Records = records;
        Timeseries = timeseries;
        _waiting = new WaitingQueue(sched.Queue);
        _phaseCount = new long[kv.BlockSize];
    }

    public ReplicaStats Stats { get; }
    public IClientLoop? Clients => _clients;
    public List<RequestRecord> Records { get; }
    public List<TimeseriesPoint> Timeseries { get; }
    public Action? OnRequestDone { get; set; }

    /// <summary>
    /// The machine's speed over the run (cost_model.slowdown): a priced iteration takes its cost times the factor at
    /// its start. A real executor's measured times are taken as they are.
    /// </summary>
    public Slowdown? Slowdown { get; init; }

    /// <summary>Re-derives the KV accounting from every request at each scheduler turn (tests; slow).</summary>
    public bool CheckInvariants { get; set; }

    private int BlockSize => _kv.BlockSize;
    private long TotalBlocks => _kv.TotalBlocks;
    private int RunningCount => _prefilling.Count + _decoding.Count;

    public void AddArrival(SimRequest r)
    {
        _arrivals.Enqueue(r, (r.ArrivalTimeS, r.Spec.Id));
        if (r.FirstScheduledS is null) _queuedPromptBlocks += BlocksFor(r.Spec.PromptTokens);
    }

    /// <summary>Runs until every arrival (including closed-loop follow-ups) has completed or been rejected.</summary>
    public void Run()
    {
        Advance(double.PositiveInfinity);
        Stats.EndS = _clock;
    }

    /// <summary>
    /// Runs the loop until the clock reaches <paramref name="horizonS"/> (the cluster's next arrival, which may be
    /// routed here) or the replica has nothing left to do. Stopping at the horizon only splits decode stretches,
    /// which fast-forwarding proves harmless, so results do not depend on where the driver stops the loop.
    /// </summary>
    public void Advance(double horizonS)
    {
        _horizonS = horizonS;
        while (true)
        {
            if (_executor is not null) _clock = Math.Max(_clock, _executor.NowS);
            ProcessDueDecodeEvents();
            AdmitArrivals();
            // At the horizon the driver routes the next arrival first: sampling now would miss it if it comes here.
            if (_clock >= horizonS) break;
            Sample();
            if (CheckInvariants) Verify(ref _lastCheckedClock);
            if (RunningCount == 0 && _waiting.Count == 0 && !_batchActive)
            {
                if (_arrivals.Count == 0) break;
                // Idle until the next arrival, stopping at sample points so the time series shows the idle spell.
                AdvanceIdle(Math.Min(_arrivals.Peek().ArrivalTimeS, _nextSampleS));
                continue;
            }
            bool progressed = _sched.Batching switch
            {
                BatchingPolicy.Static => StepStatic(),
                BatchingPolicy.Continuous => StepContinuous(),
                _ => StepChunked(),
            };
            if (!progressed)
            {
                // Nothing can run now (a static batch waiting for its timeout): wait for the next event.
                double next = Math.Min(NextWakeS(), horizonS);
                if (double.IsPositiveInfinity(next))
                    throw new InvalidOperationException($"replica {_replica}: scheduler stalled with {_waiting.Count} waiting, {_prefilling.Count} prefilling, {_decoding.Count} decoding, batch {_batchActive}, dc {_dc}, next event {NextEventDc()}");
                AdvanceIdle(Math.Min(next, _nextSampleS));
            }
        }
    }

    /// <summary>Idle until <paramref name="timeS"/>: the simulated clock jumps there; a real executor waits for it.</summary>
    private void AdvanceIdle(double timeS)
    {
        if (_executor is null)
        {
            _clock = Math.Max(_clock, timeS);
            return;
        }
        _executor.WaitUntil(timeS);
        _clock = Math.Max(_clock, _executor.NowS);
    }

    // ---- arrivals and admission ------------------------------------------------------------------

    private void AdmitArrivals()
    {
        while (_arrivals.Count > 0 && _arrivals.Peek().ArrivalTimeS <= _clock)
        {
            var r = _arrivals.Dequeue();
            ApplyThinkingCap(r);
            // The most KV a request ever holds: its prompt plus every output token but the last (never fed back).
            long peakKv = (long)r.Spec.PromptTokens + r.Target - 1;
            if (r.Spec.PromptTokens > _kv.CapacityTokens)
                Reject(r, "prompt_exceeds_kv_cache");
            else if (peakKv > _kv.CapacityTokens && OnPrefilled is null)   // a prefill replica only ever holds the prompt
                Reject(r, "exceeds_kv_cache");
            else
            {
                r.PrefillTarget = r.Spec.PromptTokens;
                r.State = RequestState.Waiting;
                if (!ParkSample(r)) _waiting.Enqueue(r);
            }
        }
    }

    private void Reject(SimRequest r, string reason)
    {
        r.RejectReason = reason;
        r.State = RequestState.Done;
        if (r.FirstScheduledS is null) _queuedPromptBlocks -= BlocksFor(r.Spec.PromptTokens);
        ReleaseSamples(r);
        Finish(r, r.ArrivalTimeS);
    }

    private void Finish(SimRequest r, double timeS)
    {
        Records.Add(r.ToRecord(_replica));
        OnRequestDone?.Invoke();
        _clients?.OnDone(r, timeS, this);
    }

    private long BlocksFor(long tokens) => (tokens + BlockSize - 1) / BlockSize;

    private long FreeBlocks => TotalBlocks - _usedBlocks;

    /// <summary>Moves the head of the queue into prefill if it fits; the caller sizes the first chunk.</summary>
    private bool TryAdmit(SimRequest r, int firstChunk, long reservedBlocks = 0)
    {
        if (_batchActive) throw new InvalidOperationException("static batching admitted a request mid-batch");
        if (r.SwappedKv > 0) return TrySwapIn(r, reservedBlocks);
        long need = BlocksFor(r.Prefilled + r.PendingPrefixTokens + firstChunk) - r.BlocksHeld - r.PendingPrefixTokens / BlockSize;
        int revived = PrefixRevived(r);
        if (need + revived > FreeBlocks - reservedBlocks - AdmissionWatermark()) return false;
        _waiting.Dequeue();
        AcquirePrefix(r);
        _usedBlocks += need;
        TrimPrefixCache();
        if (r.FirstScheduledS is null) _queuedPromptBlocks -= BlocksFor(r.Spec.PromptTokens);
        r.BlocksHeld += (int)need;
        r.State = RequestState.Prefilling;
        r.AdmitSeq = _admitSeq++;   // re-admission after a preemption counts as the latest, as in vLLM's running list
        FollowBudget(r);   // an adaptive budget applies from (re)admission
        r.FirstScheduledS ??= _clock;
        _prefilling.Add(r);
        return true;
    }

    // ---- batching policies -----------------------------------------------------------------------

    /// <summary>vLLM-style without chunking: an iteration runs waiting prefills if any fit, otherwise decodes.</summary>
    private bool StepContinuous()
    {
        _chunkBuffer.Clear();
        _chunkOwners.Clear();
        int budget = _sched.MaxNumBatchedTokens;
        while (_waiting.Count > 0 && RunningCount < _sched.MaxNumSeqs)
        {
            var r = PeekWaiting();
            int tokens = r.PrefillLeft;
            // A prompt longer than the token budget runs alone rather than never.
            if (tokens > budget && _chunkOwners.Count > 0) break;
            if (!TryAdmit(r, tokens)) break;
            if (r.State == RequestState.Decoding) continue;   // swapped back in: decodes, no prefill
            AddChunk(r, tokens);
            budget -= tokens;
            if (budget <= 0) break;
        }
        return RunPlannedOrDecode(withDecodes: false);
    }

    /// <summary>Sarathi-style: every iteration carries all decodes plus prefill chunks up to the token budget.</summary>
    private bool StepChunked()
    {
        _chunkBuffer.Clear();
        _chunkOwners.Clear();
        // Running decodes are scheduled first (preempting if KV is full); prefill chunks get what is left.
        // As vLLM V1: a step that had to preempt admits nobody new (the victim would come straight back).
        bool preempted = EnsureDecodeBlocks();
        long reserved = _decoding.Count > 0 ? DecodeBlocksNeeded() : 0;
        int budget = _sched.MaxNumBatchedTokens - _decoding.Count;
        foreach (var r in _prefilling)
        {
            if (budget <= 0) break;
            int chunk = Math.Min(r.PrefillTarget - r.Prefilled, budget);
            if (!TryPlanChunk(r, chunk, reserved)) break;
            budget -= chunk;
        }
        while (!preempted && budget > 0 && _waiting.Count > 0 && RunningCount < _sched.MaxNumSeqs && _chunkOwners.Count == _prefilling.Count)
        {
            var r = PeekWaiting();
            int chunk = Math.Min(r.PrefillLeft, budget);
            if (!TryAdmit(r, chunk, reserved)) break;
            if (r.State == RequestState.Decoding)
            {
                // Swapped back in: it decodes in this iteration, so its next block is reserved and it takes a token.
                reserved = DecodeBlocksNeeded();
                budget--;
                continue;
            }
            AddChunk(r, chunk);
            budget -= chunk;
        }
        return RunPlannedOrDecode(withDecodes: true, justPreempted: preempted);
    }

    /// <summary>Runs the prefill chunks planned for this iteration, or else a decode stretch; false when idle.</summary>
    private bool RunPlannedOrDecode(bool withDecodes, bool justPreempted = false)
    {
        FollowLoad();   // the queue the admissions left behind
        if (_chunkOwners.Count > 0)
        {
            RunPrefillIteration(withDecodes);
            return true;
        }
        if (_decoding.Count == 0) return false;
        DecodeStretch(respectArrivals: true, singleStep: justPreempted);
        return true;
    }

    /// <summary>
    /// Request-level batching: a batch is formed from the queue (up to max_num_seqs, after an optional timeout),
    /// prefilled, then decoded until its last member finishes; nothing joins mid-batch.
    /// </summary>
    private bool StepStatic()
    {
        if (!_batchActive)
        {
            if (_waiting.Count == 0) return false;
            if (_sched.BatchTimeoutMs > 0 && _waiting.Count < _sched.MaxNumSeqs
                && _clock < _waiting.OldestArrivalS() + _sched.BatchTimeoutMs / 1000.0)
                return false;
            while (_waiting.Count > 0 && _batch.Count < _sched.MaxNumSeqs)
            {
                var r = PeekWaiting();
                if (!TryAdmit(r, r.PrefillLeft)) break;
                _batch.Add(r);
            }
            if (_batch.Count == 0) return false;
            _batchActive = true;
        }
        FollowLoad();
        if (_prefilling.Count > 0) return RunLeftoverPrefills();
        if (_decoding.Count > 0)
        {
            DecodeStretch(respectArrivals: false);
            return true;
        }
        // Every member has finished.
        _batch.Clear();
        _batchActive = false;
        return true;
    }

    /// <summary>Prefills of admitted requests that have not run yet, whole prompts within the token budget.</summary>
    private bool RunLeftoverPrefills()
    {
        _chunkBuffer.Clear();
        _chunkOwners.Clear();
        int budget = _sched.MaxNumBatchedTokens;
        foreach (var r in _prefilling)
        {
            int tokens = r.PrefillTarget - r.Prefilled;
            if (tokens > budget && _chunkOwners.Count > 0) break;
            if (!TryPlanChunk(r, tokens, reservedBlocks: 0)) break;
            budget -= tokens;
            if (budget <= 0) break;
        }
        if (_chunkOwners.Count == 0) return false;
        RunPrefillIteration(withDecodes: false);
        return true;
    }

    /// <summary>Allocates the KV blocks for an admitted request's next chunk and plans it, if they are free.</summary>
    private bool TryPlanChunk(SimRequest r, int tokens, long reservedBlocks)
    {
        long need = BlocksFor(r.Prefilled + tokens) - r.BlocksHeld - r.PrefixBlocks;
        if (need > FreeBlocks - reservedBlocks) return false;
        _usedBlocks += need;
        TrimPrefixCache();
        r.BlocksHeld += (int)need;
        AddChunk(r, tokens);
        return true;
    }

    private void AddChunk(SimRequest r, int tokens)
    {
        _chunkBuffer.Add(new PrefillChunk(tokens, r.Prefilled, r.Prefilled + tokens == r.PrefillTarget));
        _chunkOwners.Add(r);
    }

    // ---- iterations ------------------------------------------------------------------------------

    private void RunPrefillIteration(bool withDecodes)
    {
        int decodes = 0;
        long kvSum = 0;
        if (withDecodes && _decoding.Count > 0)
        {
            decodes = _decoding.Count;
            kvSum = DecodeKvSum() + decodes;
        }
        if (_chunkOwners.Count == 0 && decodes == 0) return;
        var shape = WithPendingScoring(new BatchShape(_chunkBuffer.ToArray(), decodes, kvSum));
        var cost = _cost.Iteration(shape);
        double start = _clock;
        if (_executor is not null) cost = Execute(cost, start, withChunks: true, withDecodes: decodes > 0);
        if (decodes > 0) _usedBlocks += DecodeBlocksNeeded();   // the decodes' new blocks count during this iteration
        Account(cost, decodes + _chunkOwners.Count, start);
        if (decodes > 0) ApplyDecodeIteration(_clock);
        for (int i = 0; i < _chunkOwners.Count; i++)
        {
            var r = _chunkOwners[i];
            r.Prefilled += _chunkBuffer[i].Tokens;
            if (r.Prefilled == r.PrefillTarget) CompletePrefill(r);
        }
        _chunkBuffer.Clear();
        _chunkOwners.Clear();
    }

    /// <summary>The prefill's last chunk samples a token: the first token, or the next one after a recompute.</summary>
    private void CompletePrefill(SimRequest r)
    {
        _prefilling.Remove(r);
        RegisterPrefix(r);
        ReleaseSamples(r);
        bool recompute = r.Generated > 0;
        if (recompute) Stats.Itl.Add((_clock - r.LastEmitS) * 1000);
        r.Generated++;
        r.LastEmitS = _clock;
        r.FirstTokenS ??= _clock;
        if (r.FirstAnswerS is null && r.Generated >= r.Spec.ThinkingTokens + 1) r.FirstAnswerS = _clock;
        if (r.Generated >= r.Target)
        {
            Complete(r, _clock);
            return;
        }
        if (HandOffAfterPrefill(r)) return;
        JoinDecodeSet(r, r.PrefillTarget);
    }

    /// <summary>Adds a request to the decode set with <paramref name="kv"/> KV entries (after its prefill, or swapped back in).</summary>
    private void JoinDecodeSet(SimRequest r, long kv)
    {
        r.State = RequestState.Decoding;
        r.JoinDc = _dc;
        r.GenAtJoin = r.Generated;
        r.KvAtJoin = kv;
        r.Version++;
        _decodeIndex[r] = _decoding.Count;
        _decoding.Add(r);
        _kvSum += r.KvAtJoin;
        _phaseCount[Phase(r)]++;
        r.NaiveGenerated = r.GenAtJoin;
        r.NaiveKv = r.KvAtJoin;
        _fresh.Add(r);
        OnJoinDecode(r);
        if (!_fastForward) return;   // the reference mode finds completions by scanning
        EnqueueDecodeEvents(r);
    }

    private int Phase(SimRequest r) => (int)(((r.KvAtJoin - r.JoinDc) % BlockSize + BlockSize) % BlockSize);

    /// <summary>Requests whose next decode step opens a new KV block (their KV length is a multiple of the block size).</summary>
    private long NewBlocksAt(long dc) => _phaseCount[(int)(((-dc) % BlockSize + BlockSize) % BlockSize)];

    /// <summary>KV blocks the next decode step opens: from the phase histogram, or (reference mode) request by request.</summary>
    private long DecodeBlocksNeeded()
    {
        if (_fastForward) return NewBlocksAt(_dc);
        long n = 0;
        foreach (var r in _decoding) if (r.NaiveKv % BlockSize == 0) n++;
        return n;
    }

    /// <summary>Sum of the decoding requests' KV entries: the running aggregate, or (reference mode) summed afresh.</summary>
    private long DecodeKvSum()
    {
        if (_fastForward) return _kvSum;
        long sum = 0;
        foreach (var r in _decoding) sum += r.NaiveKv;
        return sum;
    }

    /// <summary>Reference mode: one more token and KV entry for every decoding request, counted one by one.</summary>
    private void StepRequestsNaively()
    {
        if (_fastForward) return;
        foreach (var r in _decoding) { r.NaiveKv++; r.NaiveGenerated++; }
    }

    /// <summary>Makes room for one more KV entry per decoding request, preempting by recompute when full.</summary>
    private bool EnsureDecodeBlocks()
    {
        bool preempted = false;
        while (_decoding.Count > 0 && _usedBlocks + DecodeBlocksNeeded() > TotalBlocks)
        {
            Preempt(PickVictim());
            preempted = true;
        }
        return preempted;
    }

    /// <summary>vLLM's choice: the most recently admitted running request (lowest priority first under priority order).</summary>
    private SimRequest PickVictim()
    {
        SimRequest? victim = null;
        foreach (var r in _decoding.Concat(_prefilling))
        {
            if (victim is null) { victim = r; continue; }
            bool later = _sched.Queue == QueueOrder.Priority && r.Spec.Priority != victim.Spec.Priority
                ? r.Spec.Priority > victim.Spec.Priority
                : r.AdmitSeq > victim.AdmitSeq;
            if (later) victim = r;
        }
        return victim!;
    }

    private void Preempt(SimRequest r)
    {
        if (r.State == RequestState.Decoding)
        {
            r.Generated = _fastForward ? r.GeneratedAt(_dc) : r.NaiveGenerated;
            long kv = _fastForward ? r.KvAt(_dc) : r.NaiveKv;
            long evicted = r.EvictedLive;
            RemoveFromDecodeSet(r, kv);
            // Fresh joiners keep their own last-emit time; the rest last emitted at the last decode step.
            if (!_fresh.Remove(r)) r.LastEmitS = _lastDecodeEndS;
            if (TrySwapOut(r, kv))
            {
                r.SwappedEvicted = evicted;
                return;
            }
            ReleaseKv(r, BlocksFor(kv) - r.PrefixBlocks, kv);
        }
        else
        {
            _prefilling.Remove(r);
            ReleaseKv(r, r.BlocksHeld, r.Prefilled);
        }
        r.BlocksHeld = 0;
        r.Prefilled = 0;
        r.PrefillTarget = r.Spec.PromptTokens + r.Generated;
        _executor?.Release(r.Spec.Id, finished: false);
        r.Preemptions++;
        Stats.Preemptions++;
        r.State = RequestState.Waiting;
        _batch.Remove(r);
        _waiting.EnqueuePreempted(r);
    }

    private void RemoveFromDecodeSet(SimRequest r, long kvNow)
    {
        int i = _decodeIndex[r];
        var last = _decoding[^1];
        _decoding[i] = last;
        _decodeIndex[last] = i;
        _decoding.RemoveAt(_decoding.Count - 1);
        _decodeIndex.Remove(r);
        _kvSum -= kvNow;
        _phaseCount[Phase(r)]--;
        r.Version++;
        OnLeaveDecode(r);
    }

    /// <summary>
    /// Runs decode-only iterations until something needs the scheduler: a decode event, KV exhaustion, a sample
    /// point, an adaptive thinking budget about to move, or (when arrivals can change the batch or the budget) an
    /// arrival. With fast-forward off, exactly one iteration.
    /// </summary>
    private void DecodeStretch(bool respectArrivals, bool singleStep = false)
    {
        // Blocks freed by a preemption (here or just before, in the step's planning) may let a waiting request in
        // at the next step: one iteration, then the scheduler again.
        bool preempted = EnsureDecodeBlocks() || singleStep;
        if (_decoding.Count == 0) return;
        long eventDc = NextEventDc();
        // An adaptive budget reads the queue, which arrivals change: then even a static batch's stretch stops at them.
        double arrivalBound = (respectArrivals || _adaptive is not null) && _arrivals.Count > 0 ? _arrivals.Peek().ArrivalTimeS : double.PositiveInfinity;
        double timeBound = Math.Min(Math.Min(arrivalBound, _nextSampleS), _horizonS);
        int b = _decoding.Count;
        bool first = true;
        do
        {
            long newBlocks = DecodeBlocksNeeded();
            if (_usedBlocks + newBlocks > TotalBlocks) break;   // the scheduler preempts at the next turn
            double start = _clock;
            var cost = DecodeCost(b, DecodeKvSum() + b, start);
            _usedBlocks += newBlocks;
            Account(cost, b, start);
            RecordDecodeItl(first);
            first = false;
            _kvSum += b;
            StepRequestsNaively();
            _dc++;
            _lastDecodeEndS = _clock;
            AfterDecodeStep();
        }
        while (_fastForward && !preempted && !StepsOneAtATime && _dc < eventDc && _clock < timeBound && !BudgetWouldMove());
    }

    /// <summary>One decode step for the decode set inside a mixed (chunked-prefill) iteration.</summary>
    private void ApplyDecodeIteration(double endS)
    {
        RecordDecodeItl(first: true);
        _kvSum += _decoding.Count;
        StepRequestsNaively();
        _dc++;
        _lastDecodeEndS = endS;
        AfterDecodeStep();
    }

    private void RecordDecodeItl(bool first)
    {
        int steady = _decoding.Count;
        if (first && _fresh.Count > 0)
        {
            foreach (var r in _fresh) Stats.Itl.Add((_clock - r.LastEmitS) * 1000);
            steady -= _fresh.Count;
            _fresh.Clear();
        }
        if (steady > 0) Stats.Itl.Add((_clock - _lastDecodeEndS) * 1000, steady);
    }

    /// <summary>
    /// Runs the planned iteration on the real executor (the planned chunks when <paramref name="withChunks"/>, and one
    /// step of every decoding request when <paramref name="withDecodes"/>); its duration is the measured one, the work counts the cost model's.
    /// </summary>
    private IterationCost Execute(IterationCost priced, double start, bool withChunks, bool withDecodes)
    {
        _chunkWork.Clear();
        _decodeWork.Clear();
        for (int i = 0; withChunks && i < _chunkOwners.Count; i++)
        {
            var c = _chunkBuffer[i];
            _chunkWork.Add(new ChunkWork(_chunkOwners[i].Spec.Id, c.Tokens, c.ContextTokens, c.SamplesToken));
        }
        if (withDecodes)
            foreach (var r in _decoding) _decodeWork.Add(new DecodeWork(r.Spec.Id, r.NaiveKv));
        double end = _executor!.Execute(_chunkWork, _decodeWork);
        return priced with { TimeS = Math.Max(0, end - start) };
    }

    private void Account(in IterationCost cost, int batchRequests, double start)
    {
        // Swap copies are rare: without one pending the iteration's time is the priced time (adding 0 is exact).
        double runS = Slowdown is null || _executor is not null ? cost.TimeS : cost.TimeS * Slowdown.At(start);
        double timeS = _pendingTransferS == 0 ? runS : runS + TakeSwapTransferS();
        _clock = start + timeS;
        Stats.BusyS += timeS;
        Stats.Flops += cost.Flops;
        Stats.Bytes += cost.Bytes;
        Stats.Iterations++;
        Stats.BatchRequestsSum += batchRequests;
        Stats.KvBlockSeconds += _usedBlocks * timeS;
        if (_usedBlocks > Stats.PeakBlocks) Stats.PeakBlocks = _usedBlocks;
        AccountPolicies(runS);
        if (_usedBlocks > TotalBlocks) throw new InvalidOperationException("KV blocks in use exceed capacity");
        TrimPrefixCache();
    }

    /// <summary>Applies completions and first-answer milestones that fall on the current decode counter.</summary>
    private void ProcessDueDecodeEvents()
    {
        if (!_fastForward)
        {
            ScanForFinishedRequests();
            ScanForCompressions();
            return;
        }
        while (NextEventDc() <= _dc)
        {
            var (r, version, kind) = _decodeEvents.Dequeue();
            if (version != r.Version || r.State != RequestState.Decoding) continue;
            if (kind == CompressEvent) { Compress(r); continue; }
            if (kind == AnswerEvent)
            {
                r.FirstAnswerS ??= _lastDecodeEndS;
                continue;
            }
            long kv = r.KvAt(_dc);
            r.Generated = r.GeneratedAt(_dc);
            RemoveFromDecodeSet(r, kv);
            _fresh.Remove(r);
            ReleaseKv(r, BlocksFor(kv) - r.PrefixBlocks, kv);
            r.BlocksHeld = 0;
            Complete(r, _lastDecodeEndS);
        }
    }

    /// <summary>Frees what the request holds and records it; <paramref name="lastTokenS"/> is when its last token came out.</summary>
    private void Complete(SimRequest r, double lastTokenS)
    {
        if (r.BlocksHeld > 0 || r.PrefixBlocks > 0) { ReleaseKv(r, r.BlocksHeld, r.Prefilled); r.BlocksHeld = 0; }
        r.State = RequestState.Done;
        _executor?.Release(r.Spec.Id, finished: true);
        r.LastEmitS = lastTokenS;
        r.CompletionS = lastTokenS;
        r.FirstAnswerS ??= lastTokenS;   // the answer began at the last token at the latest (answer event on the same step)
        OnCompleted(r);
        Finish(r, lastTokenS);
    }

    /// <summary>
    /// The invariants the property tests rely on: blocks held by requests add up to the allocator's count,
    /// allocated + free = total with neither negative, the clock never goes back, and the decode aggregates
    /// (count, KV sum, block phases) match the requests.
    /// </summary>
    private void Verify(ref double lastClock)
    {
        if (_clock < lastClock) throw new InvalidOperationException($"clock went back from {lastClock} to {_clock}");
        lastClock = _clock;
        long held = _prefilling.Sum(r => (long)r.BlocksHeld) + _decoding.Sum(r => BlocksFor(r.KvAt(_dc)) - r.PrefixBlocks) + SharedBlocksInUse();
        VerifyMemoryPolicies();
        if (held != _usedBlocks) throw new InvalidOperationException($"blocks held by requests {held} != allocated {_usedBlocks}");
        if (_usedBlocks < 0 || _usedBlocks > TotalBlocks || FreeBlocks + _usedBlocks != TotalBlocks)
            throw new InvalidOperationException($"allocated {_usedBlocks} + free {FreeBlocks} != total {TotalBlocks}");
        if (_decoding.Sum(r => r.KvAt(_dc)) != _kvSum) throw new InvalidOperationException("decode KV sum out of step");
        if (!_fastForward && _decoding.Any(r => r.NaiveKv != r.KvAt(_dc) || r.NaiveGenerated != r.GeneratedAt(_dc)))
            throw new InvalidOperationException("lazy decode progress differs from stepping request by request");
        var phases = new long[BlockSize];
        foreach (var r in _decoding) phases[Phase(r)]++;
        if (!phases.AsSpan().SequenceEqual(_phaseCount)) throw new InvalidOperationException("block phase histogram out of step");
        if (_decoding.Any(r => r.GeneratedAt(_dc) >= r.Target)) throw new InvalidOperationException("a finished request is still decoding");
        if (RunningCount > _sched.MaxNumSeqs && _sched.Batching != BatchingPolicy.Static) throw new InvalidOperationException("more running than max_num_seqs");
        if (_batch.Count > _sched.MaxNumSeqs) throw new InvalidOperationException("static batch larger than max_num_seqs");
        VerifyPolicies();
    }

    /// <summary>Reference mode: completions and first answer tokens found by looking at every decoding request.</summary>
    private void ScanForFinishedRequests()
    {
        // Completed in admission order, as the event queue orders them (the prefix cache's LRU order depends on it).
        var finished = new List<SimRequest>();
        foreach (var r in _decoding)
        {
            if (r.FirstAnswerS is null && r.NaiveGenerated >= r.Spec.ThinkingTokens + 1) r.FirstAnswerS = _lastDecodeEndS;
            if (r.NaiveGenerated >= r.Target) finished.Add(r);
        }
        finished.Sort((a, b) => a.AdmitSeq.CompareTo(b.AdmitSeq));
        foreach (var r in finished)
        {
            r.Generated = r.NaiveGenerated;
            RemoveFromDecodeSet(r, r.NaiveKv);
            _fresh.Remove(r);
            ReleaseKv(r, BlocksFor(r.NaiveKv) - r.PrefixBlocks, r.NaiveKv);
            r.BlocksHeld = 0;
            Complete(r, _lastDecodeEndS);
        }
    }

    private long NextEventDc() => _decodeEvents.TryPeek(out _, out var p) ? p.Dc : long.MaxValue;

    // ---- time series -----------------------------------------------------------------------------

    private void Sample()
    {
        if (_clock < _nextSampleS) return;
        Timeseries.Add(new TimeseriesPoint(_clock, _replica, _waiting.Count, RunningCount, _usedBlocks, (double)_usedBlocks / TotalBlocks));
        // Grid points by integer index, strictly increasing: rounding can never sample the same point twice.
        _sampleIndex = Math.Max(_sampleIndex + 1, (long)Math.Floor(_clock / _sampleIntervalS) + 1);
        while (_sampleIndex * _sampleIntervalS <= _clock) _sampleIndex++;
        _nextSampleS = _sampleIndex * _sampleIntervalS;
    }

    private double NextWakeS()
    {
        double next = _arrivals.Count > 0 ? _arrivals.Peek().ArrivalTimeS : double.PositiveInfinity;
        if (_sched.Batching == BatchingPolicy.Static && _waiting.Count > 0 && _sched.BatchTimeoutMs > 0)
            next = Math.Min(next, _waiting.OldestArrivalS() + _sched.BatchTimeoutMs / 1000.0);
        return next;
    }
}

/// <summary>Closed-loop clients: a finished request lets its client send the next one after a think time.</summary>
internal interface IClientLoop
{
    void OnDone(SimRequest done, double timeS, ReplicaEngine replica);
}
