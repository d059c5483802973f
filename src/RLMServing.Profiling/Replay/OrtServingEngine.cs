using Microsoft.ML.OnnxRuntime;
using RLMServing.Catalog;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using RLMServing.Simulation;

namespace RLMServing.Profiling.Replay;

/// <summary>One executed iteration as measured (a row of a replay's iterations.parquet).</summary>
public sealed record ReplayIteration(
    long Index,
    double StartS,
    double EndS,
    int PrefillRequests,
    long PrefillTokens,
    long PrefillContextTokens,
    int DecodeCount,
    long DecodeContextSum,
    int TokensGenerated,
    int OrtCalls,
    double OrtTimeUs,
    long KvTokens,
    long? MemBytes,
    double GcPauseUs = 0,
    double IdleUs = 0,
    long KvMovedTokens = 0);

/// <summary>
/// A real serving engine on ONNX Runtime for <c>rlms replay</c>: the whole synthesised model (all layers, random
/// weights, GroupQueryAttention) generating real tokens (greedy ArgMax of the logits) for the iterations the
/// simulator's scheduler plans. KV caches live in one buffer per layer for K and one for V, split into slots of
/// <c>max_seq</c> positions, one slot per running request: ONNX Runtime GenAI's shared past/present buffer, with
/// each sequence's length passed through the attention mask (seqlens_k). Decoding requests are kept in slots
/// 0..D-1 so a decode step is one call over a contiguous view; a slot is moved when a request joins or leaves the
/// decode set (copying its written positions). Each prefill chunk is its own batch-1 call (GroupQueryAttention
/// takes one query length per call), so a prefill iteration of k chunks is k calls and a mixed chunked-prefill
/// iteration is k + 1 calls.
/// </summary>
public sealed class OrtServingEngine : IIterationExecutor, IDisposable
{
    /// <summary>Process memory is read every this many iterations (reading /proc costs tens of microseconds).</summary>
    public const int MemorySampleEvery = 64;

    private readonly DeviceContext _device;
    private readonly GraphSession _session;
    private readonly DecoderSignature _sig;
    private readonly OnnxType _dtype;
    private readonly int _vocab;
    private readonly int _slots;          // running requests at most, plus one spare slot for swaps
    private readonly int _maxSeq;
    private readonly long _slotBytes;     // one slot of one K or V buffer
    private readonly long _headBytes;     // one head's positions within a slot
    private readonly long _tokenBytes;    // one position of one head
    private readonly List<DeviceBuffer> _kv = [];   // per layer: K, V
    private readonly long[] _holder;      // slot -> request id, -1 when free
    private readonly Dictionary<long, int> _slotOf = new();
    private readonly Dictionary<long, long> _written = new();      // KV positions written per request holding a slot
    private readonly Dictionary<long, List<long>> _tokens = new(); // prompt then generated token ids per request
    private readonly CancellationToken _cancel;
    private readonly EngineClock _clock;
    private readonly List<ReplayIteration> _iterations = [];
    private readonly HashSet<long> _decodeSet = new();
    private readonly Dictionary<long, long> _kvOf = new();
    private long _writtenTotal;
    private long[] _ids = [];
    private long[] _mask = [];
    private TimeSpan _gcPauses = GC.GetTotalPauseDuration();
    private double _idleS;            // time spent waiting for arrivals since the clock started
    private double _idleAtLastIteration;
    private long _movedTokens;        // KV positions copied between slots since the last iteration was recorded
    private readonly Dictionary<(int FirstSlot, int Batch), OrtValue[]> _kvViews = new();
    private readonly Dictionary<int, OrtValue> _nextViews = new();   // rows -> the sampled-token output over _next
    private readonly long[] _next;

    /// <param name="maxSeqs">The most requests running at once (max_num_seqs).</param>
    /// <param name="maxSeqTokens">The most KV positions one request can reach (prompt + output).</param>
    /// <param name="clock">Wall clock, or the engine thread's CPU time (<see cref="EngineClock"/>).</param>
    public OrtServingEngine(DeviceContext device, ModelArchitecture arch, OnnxType dtype, int maxSeqs, int maxSeqTokens,
        CancellationToken cancel = default, EngineClockKind clock = EngineClockKind.Wall)
    {
        EngineClock.CheckUsable(clock, device.Spec, device.IntraOpThreads);
        _clock = new EngineClock(clock);
        if (arch.HeadDim % 16 != 0)
            throw new UserInputException($"model: {arch.Name}: head_dim {arch.HeadDim} is not a multiple of 16, which GroupQueryAttention with rotary needs");
        _device = device;
        _dtype = dtype;
        _cancel = cancel;
        _slots = maxSeqs + 1;
        _maxSeq = maxSeqTokens + 1;
        var graphs = new TransformerGraphs(arch, dtype, _maxSeq + 1);
        var model = graphs.Model(arch.Layers);
        _session = new GraphSession(device, "model", model.ModelBytes(), model.Weights, dtype);
        try
        {
            _sig = DecoderSignature.FromSession(_session.Session, arch.Name, model.Weights.Select(w => w.Name).ToHashSet(StringComparer.Ordinal));
            _vocab = arch.Vocab;
            if (_sig.NextToken is null) throw new InvalidOperationException("the synthesised model has no next_token output");
            _session.BindOutputToDevice(_sig.Logits);
            _tokenBytes = (long)_sig.HeadDim * TransformerGraphs.ElementBytes(_sig.KvType);
            _headBytes = _tokenBytes * _maxSeq;
            _slotBytes = _headBytes * _sig.KvHeads;
            foreach (var _ in _sig.Layers)
            {
                _kv.Add(_session.Allocate(_slotBytes * _slots));
                _kv.Add(_session.Allocate(_slotBytes * _slots));
            }
            _holder = Enumerable.Repeat(-1L, _slots).ToArray();
            _next = new long[_slots];
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    public IReadOnlyList<ReplayIteration> Iterations => _iterations;

    /// <summary>Bytes of KV one token holds across layers (K and V).</summary>
    public long KvBytesPerToken => _sig.KvBytesPerToken;

    public long WeightBytes => _session.WeightBytes;

    public double NowS => _clock.NowS;

    public EngineClockKind Clock => _clock.Kind;

    /// <summary>
    /// Runs every decode batch size up to the slot count and a few prefill lengths once, so ONNX Runtime's first-run
    /// allocations and kernel choices happen before the clock starts, then forgets those sequences.
    /// </summary>
    public void WarmUp(int maxPrefillTokens)
    {
        long warm = -1_000_000;
        var decodes = new List<DecodeWork>();
        for (int b = 0; b < _slots - 1; b++)
        {
            long id = warm - b;
            Execute([new ChunkWork(id, Math.Min(16, _maxSeq - 2), 0, true)], []);
            decodes.Add(new DecodeWork(id, Math.Min(16, _maxSeq - 2)));
            Execute([], decodes);
            for (int i = 0; i < decodes.Count; i++) decodes[i] = decodes[i] with { KvTokens = decodes[i].KvTokens + 1 };
        }
        foreach (var d in decodes) Release(d.RequestId, finished: true);
        for (int t = 32; t <= Math.Min(maxPrefillTokens, _maxSeq - 1); t *= 4)
        {
            Execute([new ChunkWork(warm - _slots - t, t, 0, true)], []);
            Release(warm - _slots - t, finished: true);
        }
        _iterations.Clear();
    }

    /// <summary>Starts the run's clock at zero (on the calling thread, which must run the engine from then on).</summary>
    public void StartClock()
    {
        _clock.Restart();
        _gcPauses = GC.GetTotalPauseDuration();
        _idleS = 0;
        _idleAtLastIteration = 0;
        _movedTokens = 0;
    }

    /// <summary>Waits (wall clock) or jumps (CPU clock) to <paramref name="timeS"/>; the time counts as idle, not host work.</summary>
    public void WaitUntil(double timeS)
    {
        double before = NowS;
        _clock.WaitUntil(timeS, _cancel);
        _idleS += Math.Max(0, NowS - before);
    }

    /// <summary>No request holds a KV slot (an idle replay: every slot is free for work set aside).</summary>
    public bool AllSlotsFree => _slotOf.Count == 0;

    /// <summary>
    /// Runs <paramref name="work"/> (which may execute and release its own sequences, with ids the run does not use)
    /// off the run's record: its iterations are dropped from <see cref="Iterations"/> once it returns and its time is
    /// taken off the clock, so the run continues as if it had not happened. Returns the time it took on the engine's
    /// clock. Needs every slot free (the run's sequences stay where they are otherwise, but the work could not use them).
    /// </summary>
    public double Aside(Action work)
    {
        if (!AllSlotsFree) throw new InvalidOperationException($"work set aside needs every KV slot free; {_slotOf.Count} are held");
        int count = _iterations.Count;
        double start = NowS;
        double spent;
        try { work(); }
        finally
        {
            _iterations.RemoveRange(count, _iterations.Count - count);
            spent = Math.Max(0, NowS - start);
            _clock.Exclude(spent);
            _gcPauses = GC.GetTotalPauseDuration();
            _movedTokens = 0;
        }
        return spent;
    }

    public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
    {
        _cancel.ThrowIfCancellationRequested();
        double start = NowS;
        double ortUs = 0;
        long prefillTokens = 0, prefillContext = 0, decodeContext = 0;
        foreach (var c in chunks)
        {
            ortUs += RunChunk(c);
            prefillTokens += c.Tokens;
            prefillContext += c.ContextTokens;
        }
        if (decodes.Count > 0) ortUs += RunDecodes(decodes, out decodeContext);
        double end = NowS;
        long index = _iterations.Count;
        long? mem = index % MemorySampleEvery == 0 ? _device.MemoryUsedBytes() : null;
        int generated = decodes.Count;
        foreach (var c in chunks) if (c.SamplesToken) generated++;
        var pauses = GC.GetTotalPauseDuration();
        double gcUs = (pauses - _gcPauses).TotalMicroseconds;
        _gcPauses = pauses;
        double idleUs = (_idleS - _idleAtLastIteration) * 1e6;
        _idleAtLastIteration = _idleS;
        _iterations.Add(new ReplayIteration(index, start, end, chunks.Count, prefillTokens, prefillContext, decodes.Count, decodeContext, generated,
            chunks.Count + (decodes.Count > 0 ? 1 : 0), ortUs, _writtenTotal, mem, gcUs, idleUs, _movedTokens));
        _movedTokens = 0;
        return end;
    }

    public void Release(long requestId, bool finished)
    {
        if (_slotOf.Remove(requestId, out int slot)) _holder[slot] = -1;
        if (_written.Remove(requestId, out long written)) _writtenTotal -= written;
        if (finished) _tokens.Remove(requestId);
    }

    /// <summary>The token ids a request has fed or generated so far (tests).</summary>
    public IReadOnlyList<long> TokensOf(long requestId) => _tokens.TryGetValue(requestId, out var t) ? t : [];

    // ---- prefill -----------------------------------------------------------------------------------

    private double RunChunk(ChunkWork c)
    {
        if (!_slotOf.TryGetValue(c.RequestId, out int slot))
        {
            if (c.ContextTokens != 0) throw new InvalidOperationException($"request {c.RequestId}: a chunk after {c.ContextTokens} tokens but no KV slot");
            slot = FreeSlot(fromTop: true);
            Hold(slot, c.RequestId);
        }
        long written = _written[c.RequestId];
        if (written != c.ContextTokens)
            throw new InvalidOperationException($"request {c.RequestId}: scheduler says {c.ContextTokens} tokens are cached, the engine holds {written}");
        long end = c.ContextTokens + c.Tokens;
        if (end >= _maxSeq) throw new InvalidOperationException($"request {c.RequestId}: {end} positions exceed the slot's {_maxSeq}");
        var tokens = TokenHistory(c.RequestId);
        // Positions beyond what the request has are prompt positions: deterministic pseudo-random ids.
        while (tokens.Count < end) tokens.Add(PromptToken(c.RequestId, tokens.Count));
        var ids = Buffer(ref _ids, c.Tokens);
        for (int t = 0; t < c.Tokens; t++) ids.Span[t] = tokens[(int)(c.ContextTokens + t)];
        var mask = Buffer(ref _mask, (int)end);
        mask.Span.Fill(1L);
        BindKv(slot, 1);
        _session.BindInput(_sig.InputIds, ids, [1, c.Tokens]);
        _session.BindInput(_sig.AttentionMask!, mask, [1, end]);
        double us = RunAndSample(1, out var next);
        SetWritten(c.RequestId, end);
        if (c.SamplesToken) tokens.Add(next[0]);
        return us;
    }

    // ---- decode ------------------------------------------------------------------------------------

    private double RunDecodes(IReadOnlyList<DecodeWork> decodes, out long contextSum)
    {
        int d = decodes.Count;
        if (d > _slots - 1) throw new InvalidOperationException($"{d} decoding requests exceed the engine's {_slots - 1} slots");
        Compact(decodes);
        var kvOf = _kvOf;
        kvOf.Clear();
        foreach (var w in decodes) kvOf[w.RequestId] = w.KvTokens;
        long width = 0;
        contextSum = 0;
        for (int i = 0; i < d; i++)
        {
            long kv = kvOf[_holder[i]];
            contextSum += kv + 1;
            width = Math.Max(width, kv + 1);
        }
        var ids = Buffer(ref _ids, d).Span;
        var maskMemory = Buffer(ref _mask, (int)(d * width));
        var mask = maskMemory.Span;
        mask.Clear();
        for (int i = 0; i < d; i++)
        {
            long id = _holder[i], kv = kvOf[id];
            if (_written[id] != kv)
                throw new InvalidOperationException($"request {id}: scheduler says {kv} tokens are cached, the engine holds {_written[id]}");
            var tokens = _tokens[id];
            if (tokens.Count != kv + 1)
                throw new InvalidOperationException($"request {id}: {tokens.Count} tokens known for a decode after {kv} cached");
            if (kv + 1 >= _maxSeq) throw new InvalidOperationException($"request {id}: {kv + 1} positions exceed the slot's {_maxSeq}");
            ids[i] = tokens[(int)kv];
            mask.Slice((int)(i * width), (int)(kv + 1)).Fill(1L);
        }
        BindKv(0, d);
        _session.BindInput(_sig.InputIds, _ids.AsMemory(0, d), [d, 1]);
        _session.BindInput(_sig.AttentionMask!, maskMemory, [d, width]);
        double us = RunAndSample(d, out var next);
        for (int i = 0; i < d; i++)
        {
            long id = _holder[i];
            _tokens[id].Add(next[i]);
            SetWritten(id, kvOf[id] + 1);
        }
        return us;
    }

    /// <summary>Moves the decoding requests into slots 0..D-1 (a contiguous batch view), swapping through the spare slot.</summary>
    private void Compact(IReadOnlyList<DecodeWork> decodes)
    {
        int d = decodes.Count;
        _decodeSet.Clear();
        foreach (var w in decodes) _decodeSet.Add(w.RequestId);
        int hole = 0;
        foreach (var w in decodes)
        {
            if (!_slotOf.TryGetValue(w.RequestId, out int slot)) throw new InvalidOperationException($"request {w.RequestId}: decoding without a KV slot");
            if (slot < d) continue;
            while (_holder[hole] != -1 && _decodeSet.Contains(_holder[hole])) hole++;
            long other = _holder[hole];
            int spare = _slots - 1;
            if (other == -1)
            {
                Move(slot, hole, w.RequestId);
            }
            else
            {
                // A prefilling request sits in the hole: swap the two through the spare slot.
                Move(hole, spare, other);
                Move(slot, hole, w.RequestId);
                Move(spare, slot, other);
            }
        }
    }

    private void Move(int from, int to, long id)
    {
        if (_holder[to] != -1 && _holder[to] != id) throw new InvalidOperationException($"slot {to} is held by request {_holder[to]}");
        long positions = _written[id];
        _movedTokens += positions;
        long bytes = positions * _tokenBytes;
        if (bytes > 0)
        {
            foreach (var buffer in _kv)
                for (int h = 0; h < _sig.KvHeads; h++)
                    Copy(buffer.Pointer + (nint)(from * _slotBytes + h * _headBytes), buffer.Pointer + (nint)(to * _slotBytes + h * _headBytes), bytes);
        }
        _holder[from] = -1;
        _holder[to] = id;
        _slotOf[id] = to;
    }

    private unsafe void Copy(nint src, nint dst, long bytes)
    {
        if (_device.Spec.Cuda) CudaRuntime.CopyDeviceToDevice(dst, src, bytes);
        else System.Buffer.MemoryCopy((void*)src, (void*)dst, bytes, bytes);
    }

    // ---- shared ------------------------------------------------------------------------------------

    private int FreeSlot(bool fromTop)
    {
        // The spare (last) slot is never held; prefills take slots from the top so decodes keep the bottom.
        for (int i = 0; i < _slots - 1; i++)
        {
            int s = fromTop ? _slots - 2 - i : i;
            if (_holder[s] == -1) return s;
        }
        throw new InvalidOperationException($"all {_slots - 1} KV slots are held; more requests run than max_num_seqs");
    }

    private void Hold(int slot, long id)
    {
        _holder[slot] = id;
        _slotOf[id] = slot;
        _written[id] = 0;
    }

    private void SetWritten(long id, long positions)
    {
        _writtenTotal += positions - _written[id];
        _written[id] = positions;
    }

    private List<long> TokenHistory(long id)
    {
        if (!_tokens.TryGetValue(id, out var t)) _tokens[id] = t = [];
        return t;
    }

    private long PromptToken(long id, int position) =>
        (uint)Workloads.SyntheticWorkload.Mix((int)(id & 0x7fffffff), position) % (uint)_vocab;

    private void BindKv(int firstSlot, int batch)
    {
        var views = KvViews(firstSlot, batch);
        for (int l = 0; l < _sig.Layers.Count; l++)
        {
            var layer = _sig.Layers[l];
            _session.BindInput(layer.PastKey, views[4 * l], owned: false);
            _session.BindOutput(layer.PresentKey, views[4 * l + 1]);
            _session.BindInput(layer.PastValue, views[4 * l + 2], owned: false);
            _session.BindOutput(layer.PresentValue, views[4 * l + 3]);
        }
    }

    /// <summary>
    /// The past and present K and V views of every layer over slots firstSlot..firstSlot+batch-1, made once per
    /// (first slot, batch): a decode always starts at slot 0 and a prefill takes one slot, so there are few. Creating
    /// them per call put garbage-collection pauses of 15-30 ms into the replay (docs/fidelity.md).
    /// </summary>
    private OrtValue[] KvViews(int firstSlot, int batch)
    {
        if (_kvViews.TryGetValue((firstSlot, batch), out var views)) return views;
        long[] shape = [batch, _sig.KvHeads, _maxSeq, _sig.HeadDim];
        views = new OrtValue[4 * _sig.Layers.Count];
        for (int l = 0; l < _sig.Layers.Count; l++)
            for (int kv = 0; kv < 2; kv++)
                for (int io = 0; io < 2; io++)
                    views[4 * l + 2 * kv + io] = _session.View(_kv[2 * l + kv], firstSlot * _slotBytes, _sig.KvType, shape);
        _kvViews[(firstSlot, batch)] = views;
        return views;
    }

    /// <summary>
    /// Runs the bound call and returns its time (µs) and each row's greedy token: sampled on the device by the model's
    /// ArgMax output, so the logits stay there and only the token ids come back.
    /// </summary>
    private double RunAndSample(int rows, out ReadOnlySpan<long> next)
    {
        _session.RebindDeviceOutputs();
        if (!_nextViews.TryGetValue(rows, out var host))
            _nextViews[rows] = host = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _next.AsMemory(0, rows), [rows, 1]);
        _session.BindOutput(_sig.NextToken!, host);
        double start = _clock.NowS;
        _session.Run();
        double us = (_clock.NowS - start) * 1e6;
        next = _next.AsSpan(0, rows);
        return us;
    }

    /// <summary>
    /// A slice of a grow-only pool. Allocating inputs per step (a mask of batch × longest context, logits of batch ×
    /// vocabulary) put host work and garbage collections into every step that grew with the longest sequence in the
    /// batch, not the sum the cost model prices (docs/fidelity.md, "Why, by measurement").
    /// </summary>
    private static Memory<T> Buffer<T>(ref T[] pool, int length)
    {
        if (pool.Length < length) pool = new T[Math.Max(length, 2 * pool.Length)];
        return pool.AsMemory(0, length);
    }

    public void Dispose()
    {
        _session.Dispose();
        foreach (var views in _kvViews.Values)
            foreach (var v in views) v.Dispose();
        foreach (var v in _nextViews.Values) v.Dispose();
        _kvViews.Clear();
        _nextViews.Clear();
    }
}
