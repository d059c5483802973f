using RLMServing.Workloads;

namespace RLMServing.Memory;

/// <summary>
/// Automatic prefix caching over paged KV blocks (vLLM's APC, SGLang's radix cache at block granularity). A full
/// block of a request's context is identified by the prefix id of the hash unit holding its last token and its
/// index, so equal keys mean equal tokens from the start of the context. Cached blocks are reference counted;
/// blocks nobody references stay cached in an LRU list and count as free: an allocation that needs them evicts
/// the least recently released first (<see cref="Trim"/>).
/// </summary>
internal sealed class PrefixCache(int blockSize)
{
    private sealed class Entry
    {
        public int Refs;
        public LinkedListNode<(long, int)>? Lru;
    }

    private readonly Dictionary<(long Unit, int Block), Entry> _blocks = new();
    private readonly LinkedList<(long, int)> _lru = new();   // unreferenced cached blocks, least recently released first

    /// <summary>Distinct cached blocks referenced by at least one request (they are in use on the GPU).</summary>
    public long ReferencedBlocks { get; private set; }

    /// <summary>Cached blocks nobody references: reusable until evicted.</summary>
    public int EvictableBlocks => _lru.Count;

    public long HitTokens { get; set; }
    public long QueryTokens { get; set; }
    public long Evictions { get; private set; }

    /// <summary>How many leading full blocks of a request's context may be cached: those its prefix identity covers, up to <paramref name="tokens"/>.</summary>
    public int CacheableBlocks(RequestSpec spec, long tokens) => (int)(Math.Min(spec.PrefixCoveredTokens, tokens) / blockSize);

    private (long, int) Key(RequestSpec spec, int block)
    {
        long lastToken = ((long)block + 1) * blockSize - 1;
        long unit = Math.Min(lastToken / spec.PrefixHashTokens, spec.PrefixHashes!.Length - 1);
        return (spec.PrefixHashes[unit], block);
    }

    /// <summary>Leading blocks of the request found in the cache, at most <paramref name="maxBlocks"/>.</summary>
    public int Match(RequestSpec spec, int maxBlocks)
    {
        int limit = Math.Min(maxBlocks, CacheableBlocks(spec, long.MaxValue));
        int k = 0;
        while (k < limit && _blocks.ContainsKey(Key(spec, k))) k++;
        return k;
    }

    /// <summary>Cached blocks among the first <paramref name="count"/> that nobody references (acquiring them takes them off the free list).</summary>
    public int UnreferencedAmong(RequestSpec spec, int count)
    {
        int n = 0;
        for (int k = 0; k < count; k++) if (_blocks[Key(spec, k)].Refs == 0) n++;
        return n;
    }

    /// <summary>References the first <paramref name="count"/> blocks (all cached); returns how many were unreferenced before.</summary>
    public int Acquire(RequestSpec spec, int count) => AcquireRange(spec, 0, count);

    private int AcquireRange(RequestSpec spec, int from, int to)
    {
        int revived = 0;
        for (int k = from; k < to; k++)
        {
            var e = _blocks[Key(spec, k)];
            if (e.Refs++ == 0)
            {
                _lru.Remove(e.Lru!);
                e.Lru = null;
                ReferencedBlocks++;
                revived++;
            }
        }
        return revived;
    }

    /// <summary>
    /// A request that computed blocks [from, to) of its context shares them: blocks not cached yet are added with
    /// this request's reference (its private block becomes the cached one); blocks another request cached meanwhile
    /// are referenced instead and the private duplicate is freed. Returns the change in blocks in use.
    /// </summary>
    public long Register(RequestSpec spec, int from, int to)
    {
        long delta = 0;
        for (int k = from; k < to; k++)
        {
            var key = Key(spec, k);
            if (_blocks.TryGetValue(key, out var e))
            {
                delta -= 1;   // the private copy is dropped
                if (e.Refs++ == 0) { _lru.Remove(e.Lru!); e.Lru = null; ReferencedBlocks++; delta += 1; }
            }
            else
            {
                _blocks[key] = new Entry { Refs = 1 };
                ReferencedBlocks++;
            }
        }
        return delta;
    }

    /// <summary>
    /// Drops the request's references to its first <paramref name="count"/> blocks, deepest first so that the tail
    /// of a prefix is evicted before its head; returns how many blocks nobody references any more.
    /// </summary>
    public int Release(RequestSpec spec, int count)
    {
        int freed = 0;
        for (int k = count - 1; k >= 0; k--)
        {
            var key = Key(spec, k);
            var e = _blocks[key];
            if (--e.Refs == 0)
            {
                e.Lru = _lru.AddLast(key);
                ReferencedBlocks--;
                freed++;
            }
        }
        return freed;
    }

    /// <summary>Keeps finished private blocks [from, to) cached as unreferenced (they were freed by the caller), deepest first.</summary>
    public void Retain(RequestSpec spec, int from, int to)
    {
        for (int k = to - 1; k >= from; k--)
        {
            var key = Key(spec, k);
            if (_blocks.ContainsKey(key)) continue;
            _blocks[key] = new Entry { Lru = _lru.AddLast(key) };
        }
    }

    /// <summary>Evicts least recently released blocks until at most <paramref name="freeBlocks"/> stay cached unreferenced.</summary>
    public void Trim(long freeBlocks)
    {
        while (_lru.Count > Math.Max(0, freeBlocks))
        {
            var key = _lru.First!.Value;
            _lru.RemoveFirst();
            _blocks.Remove(key);
            Evictions++;
        }
    }

    /// <summary>Sum of references (for the engine's invariant check against the requests' prefix holdings).</summary>
    public long TotalReferences() => _blocks.Values.Sum(e => (long)e.Refs);
}
