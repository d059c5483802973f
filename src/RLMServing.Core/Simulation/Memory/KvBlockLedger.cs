using System.Runtime.CompilerServices;
using RLMServing.Memory;
using RLMServing.Scenarios;

namespace RLMServing.Simulation.Memory;

/// <summary>
/// The only owner of a replica's KV blocks: how many are allocated, the prefix cache's shared blocks, the swap
/// space in host memory and the admission watermark. Blocks in use = private blocks of the requests + cached blocks
/// referenced by at least one request; unreferenced cached blocks count as free and are evicted (LRU) whenever an
/// allocation leaves fewer free blocks than cached ones. Allocating past the capacity fails at once.
/// </summary>
internal sealed class KvBlockLedger
{
    private readonly KvCachePlan _plan;
    private readonly ReplicaStats _stats;
    private readonly HashSet<SimRequest> _swapped = new(ReferenceEqualityComparer.Instance);
    private long _watermarkBlocks;
    private long _swapCapacityBlocks;
    private double _swapSecondsPerBlock;
    private double _pendingTransferS;

    public KvBlockLedger(KvCachePlan plan, ReplicaStats stats)
    {
        _plan = plan;
        _stats = stats;
        BlockSize = plan.BlockSize;
        TotalBlocks = plan.TotalBlocks;
    }

    public int BlockSize { get; }
    public long TotalBlocks { get; }
    public long CapacityTokens => _plan.CapacityTokens;

    /// <summary>Blocks allocated: private blocks of requests plus referenced cached blocks.</summary>
    public long UsedBlocks { get; private set; }

    public long FreeBlocks => TotalBlocks - UsedBlocks;

    public double Usage => (double)UsedBlocks / TotalBlocks;

    /// <summary>Prompt blocks of requests routed here and not admitted yet (routers read the demand).</summary>
    public long QueuedPromptBlocks { get; private set; }

    public PrefixCache? PrefixCache { get; private set; }

    public long SwapUsedBlocks { get; private set; }

    /// <summary>
    /// Turns the scenario's memory policies on; <paramref name="tensorParallel"/> GPUs swap their shards in parallel.
    /// Parallel sampling shares a prompt's blocks between its samples through the prefix cache's reference counts,
    /// so it needs the cache even with prefix caching off (only the samples' prefix identities can hit then).
    /// </summary>
    public void Configure(MemoryPolicyConfig memory, int tensorParallel, bool parallelSampling)
    {
        PrefixCache = memory.PrefixCaching || parallelSampling ? new PrefixCache(BlockSize) : null;
        _watermarkBlocks = (long)Math.Floor(memory.Watermark * TotalBlocks);
        double blockBytes = (double)BlockSize * _plan.KvBytesPerToken;
        _swapCapacityBlocks = (long)Math.Floor(memory.SwapSpaceGib * (1L << 30) * tensorParallel / blockBytes);
        _swapSecondsPerBlock = blockBytes / (memory.SwapBandwidthGBps * 1e9 * tensorParallel);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long BlocksFor(long tokens) => (tokens + BlockSize - 1) / BlockSize;

    /// <summary>Takes <paramref name="blocks"/> (negative: gives them back) and evicts cached blocks the free list no longer covers.</summary>
    public void Allocate(long blocks)
    {
        UsedBlocks += blocks;
        Trim();
    }

    /// <summary>
    /// The decode step's new blocks, on the hot path: counted during the iteration they are written in; cached
    /// blocks are trimmed when the iteration is accounted (<see cref="CheckAndTrim"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AllocateForDecodeStep(long blocks) => UsedBlocks += blocks;

    /// <summary>At the end of every iteration: never past capacity, and the cache no larger than the free list.</summary>
    public void CheckAndTrim()
    {
        if (UsedBlocks > TotalBlocks) throw new InvalidOperationException("KV blocks in use exceed capacity");
        Trim();
    }

    public void Trim() => PrefixCache?.Trim(FreeBlocks);

    public void QueuePrompt(int promptTokens) => QueuedPromptBlocks += BlocksFor(promptTokens);

    public void UnqueuePrompt(int promptTokens) => QueuedPromptBlocks -= BlocksFor(promptTokens);

    /// <summary>New admissions keep a watermark of blocks free while others run (vLLM's block-manager watermark), leaving decodes room to grow.</summary>
    public long AdmissionWatermark(int running) => running > 0 ? _watermarkBlocks : 0;

    // ---- prefix caching ------------------------------------------------------------------------------

    /// <summary>Records on the request the prefix-cache hit it would get if admitted now (the head of the queue).</summary>
    public void PeekPrefixHit(SimRequest r)
    {
        if (PrefixCache is null || r.SwappedKv > 0 || r.BlocksHeld > 0 || r.PrefixBlocks > 0) return;
        // At least the last prompt token is computed, so a fully cached prompt still yields its first token.
        int hit = PrefixCache.Match(r.Spec, (r.PrefillTarget - 1) / BlockSize);
        r.PendingPrefixTokens = hit * BlockSize;
    }

    /// <summary>Cached blocks of the pending hit that nobody references: admitting the request takes them off the free list.</summary>
    public int PrefixRevived(SimRequest r) =>
        r.PendingPrefixTokens == 0 ? 0 : PrefixCache!.UnreferencedAmong(r.Spec, r.PendingPrefixTokens / BlockSize);

    /// <summary>Takes the pending prefix-cache hit: the cached blocks are referenced and their tokens count as prefilled.</summary>
    public void AcquirePrefix(SimRequest r)
    {
        if (PrefixCache is null) return;
        int hitTokens = r.PendingPrefixTokens;
        PrefixCache.QueryTokens += r.PrefillTarget;
        PrefixCache.HitTokens += hitTokens;
        r.CachedPromptTokens = Math.Max(r.CachedPromptTokens, hitTokens);
        if (hitTokens == 0) return;
        UsedBlocks += PrefixCache.Acquire(r.Spec, hitTokens / BlockSize);
        r.PrefixBlocks = hitTokens / BlockSize;
        r.Prefilled += hitTokens;
        r.PendingPrefixTokens = 0;
    }

    /// <summary>At the end of a prefill, the full blocks the request computed join the cache under its reference.</summary>
    public void RegisterPrefix(SimRequest r)
    {
        if (PrefixCache is null) return;
        int to = PrefixCache.CacheableBlocks(r.Spec, r.PrefillTarget);
        if (to <= r.PrefixBlocks) return;
        UsedBlocks += PrefixCache.Register(r.Spec, r.PrefixBlocks, to);
        r.BlocksHeld -= to - r.PrefixBlocks;
        r.PrefixBlocks = to;
    }

    /// <summary>
    /// Frees a request's KV: its private blocks, and its references to cached blocks. With prefix caching, the full
    /// blocks of its first <paramref name="tokens"/> context tokens stay cached (unreferenced) for later requests.
    /// </summary>
    public void Release(SimRequest r, long privateBlocks, long tokens)
    {
        UsedBlocks -= privateBlocks;
        if (PrefixCache is null) return;
        int full = PrefixCache.CacheableBlocks(r.Spec, tokens);
        if (full > r.PrefixBlocks) PrefixCache.Retain(r.Spec, r.PrefixBlocks, full);
        UsedBlocks -= PrefixCache.Release(r.Spec, r.PrefixBlocks);
        r.PrefixBlocks = 0;
        Trim();
    }

    // ---- swap ----------------------------------------------------------------------------------------

    /// <summary>
    /// Swap preemption: the victim's whole KV (<paramref name="kv"/> entries) goes to host memory; the next iteration
    /// waits for the copy. False, with nothing moved, when the swap space cannot take it (the caller recomputes).
    /// </summary>
    public bool TrySwapOut(SimRequest r, long kv)
    {
        long blocks = BlocksFor(kv);
        if (SwapUsedBlocks + blocks > _swapCapacityBlocks)
        {
            _stats.SwapFallbacks++;
            return false;
        }
        Release(r, blocks - r.PrefixBlocks, kv);
        SwapUsedBlocks += blocks;
        _pendingTransferS += blocks * _swapSecondsPerBlock;
        _stats.SwapOuts++;
        r.SwappedKv = kv;
        _swapped.Add(r);
        r.BlocksHeld = 0;
        return true;
    }

    /// <summary>
    /// Brings a swapped-out request's KV back (or takes a prefill replica's KV that arrived over the network) if its
    /// blocks and its next decode block fit beside <paramref name="reservedBlocks"/>; returns its KV entries, or -1.
    /// </summary>
    public long TrySwapIn(SimRequest r, long reservedBlocks)
    {
        long kv = r.SwappedKv;
        if (BlocksFor(kv + 1) > FreeBlocks - reservedBlocks) return -1;
        long blocks = BlocksFor(kv);
        Allocate(blocks);
        if (!r.TransferredIn)
        {
            SwapUsedBlocks -= blocks;
            _pendingTransferS += blocks * _swapSecondsPerBlock;
            _swapped.Remove(r);
            _stats.SwapIns++;
        }
        r.TransferredIn = false;
        r.SwappedKv = 0;
        return kv;
    }

    public bool HasPendingTransfer => _pendingTransferS != 0;

    /// <summary>Swap copies issued since the last iteration; the next iteration waits for them (as vLLM's cache engine does).</summary>
    public double TakeSwapTransferS()
    {
        double t = _pendingTransferS;
        _pendingTransferS = 0;
        _stats.SwapTransferS += t;
        return t;
    }

    /// <summary>
    /// The ledger's invariants, against what the requests say they hold: private blocks plus referenced cached
    /// blocks equal the allocation, allocated + free = total with neither negative, the prefix cache's reference
    /// counts equal the requests' references and its evictable blocks fit in the free list, and host memory holds
    /// exactly the swapped-out requests' KV.
    /// </summary>
    public void Verify(long privateBlocksHeld, long prefixReferencesHeld)
    {
        long held = privateBlocksHeld + (PrefixCache?.ReferencedBlocks ?? 0);
        if (held != UsedBlocks) throw new InvalidOperationException($"blocks held by requests {held} != allocated {UsedBlocks}");
        if (UsedBlocks < 0 || UsedBlocks > TotalBlocks || FreeBlocks + UsedBlocks != TotalBlocks)
            throw new InvalidOperationException($"allocated {UsedBlocks} + free {FreeBlocks} != total {TotalBlocks}");
        if (SwapUsedBlocks < 0 || SwapUsedBlocks > _swapCapacityBlocks)
            throw new InvalidOperationException($"swap space holds {SwapUsedBlocks} blocks of {_swapCapacityBlocks}");
        long swappedBlocks = _swapped.Sum(r => BlocksFor(r.SwappedKv));
        if (swappedBlocks != SwapUsedBlocks)
            throw new InvalidOperationException($"swap space holds {SwapUsedBlocks} blocks, swapped requests {swappedBlocks}");
        if (PrefixCache is null) return;
        if (prefixReferencesHeld != PrefixCache.TotalReferences())
            throw new InvalidOperationException($"prefix-cache references {PrefixCache.TotalReferences()} != blocks the requests reference {prefixReferencesHeld}");
        if (PrefixCache.EvictableBlocks > FreeBlocks)
            throw new InvalidOperationException($"{PrefixCache.EvictableBlocks} cached free blocks exceed the {FreeBlocks} free blocks");
    }
}
