using System.Runtime.CompilerServices;
using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Policies;
using RLMServing.Scenarios;
using RLMServing.Scheduling;
using RLMServing.Simulation.Batching;
using RLMServing.Simulation.Engine;
using RLMServing.Simulation.Memory;
using RLMServing.Simulation.Policies;

namespace RLMServing.Simulation;

/// <summary>
/// One serving replica: an iteration-level loop over a waiting queue, a running batch and a paged KV cache. At each
/// scheduler turn the batch planner decides the next iteration, the cost model (or a real executor) prices it, and
/// its progress is applied at its end. The parts it coordinates each own their bookkeeping: the KV ledger the
/// blocks, the decode set the decode phase's lazy progress and events, the serving policies their per-request
/// state. Steady decode stretches (no arrival that matters, no completion, no milestone, no KV exhaustion, no
/// sample point) advance with O(1) work per iteration and none per request; with fast-forward off the engine is the
/// naive reference instead (every iteration back through the scheduler, progress counted request by request,
/// completions found by scanning). A property test requires both to give identical results.
/// </summary>
internal sealed partial class ReplicaEngine : IReplicaScheduler, IPolicyHost, Routing.IReplicaLoad
{
    private readonly int _replica;
    private readonly SchedulerConfig _sched;
    private readonly ICostModel _cost;
    private readonly double _sampleIntervalS;
    private readonly IClientLoop? _clients;
    private readonly IIterationExecutor? _executor;
    private readonly KvBlockLedger _ledger;
    private readonly DecodeSet _decode;
    private readonly IBatchPlanner _planner;
    private readonly SampleParking _parking = new();
    private ServingPolicies _policies;

    private readonly PriorityQueue<SimRequest, (double, long)> _arrivals = new();
    private readonly WaitingQueue _waiting;
    private readonly List<SimRequest> _prefilling = new();   // admitted, prefill not finished, in admission order
    private readonly List<SimRequest> _fresh = new();        // joined the decode set since the last decode iteration
    private readonly List<PrefillChunk> _chunkBuffer = new();
    private readonly List<SimRequest> _chunkOwners = new();
    private readonly List<ChunkWork> _chunkWork = new();
    private readonly List<DecodeWork> _decodeWork = new();

    private double _clock;
    private long _admitSeq;
    private double _lastDecodeEndS;
    private double _nextSampleS;
    private long _sampleIndex;
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
        _sampleIntervalS = sampleIntervalS;
        _clients = clients;
        Stats = stats;
        Records = records;
        Timeseries = timeseries;
        _waiting = new WaitingQueue(sched.Queue);
        _ledger = new KvBlockLedger(kv, stats);
        _decode = new DecodeSet(kv.BlockSize, fastForward, trackSpread: cost.UsesKvSpread);
        _planner = BatchPlanners.Create(sched.Batching);
        _policies = new ServingPolicies(this, PolicyConfig.None);
    }

    public ReplicaStats Stats { get; }
    public IClientLoop? Clients => _clients;
    public List<RequestRecord> Records { get; }
    public List<TimeseriesPoint> Timeseries { get; }
    public Action? OnRequestDone { get; set; }

    /// <summary>The serving policies this replica runs (KV compression, speculative decoding, thinking budgets).</summary>
    public PolicyConfig Policies
    {
        get => _policies.Config;
        init => _policies = new ServingPolicies(this, value);
    }

    public int PolicySeed { get; init; }
    public PolicyStats PolicyTotals { get; } = new();

    /// <summary>
    /// The machine's speed over the run (cost_model.slowdown): a priced iteration takes its cost times the factor at
    /// its start. A real executor's measured times are taken as they are.
    /// </summary>
    public Slowdown? Slowdown { get; init; }

    /// <summary>Re-derives the KV accounting from every request at each scheduler turn (tests; slow).</summary>
    public bool CheckInvariants { get; set; }

    /// <summary>Turns the scenario's memory policies on (prefix caching, swap, watermark); see <see cref="KvBlockLedger.Configure"/>.</summary>
    public void ConfigureMemory(MemoryPolicyConfig memory, int tensorParallel, bool parallelSampling = false) =>
        _ledger.Configure(memory, tensorParallel, parallelSampling);

    public PrefixCache? PrefixCache => _ledger.PrefixCache;

    public int RunningCount => _prefilling.Count + _decode.Count;

    // ---- what routers read ---------------------------------------------------------------------------

    /// <summary>Requests on this replica that have not finished: routed and not admitted yet, waiting, or running.</summary>
    public int Outstanding => _arrivals.Count + _parking.Count + _waiting.Count + RunningCount;

    /// <summary>KV blocks in use plus the prompt blocks of requests routed here and not admitted yet.</summary>
    public long KvDemandBlocks => _ledger.UsedBlocks + _ledger.QueuedPromptBlocks;

    public long CapacityBlocks => _ledger.TotalBlocks;

    // ---- the loop ------------------------------------------------------------------------------------

    public void AddArrival(SimRequest r)
    {
        _arrivals.Enqueue(r, (r.ArrivalTimeS, r.Spec.Id));
        if (r.FirstScheduledS is null) _ledger.QueuePrompt(r.Spec.PromptTokens);
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
            if (RunningCount == 0 && _waiting.Count == 0 && !_planner.HoldsBatch)
            {
                if (_arrivals.Count == 0) break;
                // Idle until the next arrival. Nothing changes while idle, so the time series shows the spell by its
                // first grid point (sampled already) and its last one before the arrival, never every point between:
                // a run's memory follows its work, not its simulated seconds (an arrival a year later costs one point).
                double arrivalS = _arrivals.Peek().ArrivalTimeS;
                double lastGridS = (Math.Ceiling(arrivalS / _sampleIntervalS) - 1) * _sampleIntervalS;
                bool skip = _executor is null && lastGridS > _nextSampleS && lastGridS < arrivalS;
                AdvanceIdle(skip ? lastGridS : Math.Min(arrivalS, _nextSampleS));
                continue;
            }
            _chunkBuffer.Clear();
            _chunkOwners.Clear();
            if (!_planner.Step(this))
            {
                // Nothing can run now (a static batch waiting for its timeout): wait for the next event.
                double next = Math.Min(NextWakeS(), horizonS);
                if (double.IsPositiveInfinity(next))
                    throw new InvalidOperationException($"replica {_replica}: scheduler stalled with {_waiting.Count} waiting, {_prefilling.Count} prefilling, {_decode.Count} decoding, batch held {_planner.HoldsBatch}, dc {_decode.Dc}, next event {_decode.NextEventDc}");
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

    private double NextWakeS()
    {
        double next = _arrivals.Count > 0 ? _arrivals.Peek().ArrivalTimeS : double.PositiveInfinity;
        return Math.Min(next, _planner.NextWakeS(this));
    }

    // ---- arrivals and admission ----------------------------------------------------------------------

    private void AdmitArrivals()
    {
        while (_arrivals.Count > 0 && _arrivals.Peek().ArrivalTimeS <= _clock)
        {
            var r = _arrivals.Dequeue();
            _policies.OnArrival(r);
            // The most KV a request ever holds: its prompt plus every output token but the last (never fed back).
            long peakKv = (long)r.Spec.PromptTokens + r.Target - 1;
            if (r.Spec.PromptTokens > _ledger.CapacityTokens)
                Reject(r, "prompt_exceeds_kv_cache");
            else if (peakKv > _ledger.CapacityTokens && OnPrefilled is null)   // a prefill replica only ever holds the prompt
                Reject(r, "exceeds_kv_cache");
            else
            {
                r.PrefillTarget = r.Spec.PromptTokens;
                r.State = RequestState.Waiting;
                if (!_parking.TryPark(r)) _waiting.Enqueue(r);
            }
        }
    }

    private void Reject(SimRequest r, string reason)
    {
        r.RejectReason = reason;
        r.State = RequestState.Done;
        if (r.FirstScheduledS is null) _ledger.UnqueuePrompt(r.Spec.PromptTokens);
        _parking.Release(r, _waiting);
        Finish(r, r.ArrivalTimeS);
    }

    private void Finish(SimRequest r, double timeS)
    {
        Records.Add(r.ToRecord(_replica));
        OnRequestDone?.Invoke();
        _clients?.OnDone(r, timeS, this);
    }

    // ---- IReplicaScheduler: what batch planners use --------------------------------------------------

    public SchedulerConfig Config => _sched;
    public double ClockS => _clock;
    public int WaitingCount => _waiting.Count;
    public int DecodingCount => _decode.Count;
    public IReadOnlyList<SimRequest> Prefilling => _prefilling;
    public int PlannedChunks => _chunkOwners.Count;

    public SimRequest PeekWaiting()
    {
        var r = _waiting.Peek();
        _ledger.PeekPrefixHit(r);
        return r;
    }

    public double OldestWaitingArrivalS() => _waiting.OldestArrivalS();

    public bool TryAdmit(SimRequest r, int firstChunkTokens, long reservedBlocks = 0)
    {
        if (_planner.HoldsBatch) throw new InvalidOperationException("a request was admitted into a batch in flight");
        if (r.SwappedKv > 0) return TrySwapIn(r, reservedBlocks);
        long need = _ledger.BlocksFor(r.Prefilled + r.PendingPrefixTokens + firstChunkTokens) - r.BlocksHeld - r.PendingPrefixTokens / _ledger.BlockSize;
        int revived = _ledger.PrefixRevived(r);
        if (need + revived > _ledger.FreeBlocks - reservedBlocks - _ledger.AdmissionWatermark(RunningCount)) return false;
        _waiting.Dequeue();
        _ledger.AcquirePrefix(r);
        _ledger.Allocate(need);
        if (r.FirstScheduledS is null) _ledger.UnqueuePrompt(r.Spec.PromptTokens);
        r.BlocksHeld += (int)need;
        r.State = RequestState.Prefilling;
        r.AdmitSeq = _admitSeq++;   // re-admission after a preemption counts as the latest, as in vLLM's running list
        _policies.OnAdmitted(r);
        r.FirstScheduledS ??= _clock;
        _prefilling.Add(r);
        return true;
    }

    /// <summary>Brings a swapped request back into the decode set if its blocks (and its next decode block) are free.</summary>
    private bool TrySwapIn(SimRequest r, long reservedBlocks)
    {
        long kv = _ledger.TrySwapIn(r, reservedBlocks);
        if (kv < 0) return false;
        _waiting.Dequeue();
        r.AdmitSeq = _admitSeq++;
        _policies.OnAdmitted(r);
        JoinDecodeSet(r, kv);
        return true;
    }

    public bool TryPlanChunk(SimRequest r, int tokens, long reservedBlocks)
    {
        long need = _ledger.BlocksFor(r.Prefilled + tokens) - r.BlocksHeld - r.PrefixBlocks;
        if (need > _ledger.FreeBlocks - reservedBlocks) return false;
        _ledger.Allocate(need);
        r.BlocksHeld += (int)need;
        PlanChunk(r, tokens);
        return true;
    }

    public void PlanChunk(SimRequest r, int tokens)
    {
        _chunkBuffer.Add(new PrefillChunk(tokens, r.Prefilled, r.Prefilled + tokens == r.PrefillTarget));
        _chunkOwners.Add(r);
    }

    public void EndAdmissions() => _policies.OnSchedulerTurn();

    public long DecodeBlocksNeeded() => _decode.BlocksNeeded();

    /// <summary>Makes room for one more KV entry per decoding request, preempting by recompute (or swap) when full.</summary>
    public bool EnsureDecodeBlocks()
    {
        bool preempted = false;
        while (_decode.Count > 0 && _ledger.UsedBlocks + _decode.BlocksNeeded() > _ledger.TotalBlocks)
        {
            Preempt(PickVictim());
            preempted = true;
        }
        return preempted;
    }

    // ---- iterations ----------------------------------------------------------------------------------

    public void RunPrefillIteration(bool withDecodes)
    {
        int decodes = 0;
        long kvSum = 0;
        KvSpread spread = default;
        if (withDecodes && _decode.Count > 0)
        {
            decodes = _decode.Count;
            kvSum = _decode.KvSum() + decodes;
            spread = NextTokenSpread();
        }
        if (_chunkOwners.Count == 0 && decodes == 0) return;
        var shape = _policies.WithPendingScoring(new BatchShape(_chunkBuffer.ToArray(), decodes, kvSum) { DecodeKvSpread = spread });
        var cost = _cost.Iteration(shape);
        double start = _clock;
        if (_executor is not null) cost = Execute(cost, start, withChunks: true, withDecodes: decodes > 0);
        if (decodes > 0) _ledger.AllocateForDecodeStep(_decode.BlocksNeeded());   // the decodes' new blocks count during this iteration
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
        _ledger.RegisterPrefix(r);
        _parking.Release(r, _waiting);
        bool recompute = r.Generated > 0;
        if (recompute) Stats.AddItl(_clock, (_clock - r.LastEmitS) * 1000);
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
        _decode.Add(r, kv);
        _fresh.Add(r);
        _policies.OnJoinDecode(r);
        if (!_decode.FastForward) return;   // the reference mode finds completions by scanning
        _decode.EnqueueEvents(r, KvCompressionPolicy.NextCheckDc(r));
    }

    private void RemoveFromDecodeSet(SimRequest r, long kvNow)
    {
        _decode.Remove(r, kvNow);
        _policies.OnLeaveDecode(r);
    }

    /// <summary>vLLM's choice: the most recently admitted running request (lowest priority first under priority order).</summary>
    private SimRequest PickVictim()
    {
        SimRequest? victim = null;
        foreach (var r in _decode.Members.Concat(_prefilling))
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
            long dc = _decode.Dc;
            r.Generated = _decode.FastForward ? r.GeneratedAt(dc) : r.NaiveGenerated;
            long kv = _decode.FastForward ? r.KvAt(dc) : r.NaiveKv;
            long evicted = KvCompressionPolicy.EvictedLive(r);
            RemoveFromDecodeSet(r, kv);
            // Fresh joiners keep their own last-emit time; the rest last emitted at the last decode step.
            if (!_fresh.Remove(r)) r.LastEmitS = _lastDecodeEndS;
            if (TrySwapOut(r, kv))
            {
                KvCompressionPolicy.OnSwappedOut(r, evicted);
                return;
            }
            _ledger.Release(r, _ledger.BlocksFor(kv) - r.PrefixBlocks, kv);
        }
        else
        {
            _prefilling.Remove(r);
            _ledger.Release(r, r.BlocksHeld, r.Prefilled);
        }
        r.BlocksHeld = 0;
        r.Prefilled = 0;
        r.PrefillTarget = r.Spec.PromptTokens + r.Generated;
        _executor?.Release(r.Spec.Id, finished: false);
        ReturnToQueue(r);
    }

    /// <summary>
    /// Swap preemption: the victim's whole KV goes to host memory (the next iteration waits for the copy) and it later
    /// resumes decoding where it stopped. When the swap space is full the victim is recomputed instead.
    /// </summary>
    private bool TrySwapOut(SimRequest r, long kv)
    {
        if (_sched.Preemption != PreemptionMode.Swap || !_ledger.TrySwapOut(r, kv)) return false;
        r.Prefilled = r.PrefillTarget;   // nothing to prefill when it comes back
        ReturnToQueue(r);
        return true;
    }

    private void ReturnToQueue(SimRequest r)
    {
        r.Preemptions++;
        Stats.Preemptions++;
        r.State = RequestState.Waiting;
        _planner.OnPreempted(r);
        _waiting.EnqueuePreempted(r);
    }

    /// <summary>
    /// Runs decode-only iterations until something needs the scheduler: a decode event, KV exhaustion, a sample
    /// point, an adaptive thinking budget about to move, or (when arrivals can change the batch or the budget) an
    /// arrival. With fast-forward off, exactly one iteration.
    /// </summary>
    public void DecodeStretch(bool respectArrivals, bool singleStep = false)
    {
        // Blocks freed by a preemption (here or just before, in the step's planning) may let a waiting request in
        // at the next step: one iteration, then the scheduler again.
        bool preempted = EnsureDecodeBlocks() || singleStep;
        if (_decode.Count == 0) return;
        long eventDc = _decode.NextEventDc;
        // An adaptive budget reads the queue, which arrivals change: then even a static batch's stretch stops at them.
        double arrivalBound = (respectArrivals || _policies.FollowsArrivals) && _arrivals.Count > 0 ? _arrivals.Peek().ArrivalTimeS : double.PositiveInfinity;
        double timeBound = Math.Min(Math.Min(arrivalBound, _nextSampleS), _horizonS);
        int b = _decode.Count;
        bool first = true;
        do
        {
            long newBlocks = _decode.BlocksNeeded();
            if (_ledger.UsedBlocks + newBlocks > _ledger.TotalBlocks) break;   // the scheduler preempts at the next turn
            double start = _clock;
            var cost = DecodeCost(b, _decode.KvSum() + b, start);
            _ledger.AllocateForDecodeStep(newBlocks);
            Account(cost, b, start);
            RecordDecodeItl(first);
            first = false;
            _decode.Step();
            _lastDecodeEndS = _clock;
            _policies.AfterDecodeStep();
        }
        while (_decode.FastForward && !preempted && !_policies.StepsOneAtATime && _decode.Dc < eventDc && _clock < timeBound && !_policies.BudgetWouldMove());
    }

    /// <summary>One decode step for the decode set inside a mixed (chunked-prefill) iteration.</summary>
    private void ApplyDecodeIteration(double endS)
    {
        RecordDecodeItl(first: true);
        _decode.Step();
        _lastDecodeEndS = endS;
        _policies.AfterDecodeStep();
    }

    private void RecordDecodeItl(bool first)
    {
        int steady = _decode.Count;
        if (first && _fresh.Count > 0)
        {
            foreach (var r in _fresh) Stats.AddItl(_clock, (_clock - r.LastEmitS) * 1000);
            steady -= _fresh.Count;
            _fresh.Clear();
        }
        if (steady > 0) Stats.AddItl(_clock, (_clock - _lastDecodeEndS) * 1000, steady);
    }

    /// <summary>
    /// A decode-only iteration's cost, with the scoring of compressions done since the last iteration; on a real
    /// executor, with its measured time. Not inlined, and each path returns a call's result as it is: the decode loop's
    /// cost is then written in place (merging the paths inside the loop copied it through a temporary every iteration).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private IterationCost DecodeCost(int decodes, long kvSum, double startS)
    {
        if (!_policies.HasPendingScoring && _executor is null) return _decode.TracksSpread ? _cost.Decode(decodes, kvSum, NextTokenSpread()) : _cost.Decode(decodes, kvSum);
        return ScoredOrExecutedDecodeCost(decodes, kvSum, startS);
    }

    /// <summary>The decoding requests' longest and shortest KV, each with the token this step adds (as the KV sum counts it).</summary>
    private KvSpread NextTokenSpread()
    {
        var s = _decode.Spread();
        return s.Known ? new KvSpread(s.Longest + 1, s.Shortest + 1) : default;
    }

    private IterationCost ScoredOrExecutedDecodeCost(int decodes, long kvSum, double startS)
    {
        var spread = NextTokenSpread();
        var priced = !_policies.HasPendingScoring ? _cost.Decode(decodes, kvSum, spread) : _cost.Iteration(_policies.WithPendingScoring(BatchShape.DecodeOnly(decodes, kvSum, spread)));
        return _executor is null ? priced : Execute(priced, startS, withChunks: false, withDecodes: true);
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
            foreach (var r in _decode.Members) _decodeWork.Add(new DecodeWork(r.Spec.Id, r.NaiveKv));
        double end = _executor!.Execute(_chunkWork, _decodeWork);
        return priced with { TimeS = Math.Max(0, end - start) };
    }

    private void Account(in IterationCost cost, int batchRequests, double start)
    {
        // Swap copies are rare: without one pending the iteration's time is the priced time (adding 0 is exact).
        double runS = Slowdown is null || _executor is not null ? cost.TimeS : cost.TimeS * Slowdown.At(start);
        double timeS = !_ledger.HasPendingTransfer ? runS : runS + _ledger.TakeSwapTransferS();
        _clock = start + timeS;
        long used = _ledger.UsedBlocks;
        Stats.BusyS += timeS;
        Stats.Flops += cost.Flops;
        Stats.Bytes += cost.Bytes;
        Stats.Iterations++;
        Stats.BatchRequestsSum += batchRequests;
        Stats.KvBlockSeconds += used * timeS;
        if (used > Stats.PeakBlocks) Stats.PeakBlocks = used;
        _policies.OnIteration(runS);
        _ledger.CheckAndTrim();
    }

    // ---- completions ---------------------------------------------------------------------------------

    /// <summary>Applies completions, first-answer milestones and compression checks that fall on the current decode step.</summary>
    private void ProcessDueDecodeEvents()
    {
        if (!_decode.FastForward)
        {
            ScanForFinishedRequests();
            _policies.Compression?.ScanForChecks();
            return;
        }
        while (_decode.TryTakeDue(out var r, out var kind))
        {
            if (kind == DecodeEventKind.Compress) { _policies.Compression!.Compress(r); continue; }
            if (kind == DecodeEventKind.Answer)
            {
                r.FirstAnswerS ??= _lastDecodeEndS;
                continue;
            }
            long kv = r.KvAt(_decode.Dc);
            r.Generated = r.GeneratedAt(_decode.Dc);
            LeaveFinished(r, kv);
        }
    }

    /// <summary>Reference mode: completions and first answer tokens found by looking at every decoding request.</summary>
    private void ScanForFinishedRequests()
    {
        // Completed in admission order, as the event queue orders them (the prefix cache's LRU order depends on it).
        var finished = new List<SimRequest>();
        foreach (var r in _decode.Members)
        {
            if (r.FirstAnswerS is null && r.NaiveGenerated >= r.Spec.ThinkingTokens + 1) r.FirstAnswerS = _lastDecodeEndS;
            if (r.NaiveGenerated >= r.Target) finished.Add(r);
        }
        finished.Sort((a, b) => a.AdmitSeq.CompareTo(b.AdmitSeq));
        foreach (var r in finished)
        {
            r.Generated = r.NaiveGenerated;
            LeaveFinished(r, r.NaiveKv);
        }
    }

    private void LeaveFinished(SimRequest r, long kv)
    {
        RemoveFromDecodeSet(r, kv);
        _fresh.Remove(r);
        _ledger.Release(r, _ledger.BlocksFor(kv) - r.PrefixBlocks, kv);
        r.BlocksHeld = 0;
        Complete(r, _lastDecodeEndS);
    }

    /// <summary>Frees what the request holds and records it; <paramref name="lastTokenS"/> is when its last token came out.</summary>
    private void Complete(SimRequest r, double lastTokenS)
    {
        if (r.BlocksHeld > 0 || r.PrefixBlocks > 0) { _ledger.Release(r, r.BlocksHeld, r.Prefilled); r.BlocksHeld = 0; }
        r.State = RequestState.Done;
        _executor?.Release(r.Spec.Id, finished: true);
        r.LastEmitS = lastTokenS;
        r.CompletionS = lastTokenS;
        r.FirstAnswerS ??= lastTokenS;   // the answer began at the last token at the latest (answer event on the same step)
        if (r.RejectReason is null)
        {
            if (CheckInvariants && r.Generated != r.Target)
                throw new InvalidOperationException($"request {r.Spec.Id} completed with {r.Generated} tokens, asked for {r.Target}");
            _policies.OnCompleted(r);
        }
        Finish(r, lastTokenS);
    }

    // ---- IPolicyHost: what serving policies use ------------------------------------------------------

    public long Dc => _decode.Dc;
    public bool FastForward => _decode.FastForward;
    public KvBlockLedger Ledger => _ledger;
    public DecodeSet Decoding => _decode;
    public PolicyStats Totals => PolicyTotals;
    public int Seed => PolicySeed;

    public void Reanchor(SimRequest r, int generated, long kv)
    {
        long oldKv = _decode.Reanchor(r, generated, kv);
        _ledger.Allocate(_ledger.BlocksFor(kv) - _ledger.BlocksFor(oldKv));   // accepted draft tokens take blocks: cached free ones are evicted first
        if (_decode.FastForward) _decode.EnqueueEvents(r, KvCompressionPolicy.NextCheckDc(r));
    }

    public void RescheduleEvents(SimRequest r)
    {
        r.Version++;
        _policies.Compression?.Reschedule(r);   // a compression check its old end had dropped may be due again
        if (_decode.FastForward) _decode.EnqueueEvents(r, KvCompressionPolicy.NextCheckDc(r));
    }

    public void ScheduleEvent(SimRequest r, DecodeEventKind kind, long dc)
    {
        if (_decode.FastForward) _decode.Enqueue(r, kind, dc);
    }

    // ---- invariants and the time series --------------------------------------------------------------

    /// <summary>
    /// The invariants the property tests rely on, at every scheduler turn: the clock never goes back; the ledger's
    /// blocks match what the requests hold; the decode set's aggregates match its members; a decoding request's KV is
    /// its prompt and output minus what compression evicted; and the planner's and the policies' own invariants.
    /// </summary>
    private void Verify(ref double lastClock)
    {
        if (_clock < lastClock) throw new InvalidOperationException($"clock went back from {lastClock} to {_clock}");
        lastClock = _clock;
        long dc = _decode.Dc;
        long privateHeld = _prefilling.Sum(r => (long)r.BlocksHeld) + _decode.Members.Sum(r => _ledger.BlocksFor(r.KvAt(dc)) - r.PrefixBlocks);
        long references = _prefilling.Sum(r => (long)r.PrefixBlocks) + _decode.Members.Sum(r => (long)r.PrefixBlocks);
        _parking.Verify();
        _ledger.Verify(privateHeld, references);
        _decode.Verify();
        foreach (var r in _decode.Members)
        {
            long logical = r.Spec.PromptTokens + r.GeneratedAt(dc) - 1;
            long evicted = KvCompressionPolicy.EvictedLive(r);
            if (r.KvAt(dc) + evicted != logical)
                throw new InvalidOperationException($"request {r.Spec.Id}: KV {r.KvAt(dc)} + evicted {evicted} != prompt + output {logical}: evicted tokens are being read");
            if (r.KvAt(dc) < r.Spec.PromptTokens) throw new InvalidOperationException($"request {r.Spec.Id}: compression evicted prompt tokens");
        }
        _planner.Verify(this);
        _policies.Verify();
    }

    private void Sample()
    {
        if (_clock < _nextSampleS) return;
        Timeseries.Add(new TimeseriesPoint(_clock, _replica, _waiting.Count, RunningCount, _ledger.UsedBlocks, _ledger.Usage));
        // Grid points by integer index, strictly increasing: rounding can never sample the same point twice.
        _sampleIndex = Math.Max(_sampleIndex + 1, (long)Math.Floor(_clock / _sampleIntervalS) + 1);
        while (_sampleIndex * _sampleIntervalS <= _clock) _sampleIndex++;
        _nextSampleS = _sampleIndex * _sampleIntervalS;
    }
}
