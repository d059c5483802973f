using System.Runtime.CompilerServices;
using RLMServing.Costs;

namespace RLMServing.Simulation.Engine;

/// <summary>
/// The requests in the decode phase, kept so a decode iteration costs O(1) whatever the batch size. Each member's
/// generated tokens and KV length are affine in the replica's decode counter <see cref="Dc"/> (anchored when it
/// joined, see <see cref="SimRequest.GeneratedAt"/>); the sum of KV lengths grows by the member count per step; the
/// blocks a step opens are read from a histogram of the members' block phases (KV length minus decode counter,
/// modulo the block size); completions and milestones are events keyed by decode step. With fast-forward off it is
/// the naive reference instead: each member's tokens and KV entries are counted one by one, new blocks are found by
/// looking at each member, and no events are kept (the engine scans for completions).
/// When the cost model prices skew (<see cref="Costs.ICostModel.UsesKvSpread"/>) the set also keeps the longest and
/// shortest member KV: every member's KV is its anchor offset (KV length minus decode counter at its anchor) plus
/// <see cref="Dc"/>, so the extremes move with Dc and change only when a member joins, leaves or is re-anchored. Two
/// heaps of offsets with lazy removal hold them (O(log n) per membership change, O(1) per step); the reference mode
/// scans the members instead.
/// </summary>
internal sealed class DecodeSet
{
    private readonly List<SimRequest> _members = new();   // unordered; removal by swap with the last
    private readonly Dictionary<SimRequest, int> _index = new(ReferenceEqualityComparer.Instance);
    private readonly PriorityQueue<(SimRequest R, int Version, DecodeEventKind Kind), (long Dc, long Seq)> _events = new();
    private readonly long[] _phaseCount;
    private readonly int _blockSize;

    // Offsets (KvAtJoin - JoinDc) of members for the longest / shortest KV; entries of departed or re-anchored
    // members stay until they reach the top (lazy removal) or the heaps are rebuilt.
    private readonly PriorityQueue<SimRequest, long>? _longest, _shortest;
    private long _longestOffset, _shortestOffset;
    private bool _spreadStale;

    public DecodeSet(int blockSize, bool fastForward, bool trackSpread = false)
    {
        _blockSize = blockSize;
        _phaseCount = new long[blockSize];
        FastForward = fastForward;
        if (trackSpread && fastForward)
        {
            _longest = new PriorityQueue<SimRequest, long>(Comparer<long>.Create((a, b) => b.CompareTo(a)));
            _shortest = new PriorityQueue<SimRequest, long>();
        }
        TracksSpread = trackSpread;
    }

    /// <summary>Whether <see cref="Spread"/> is kept (the cost model prices skew).</summary>
    public bool TracksSpread { get; }

    public bool FastForward { get; }

    /// <summary>Decode iterations executed.</summary>
    public long Dc { get; private set; }

    public int Count => _members.Count;

    /// <summary>The members, for iteration (the list itself: no enumerator allocation on hot paths). Do not modify.</summary>
    public List<SimRequest> Members => _members;

    /// <summary>Adds a request with <paramref name="kv"/> KV entries, anchoring its lazy progress at the current step.</summary>
    public void Add(SimRequest r, long kv)
    {
        r.State = RequestState.Decoding;
        r.JoinDc = Dc;
        r.GenAtJoin = r.Generated;
        r.KvAtJoin = kv;
        r.Version++;
        _index[r] = _members.Count;
        _members.Add(r);
        _kvSum += r.KvAtJoin;
        _phaseCount[Phase(r)]++;
        r.NaiveGenerated = r.GenAtJoin;
        r.NaiveKv = r.KvAtJoin;
        PushSpread(r);
    }

    /// <summary>Removes a member whose KV length is <paramref name="kvNow"/>; its pending events lapse.</summary>
    public void Remove(SimRequest r, long kvNow)
    {
        int i = _index[r];
        var last = _members[^1];
        _members[i] = last;
        _index[last] = i;
        _members.RemoveAt(_members.Count - 1);
        _index.Remove(r);
        _kvSum -= kvNow;
        _phaseCount[Phase(r)]--;
        r.Version++;
        _spreadStale = true;
    }

    /// <summary>
    /// Moves a member to <paramref name="generated"/> tokens and <paramref name="kv"/> KV entries at the current
    /// step, in place; its pending events lapse (the caller re-schedules them). Returns the KV length it had.
    /// </summary>
    public long Reanchor(SimRequest r, int generated, long kv)
    {
        long oldKv = r.KvAt(Dc);
        _phaseCount[Phase(r)]--;
        _kvSum += kv - oldKv;
        r.JoinDc = Dc;
        r.GenAtJoin = generated;
        r.KvAtJoin = kv;
        r.Version++;
        _phaseCount[Phase(r)]++;
        r.NaiveGenerated = generated;
        r.NaiveKv = kv;
        _spreadStale = true;
        PushSpread(r);
        return oldKv;
    }

    private long _kvSum;

    /// <summary>Sum of the members' KV entries: the running aggregate, or (reference mode) summed afresh.</summary>
    public long KvSum()
    {
        if (FastForward) return _kvSum;
        long sum = 0;
        foreach (var r in _members) sum += r.NaiveKv;
        return sum;
    }

    /// <summary>
    /// The longest and shortest member KV (without the next token); default when the set is empty or does not track
    /// them. O(1) between membership changes.
    /// </summary>
    public KvSpread Spread()
    {
        if (!TracksSpread || _members.Count == 0) return default;
        if (!FastForward)
        {
            long longest = long.MinValue, shortest = long.MaxValue;
            foreach (var r in _members) { longest = Math.Max(longest, r.NaiveKv); shortest = Math.Min(shortest, r.NaiveKv); }
            return new KvSpread(longest, shortest);
        }
        if (_spreadStale) RefreshSpread();
        return new KvSpread(_longestOffset + Dc, _shortestOffset + Dc);
    }

    private static long Offset(SimRequest r) => r.KvAtJoin - r.JoinDc;

    private void PushSpread(SimRequest r)
    {
        if (_longest is null) return;
        long o = Offset(r);
        _longest.Enqueue(r, o);
        _shortest!.Enqueue(r, o);
        if (_members.Count == 1 || o > _longestOffset) _longestOffset = o;
        if (_members.Count == 1 || o < _shortestOffset) _shortestOffset = o;
        // Entries of departed members accumulate below the tops; a rebuild every ~n changes keeps the heaps O(n).
        if (_longest.Count > 2 * _members.Count + 64) RebuildSpread();
    }

    /// <summary>Drops heap tops that no longer describe a member (it left, or was re-anchored to another offset).</summary>
    private void RefreshSpread()
    {
        _spreadStale = false;
        _longestOffset = ValidTop(_longest!);
        _shortestOffset = ValidTop(_shortest!);
    }

    private long ValidTop(PriorityQueue<SimRequest, long> heap)
    {
        while (heap.TryPeek(out var r, out long o))
        {
            if (_index.ContainsKey(r) && Offset(r) == o) return o;
            heap.Dequeue();
        }
        return 0;
    }

    private void RebuildSpread()
    {
        _longest!.Clear();
        _shortest!.Clear();
        foreach (var r in _members)
        {
            _longest.Enqueue(r, Offset(r));
            _shortest.Enqueue(r, Offset(r));
        }
        RefreshSpread();
    }

    /// <summary>KV blocks the next decode step opens: from the phase histogram, or (reference mode) member by member.</summary>
    public long BlocksNeeded()
    {
        if (FastForward) return _phaseCount[(int)(((-Dc) % _blockSize + _blockSize) % _blockSize)];
        long n = 0;
        foreach (var r in _members) if (r.NaiveKv % _blockSize == 0) n++;
        return n;
    }

    /// <summary>One decode step of every member: one more token and KV entry each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Step()
    {
        _kvSum += _members.Count;
        if (!FastForward) StepNaively();
        Dc++;
    }

    private void StepNaively()
    {
        foreach (var r in _members) { r.NaiveKv++; r.NaiveGenerated++; }
    }

    // ---- events ------------------------------------------------------------------------------------

    /// <summary>Completion and first-answer events from a member's lazy progress, and its next compression check.</summary>
    public void EnqueueEvents(SimRequest r, long compressDc)
    {
        _events.Enqueue((r, r.Version, DecodeEventKind.Finish), (r.JoinDc + r.Target - r.GenAtJoin, r.AdmitSeq));
        int answerAt = r.Spec.ThinkingTokens + 1;
        if (r.FirstAnswerS is null)
            _events.Enqueue((r, r.Version, DecodeEventKind.Answer), (r.JoinDc + answerAt - r.GenAtJoin, r.AdmitSeq));
        if (compressDc != long.MaxValue) Enqueue(r, DecodeEventKind.Compress, compressDc);
    }

    public void Enqueue(SimRequest r, DecodeEventKind kind, long dc) => _events.Enqueue((r, r.Version, kind), (dc, r.AdmitSeq));

    /// <summary>The decode step of the next event; long.MaxValue when none.</summary>
    public long NextEventDc => _events.TryPeek(out _, out var p) ? p.Dc : long.MaxValue;

    /// <summary>Takes the next event due at the current step whose request is still a member at the version it was scheduled for.</summary>
    public bool TryTakeDue(out SimRequest r, out DecodeEventKind kind)
    {
        while (NextEventDc <= Dc)
        {
            var (req, version, k) = _events.Dequeue();
            if (version != req.Version || req.State != RequestState.Decoding) continue;
            r = req;
            kind = k;
            return true;
        }
        r = null!;
        kind = default;
        return false;
    }

    private int Phase(SimRequest r) => (int)(((r.KvAtJoin - r.JoinDc) % _blockSize + _blockSize) % _blockSize);

    /// <summary>The aggregates match the members: KV sum, block phases, and (reference mode) lazy progress equals counted progress.</summary>
    public void Verify()
    {
        if (_members.Sum(r => r.KvAt(Dc)) != _kvSum) throw new InvalidOperationException("decode KV sum out of step");
        if (!FastForward && _members.Any(r => r.NaiveKv != r.KvAt(Dc) || r.NaiveGenerated != r.GeneratedAt(Dc)))
            throw new InvalidOperationException("lazy decode progress differs from stepping request by request");
        var phases = new long[_blockSize];
        foreach (var r in _members) phases[Phase(r)]++;
        if (!phases.AsSpan().SequenceEqual(_phaseCount)) throw new InvalidOperationException("block phase histogram out of step");
        if (_members.Any(r => r.GeneratedAt(Dc) >= r.Target)) throw new InvalidOperationException("a finished request is still decoding");
        if (TracksSpread && _members.Count > 0)
        {
            var s = Spread();
            if (s.Longest != _members.Max(r => r.KvAt(Dc)) || s.Shortest != _members.Min(r => r.KvAt(Dc)))
                throw new InvalidOperationException("decode KV spread out of step");
        }
    }
}
