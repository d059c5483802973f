using System.Collections.Concurrent;
using RLMServing.Costs;
using RLMServing.IO.Runs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Workloads;

namespace RLMServing.Serve.Engine;

/// <summary>What the serving engine looks like right now (for /metrics and admission).</summary>
public readonly record struct LiveGauges(int Running, int Waiting, double KvUsage, long Preemptions);

/// <summary>Per-token and per-request observations the engine thread reports (Prometheus counters and histograms).</summary>
public interface ILiveObserver
{
    void Gauges(LiveGauges gauges);
    void FirstToken(double ttftS, int promptTokens);
    void Tokens(int count, double? interTokenS);
    void Finished(LiveRequest request, LiveOutcome outcome);
}

/// <summary>
/// The scenario's replica engine serving live requests: one thread runs the scheduler (batching, KV cache,
/// preemption, serving policies) one iteration per turn through an executor (the twin's priced waits or the ONNX
/// Runtime engine), takes new requests between turns, and after each turn releases every request's newly generated
/// tokens to its stream at the end time of the iteration that produced them.
/// </summary>
/// <remarks>
/// A client that goes away has its request cut where it is: its output target is set to what it has generated (one
/// more token when it has not finished its prefill), so the engine's own completion path frees its batch slot and
/// KV blocks at the next scheduler turn (before the next iteration) when it is decoding, or as its prefill ends.
/// </remarks>
public sealed class LiveReplica : IDisposable
{
    private readonly ReplicaEngine _engine;
    private readonly CountingExecutor _executor;
    private readonly ILiveClock _arrivalClock;
    private readonly ITokenIds? _tokenIds;
    private readonly ILiveObserver? _observer;
    private readonly Action? _onEngineThread;
    private readonly ReplicaStats _stats = new(0.005);
    private readonly List<RequestRecord> _engineRecords = new();
    private readonly List<TimeseriesPoint> _engineSamples = new();
    private readonly List<RequestRecord> _records = new();
    private readonly List<TimeseriesPoint> _timeseries = new();
    private readonly ConcurrentQueue<LiveRequest> _arrivals = new();
    private readonly ConcurrentQueue<LiveRequest> _cancels = new();
    private readonly HashSet<long> _cancelledIds = new();
    private readonly List<LiveRequest> _active = new();
    private readonly List<LiveRequest> _finished = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Thread _thread;
    private readonly double _recordIntervalS;
    private readonly PreparedRun _run;
    private readonly KvCachePlan _plan;
    private volatile bool _stopping;
    private volatile bool _ended;
    private long _iterations;
    private double _newestArrivalS;
    private double _lastIterationEndS;
    private double _busyAtLastTurnS, _kvBlockSecondsAtLastTurn;
    private volatile int _pendingArrivals;
    private LiveGauges _gauges;
    private Exception? _failure;
    private readonly ManualResetEventSlim _ready = new();

    /// <param name="cost">The cost model the engine prices iterations with (the twin's executor reads its last price).</param>
    /// <param name="keepRecords">Keep every finished request's row and the time series (--record-dir).</param>
    /// <param name="onEngineThread">Runs first on the engine thread (an engine whose clock belongs to its thread).</param>
    public LiveReplica(PreparedRun run, ICostModel cost, IIterationExecutor executor, ILiveClock arrivalClock, ITokenIds? tokenIds,
        ILiveObserver? observer, bool keepRecords, Action? onEngineThread = null)
    {
        _run = run;
        var scenario = run.Scenario;
        var group = run.Groups[0];
        _executor = new CountingExecutor(executor, this);
        _arrivalClock = arrivalClock;
        _tokenIds = tokenIds;
        _observer = observer;
        _onEngineThread = onEngineThread;
        KeepRecords = keepRecords;
        _recordIntervalS = scenario.Metrics.TimeseriesIntervalS;
        _plan = KvCachePlan.For(run.Model, group.Gpu, group.TensorParallel, scenario.KvCache, group.Scheduler, scenario.PoliciesOrNone.Speculative?.Memory);
        // As Simulator.Run builds a replica, stepped one iteration per turn (an executor needs fast-forward off).
        _engine = new ReplicaEngine(0, group.Scheduler, cost, _plan, fastForward: false, _recordIntervalS, null, _stats,
            _engineRecords, _engineSamples, _executor)
        {
            Policies = scenario.PoliciesOrNone,
            PolicySeed = scenario.Seed,
            Slowdown = scenario.CostModel.Slowdown,
        };
        _engine.ConfigureMemory(scenario.KvCache.Memory, group.TensorParallel);
        _thread = new Thread(Loop) { IsBackground = true, Name = "rlms-serve-engine" };
    }

    public bool KeepRecords { get; }

    /// <summary>Tokens of KV cache the replica has: no request may need more at once.</summary>
    public long KvCapacityTokens => _plan.CapacityTokens;

    public int MaxNumSeqs => _run.Groups[0].Scheduler.MaxNumSeqs;

    /// <summary>The latest scheduler-turn sample; waiting counts requests not yet taken in too.</summary>
    public LiveGauges Gauges
    {
        get
        {
            var g = _gauges;
            return g with { Waiting = g.Waiting + _pendingArrivals };
        }
    }

    /// <summary>The engine thread died (a bug): requests fail with this.</summary>
    public Exception? Failure => _failure;

    /// <summary>Starts the engine thread and returns once it is ready (an ONNX Runtime engine has warmed up).</summary>
    public void Start()
    {
        _thread.Start();
        _ready.Wait();
        if (_failure is not null) throw new InvalidOperationException($"the serving engine failed to start: {_failure.Message}", _failure);
    }

    /// <summary>Queues a request; it reaches the scheduler at the next turn, stamped with its arrival now.</summary>
    public LiveRequest Submit(RequestSpec spec, bool lengthCapped)
    {
        var r = new LiveRequest(spec, lengthCapped, _arrivalClock.ArrivalS);
        if (_failure is not null || _stopping)
        {
            r.End(new LiveOutcome(LiveFinish.Shutdown, 0, 0, "the server is shutting down"));
            return r;
        }
        Interlocked.Increment(ref _pendingArrivals);
        _arrivals.Enqueue(r);
        _signal.Release();
        // The engine thread may have ended between the check above and the enqueue: end what it will not take.
        if (_ended) EndQueued();
        return r;
    }

    /// <summary>The client went away: the request is cut and its slot and KV freed (see the remarks on the class).</summary>
    public void Cancel(LiveRequest r)
    {
        if (r.Cancelled || r.Outcome.IsCompleted) return;
        r.Cancelled = true;
        _cancels.Enqueue(r);
        _signal.Release();
    }

    /// <summary>Stops the engine thread; requests still running end with <see cref="LiveFinish.Shutdown"/>.</summary>
    public void Dispose()
    {
        _stopping = true;
        _arrivalClock.Interrupt();
        _signal.Release();
        if (_thread.IsAlive) _thread.Join();
    }

    /// <summary>The rows and time series kept so far and the run's summary, in the simulator's schema (after <see cref="Dispose"/>).</summary>
    public SimulationResult Result()
    {
        if (_thread.IsAlive) throw new InvalidOperationException("stop the replica before reading its results");
        var records = _records.OrderBy(r => r.RequestId).ToList();
        var s = _run.Scenario;
        var group = _run.Groups[0];
        var identity = new RunSummary
        {
            Scenario = s.Name,
            Model = _run.Model.Name,
            Gpu = group.Gpu.Name,
            Replicas = 1,
            TensorParallel = group.TensorParallel,
            Batching = group.Scheduler.Batching.ToString(),
            Seed = s.Seed,
            KvCacheCapacityTokens = _plan.CapacityTokens,
        };
        var totals = new ReplicaTotals(_stats.BusyS, _stats.Flops, _stats.Bytes, _stats.Iterations, _stats.BatchRequestsSum,
            _stats.KvBlockSeconds, _stats.PeakBlocks, _plan.TotalBlocks, _stats.Preemptions, group.Cost.PeakFlops, group.Cost.PeakBandwidth);
        var summary = SummaryBuilder.Build(identity, records, _stats.Itl, [totals], s.Slo, group.Scheduler.MaxNumSeqs);
        return new SimulationResult(summary, records, _timeseries.ToList(), _plan);
    }

    // ---- the engine thread -----------------------------------------------------------------------

    private void Loop()
    {
        try { _onEngineThread?.Invoke(); }
        catch (Exception e)
        {
            _failure = e;
            _ready.Set();
            return;
        }
        _ready.Set();
        try
        {
            while (true)
            {
                TakeArrivalsAndCancels();
                if (_stopping) break;
                if (_active.Count == 0)
                {
                    _signal.Wait(100);
                    continue;
                }
                long before = _iterations;
                // One scheduler turn: the horizon just past the clock stops the loop after the next iteration.
                // An arrival newer than the clock (an idle replica) moves the horizon to it, so the turn idles up to
                // the arrival and runs the iteration that admits it.
                _executor.Freeze();
                _engine.Advance(Math.Max(_executor.NowS, _newestArrivalS) + 1e-9);
                AfterTurn();
                // A turn with nothing to run (a static batch waiting for its timeout): the clock follows the wall
                // clock, and the thread waits a little for arrivals instead of spinning.
                if (_iterations == before && _arrivals.IsEmpty && _cancels.IsEmpty)
                {
                    _arrivalClock.CatchUp();
                    _signal.Wait(1);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping)
        {
            // Stopped mid-iteration (Interrupt): its tokens are not released; the requests end below.
        }
        catch (Exception e)
        {
            _failure = e;
        }
        var reason = _failure is null ? "the server is shutting down" : $"the engine failed: {_failure.Message}";
        foreach (var r in _active) r.End(new LiveOutcome(LiveFinish.Shutdown, r.Emitted, r.EmittedReasoning, reason));
        _active.Clear();
        _ended = true;
        EndQueued();
    }

    private void EndQueued()
    {
        var reason = _failure is null ? "the server is shutting down" : $"the engine failed: {_failure.Message}";
        while (_arrivals.TryDequeue(out var r)) r.End(new LiveOutcome(LiveFinish.Shutdown, 0, 0, reason));
    }

    private void TakeArrivalsAndCancels()
    {
        while (_arrivals.TryDequeue(out var r))
        {
            Interlocked.Decrement(ref _pendingArrivals);
            if (r.Cancelled)
            {
                Finish(r, new LiveOutcome(LiveFinish.Cancelled, 0, 0, "client disconnected"));
                continue;
            }
            r.InEngine = true;
            _newestArrivalS = Math.Max(_newestArrivalS, r.ArrivalS);
            _engine.AddArrival(r.Sim);
            _active.Add(r);
        }
        while (_cancels.TryDequeue(out var r))
        {
            if (KeepRecords) _cancelledIds.Add(r.Id);   // its row is marked when the engine finishes it
            if (r.InEngine) Cut(r);
        }
    }

    /// <summary>Sets the request's target to what it has (or the one token its prefill samples), so the engine completes it.</summary>
    private static void Cut(LiveRequest r)
    {
        var s = r.Sim;
        if (s.State == RequestState.Done) return;
        int keep = s.State == RequestState.Decoding ? s.NaiveGenerated : s.Generated + 1;
        if (s.Target <= keep) return;
        int thinking = Math.Min(s.Spec.ThinkingTokens, keep);
        s.Spec = s.Spec with { ThinkingTokens = thinking, AnswerTokens = keep - thinking };
        if (s.Thinking is { } budget) budget.Capped = null;   // an adaptive budget must not give the cut thinking back
    }

    private void AfterTurn()
    {
        double now = _lastIterationEndS;
        // KV blocks in use during the turn's iteration: the engine adds blocks x seconds per iteration to its totals.
        double busy = _stats.BusyS - _busyAtLastTurnS;
        double kvUsage = busy > 0 ? (_stats.KvBlockSeconds - _kvBlockSecondsAtLastTurn) / busy / _plan.TotalBlocks : _gauges.KvUsage;
        _busyAtLastTurnS = _stats.BusyS;
        _kvBlockSecondsAtLastTurn = _stats.KvBlockSeconds;
        if (KeepRecords) _timeseries.AddRange(_engineSamples);
        _engineSamples.Clear();
        foreach (var r in _active)
        {
            if (r.Cancelled) Cut(r);   // an adaptive thinking budget may have given it a new spec
            var s = r.Sim;
            int generated = s.State == RequestState.Decoding ? s.NaiveGenerated : s.Generated;
            if (generated > r.Emitted) Release(r, generated, now);
            if (s.State == RequestState.Done) _finished.Add(r);
        }
        foreach (var r in _finished)
        {
            _active.Remove(r);
            var s = r.Sim;
            var outcome = r.Cancelled ? new LiveOutcome(LiveFinish.Cancelled, r.Emitted, r.EmittedReasoning, "client disconnected")
                : s.RejectReason is { } why ? new LiveOutcome(LiveFinish.Rejected, 0, 0, why)
                : new LiveOutcome(r.LengthCapped ? LiveFinish.Length : LiveFinish.Stop, r.Emitted, r.EmittedReasoning, null);
            Finish(r, outcome);
        }
        _finished.Clear();
        // Running and waiting as the turn left them; KV use as in its iteration (vLLM counts cached but unreferenced
        // prefix blocks as free, so an idle replica reads 0).
        int running = 0, waiting = 0;
        foreach (var r in _active)
        {
            if (r.Sim.State is RequestState.Prefilling or RequestState.Decoding) running++;
            else waiting++;
        }
        _gauges = new LiveGauges(running, waiting, _active.Count == 0 ? 0 : kvUsage, _stats.Preemptions);
        _observer?.Gauges(_gauges);
        foreach (var rec in _engineRecords)
        {
            if (!KeepRecords) continue;
            _records.Add(_cancelledIds.Remove(rec.RequestId)
                ? rec with { Status = RequestStatus.Rejected, RejectReason = "client_disconnected" }
                : rec);
        }
        _engineRecords.Clear();
    }

    private void Release(LiveRequest r, int generated, double timeS)
    {
        int thinking = r.Sim.Spec.ThinkingTokens;
        int start = r.Emitted;
        int reasoning = Math.Max(0, Math.Min(generated, thinking) - start);
        int answer = generated - start - reasoning;
        long[]? ids = null;
        if (_tokenIds is not null)
        {
            ids = new long[generated - start];
            for (int i = 0; i < ids.Length; i++) ids[i] = _tokenIds.At(r.Id, start + i);
        }
        r.Emitted = generated;
        r.EmittedReasoning += reasoning;
        if (!r.Cancelled) r.Tokens.Writer.TryWrite(new TokenBatch(start, reasoning, answer, timeS, ids));
        double? itl = r.FirstTokenS is null ? null : timeS - r.LastTokenS;
        if (r.FirstTokenS is null)
        {
            r.FirstTokenS = timeS;
            _observer?.FirstToken(timeS - r.ArrivalS, r.Spec.PromptTokens);
        }
        r.LastTokenS = timeS;
        _observer?.Tokens(generated - start, itl);
    }

    private void Finish(LiveRequest r, LiveOutcome outcome)
    {
        _tokenIds?.Forget(r.Id);
        r.End(outcome);
        _observer?.Finished(r, outcome);
    }

    /// <summary>Counts iterations and remembers when the last one ended.</summary>
    /// <remarks>
    /// The engine sees a clock that moves only with its own steps: read at the start of a turn (<see cref="Freeze"/>),
    /// then set by each wait and iteration. A real engine's clock (the ONNX Runtime engine's wall clock) moves by
    /// itself, and a turn's horizon just past "now" would already lie behind the clock the next time the engine read
    /// it: the turn would end before its iteration, and the thread would idle a scheduler wait per token. The twin's
    /// clock moves only with its steps anyway, so for it this changes nothing.
    /// </remarks>
    private sealed class CountingExecutor(IIterationExecutor inner, LiveReplica owner) : IIterationExecutor
    {
        private double _nowS;

        public double NowS => _nowS;

        /// <summary>Reads the executor's clock: the time this turn starts at.</summary>
        public void Freeze() => _nowS = Math.Max(_nowS, inner.NowS);

        public void WaitUntil(double timeS)
        {
            inner.WaitUntil(timeS);
            _nowS = Math.Max(_nowS, timeS);
        }

        public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
        {
            double end = inner.Execute(chunks, decodes);
            _nowS = Math.Max(_nowS, end);
            owner._iterations++;
            owner._lastIterationEndS = end;
            return end;
        }

        public void Release(long requestId, bool finished) => inner.Release(requestId, finished);
    }
}

/// <summary>The token ids a real engine generated, by request and position (the twin has none).</summary>
public interface ITokenIds
{
    long At(long requestId, int index);
    void Forget(long requestId);
}
