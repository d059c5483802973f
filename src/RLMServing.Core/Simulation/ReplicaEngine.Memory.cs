using RLMServing.Memory;
using RLMServing.Scenarios;

namespace RLMServing.Simulation;

/// <summary>
/// KV-memory policies of a replica: prefix caching (shared prompt blocks are referenced, not recomputed, and freed
/// blocks stay cached until an allocation evicts them), swap preemption (a victim's KV goes to host memory over
/// PCIe and comes back instead of being recomputed, while swap space lasts) and the admission watermark.
/// Accounting: blocks in use = private blocks of the requests + cached blocks referenced by at least one request.
/// </summary>
internal sealed partial class ReplicaEngine : Routing.IReplicaLoad
{
    private PrefixCache? _prefixCache;
    private MemoryPolicyConfig _memory = MemoryPolicyConfig.Default;
    private long _watermarkBlocks;
    private long _swapCapacityBlocks;
    private long _swapUsedBlocks;
    private double _swapSecondsPerBlock;
    private double _pendingTransferS;
    private long _queuedPromptBlocks;
    private readonly HashSet<SimRequest> _swapped = new(ReferenceEqualityComparer.Instance);   // prompts routed here and not yet admitted (routers read it)

    /// <summary>
    /// Turns the scenario's memory policies on; <paramref name="tensorParallel"/> GPUs swap their shards in parallel.
    /// Parallel sampling shares a prompt's blocks between its samples through the prefix cache's reference counts,
    /// so it needs the cache even with prefix caching off (only the samples' prefix identities can hit then).
    /// </summary>
    public void ConfigureMemory(MemoryPolicyConfig memory, int tensorParallel, bool parallelSampling = false)
    {
        _memory = memory;
        _prefixCache = memory.PrefixCaching || parallelSampling ? new PrefixCache(BlockSize) : null;
        _watermarkBlocks = (long)Math.Floor(memory.Watermark * TotalBlocks);
        double blockBytes = (double)BlockSize * _kv.KvBytesPerToken;
        _swapCapacityBlocks = (long)Math.Floor(memory.SwapSpaceGib * (1L << 30) * tensorParallel / blockBytes);
        _swapSecondsPerBlock = blockBytes / (memory.SwapBandwidthGBps * 1e9 * tensorParallel);
    }

    public PrefixCache? PrefixCache => _prefixCache;

    /// <summary>Requests on this replica that have not finished: routed and not admitted yet, waiting, or running.</summary>
    public int Outstanding => _arrivals.Count + _parkedSamples + _waiting.Count + RunningCount;

    /// <summary>KV blocks in use plus the prompt blocks of requests routed here and not admitted yet.</summary>
    public long KvDemandBlocks => _usedBlocks + _queuedPromptBlocks;

    public long CapacityBlocks => TotalBlocks;

    /// <summary>The head of the queue, with the prefix-cache hit it would get if admitted now.</summary>
    private SimRequest PeekWaiting()
    {
        var r = _waiting.Peek();
        if (_prefixCache is null || r.SwappedKv > 0 || r.BlocksHeld > 0 || r.PrefixBlocks > 0) return r;
        // At least the last prompt token is computed, so a fully cached prompt still yields its first token.
        int hit = _prefixCache.Match(r.Spec, (r.PrefillTarget - 1) / BlockSize);
        r.PendingPrefixTokens = hit * BlockSize;
        return r;
    }

    /// <summary>Cached blocks of the pending hit that nobody references: admitting the request takes them off the free list.</summary>
    private int PrefixRevived(SimRequest r) =>
        r.PendingPrefixTokens == 0 ? 0 : _prefixCache!.UnreferencedAmong(r.Spec, r.PendingPrefixTokens / BlockSize);

    /// <summary>Takes the pending prefix-cache hit: the cached blocks are referenced and their tokens count as prefilled.</summary>
    private void AcquirePrefix(SimRequest r)
    {
        if (_prefixCache is null) return;
        int hitTokens = r.PendingPrefixTokens;
        _prefixCache.QueryTokens += r.PrefillTarget;
        _prefixCache.HitTokens += hitTokens;
        r.CachedPromptTokens = Math.Max(r.CachedPromptTokens, hitTokens);
        if (hitTokens == 0) return;
        _usedBlocks += _prefixCache.Acquire(r.Spec, hitTokens / BlockSize);
        r.PrefixBlocks = hitTokens / BlockSize;
        r.Prefilled += hitTokens;
        r.PendingPrefixTokens = 0;
    }

    /// <summary>At the end of a prefill, the full blocks the request computed join the cache under its reference.</summary>
    private void RegisterPrefix(SimRequest r)
    {
        if (_prefixCache is null) return;
        int to = _prefixCache.CacheableBlocks(r.Spec, r.PrefillTarget);
        if (to <= r.PrefixBlocks) return;
        _usedBlocks += _prefixCache.Register(r.Spec, r.PrefixBlocks, to);
        r.BlocksHeld -= to - r.PrefixBlocks;
        r.PrefixBlocks = to;
    }

    /// <summary>
    /// Frees a request's KV: its private blocks, and its references to cached blocks. With prefix caching, the full
    /// blocks of its first <paramref name="tokens"/> context tokens stay cached (unreferenced) for later requests.
    /// </summary>
    private void ReleaseKv(SimRequest r, long privateBlocks, long tokens)
    {
        _usedBlocks -= privateBlocks;
        if (_prefixCache is null) return;
        int full = _prefixCache.CacheableBlocks(r.Spec, tokens);
        if (full > r.PrefixBlocks) _prefixCache.Retain(r.Spec, r.PrefixBlocks, full);
        _usedBlocks -= _prefixCache.Release(r.Spec, r.PrefixBlocks);
        r.PrefixBlocks = 0;
        TrimPrefixCache();
    }

    private void TrimPrefixCache() => _prefixCache?.Trim(FreeBlocks);

    private long SharedBlocksInUse() => _prefixCache?.ReferencedBlocks ?? 0;

    /// <summary>New admissions keep a watermark of blocks free while others run (vLLM's block-manager watermark), leaving decodes room to grow.</summary>
    private long AdmissionWatermark() => RunningCount > 0 ? _watermarkBlocks : 0;

    /// <summary>
    /// Swap preemption: the victim's whole KV is copied to host memory (the next iteration waits for the copy) and
    /// it later resumes decoding where it stopped. When the swap space is full the victim is recomputed instead.
    /// </summary>
    private bool TrySwapOut(SimRequest r, long kv)
    {
        if (_sched.Preemption != PreemptionMode.Swap) return false;
        long blocks = BlocksFor(kv);
        if (_swapUsedBlocks + blocks > _swapCapacityBlocks)
        {
            Stats.SwapFallbacks++;
            return false;
        }
        ReleaseKv(r, blocks - r.PrefixBlocks, kv);
        _swapUsedBlocks += blocks;
        _pendingTransferS += blocks * _swapSecondsPerBlock;
        Stats.SwapOuts++;
        r.SwappedKv = kv;
        _swapped.Add(r);
        r.BlocksHeld = 0;
        r.Prefilled = r.PrefillTarget;   // nothing to prefill when it comes back
        r.Preemptions++;
        Stats.Preemptions++;
        r.State = RequestState.Waiting;
        _batch.Remove(r);
        _waiting.EnqueuePreempted(r);
        return true;
    }

    /// <summary>Brings a swapped request back into the decode set if its blocks (and its next decode block) are free.</summary>
    private bool TrySwapIn(SimRequest r, long reservedBlocks)
    {
        long kv = r.SwappedKv;
        if (BlocksFor(kv + 1) > FreeBlocks - reservedBlocks) return false;
        _waiting.Dequeue();
        long blocks = BlocksFor(kv);
        _usedBlocks += blocks;
        TrimPrefixCache();
        if (!r.TransferredIn)
        {
            _swapUsedBlocks -= blocks;
            _pendingTransferS += blocks * _swapSecondsPerBlock;
            _swapped.Remove(r);
            Stats.SwapIns++;
        }
        r.TransferredIn = false;
        r.SwappedKv = 0;
        r.AdmitSeq = _admitSeq++;
        FollowBudget(r);
        JoinDecodeSet(r, kv);
        return true;
    }

    /// <summary>Swap copies issued since the last iteration; the next iteration waits for them (as vLLM's cache engine does).</summary>
    private double TakeSwapTransferS()
    {
        double t = _pendingTransferS;
        _pendingTransferS = 0;
        Stats.SwapTransferS += t;
        return t;
    }

    // ---- parallel sampling ---------------------------------------------------------------------------

    private readonly Dictionary<long, List<SimRequest>> _parked = new();   // samples waiting for their prompt's prefill
    private readonly HashSet<long> _promptsReady = new();                  // prompts whose first sample has prefilled (or was rejected)
    private int _parkedSamples;

    /// <summary>
    /// Parallel sampling: samples 1..n-1 of a prompt wait until its first sample has prefilled the prompt, then queue
    /// and are admitted with the prompt's full blocks shared (a prefix-cache hit); each computes only the prompt's
    /// last partial block, then decodes its own output into its own blocks. False when the request is not held back.
    /// </summary>
    private bool ParkSample(SimRequest r)
    {
        if (r.Spec.SampleIndex == 0 || r.Spec.PromptId is not { } prompt || _promptsReady.Contains(prompt)) return false;
        if (!_parked.TryGetValue(prompt, out var list)) _parked[prompt] = list = new List<SimRequest>();
        list.Add(r);
        _parkedSamples++;
        return true;
    }

    /// <summary>The first sample of a prompt has prefilled it (or was rejected): its other samples queue now.</summary>
    private void ReleaseSamples(SimRequest first)
    {
        if (first.Spec.SampleIndex != 0 || first.Spec.PromptId is not { } prompt || !_promptsReady.Add(prompt)) return;
        if (!_parked.Remove(prompt, out var list)) return;
        _parkedSamples -= list.Count;
        foreach (var r in list) _waiting.Enqueue(r);
    }

    private void VerifyMemoryPolicies()
    {
        if (_parked.Keys.Any(_promptsReady.Contains) || _parked.Values.Sum(l => l.Count) != _parkedSamples)
            throw new InvalidOperationException("a sample waits for a prompt that has already been prefilled");
        if (_swapUsedBlocks < 0 || _swapUsedBlocks > _swapCapacityBlocks)
            throw new InvalidOperationException($"swap space holds {_swapUsedBlocks} blocks of {_swapCapacityBlocks}");
        // Swap conserves blocks: host memory holds exactly the KV of the swapped-out requests.
        if (_swapped.Sum(r => BlocksFor(r.SwappedKv)) != _swapUsedBlocks)
            throw new InvalidOperationException($"swap space holds {_swapUsedBlocks} blocks, swapped requests {_swapped.Sum(r => BlocksFor(r.SwappedKv))}");
        if (_prefixCache is null) return;
        long refs = _prefilling.Sum(r => (long)r.PrefixBlocks) + _decoding.Sum(r => (long)r.PrefixBlocks);
        if (refs != _prefixCache.TotalReferences())
            throw new InvalidOperationException($"prefix-cache references {_prefixCache.TotalReferences()} != blocks the requests reference {refs}");
        if (_prefixCache.EvictableBlocks > FreeBlocks)
            throw new InvalidOperationException($"{_prefixCache.EvictableBlocks} cached free blocks exceed the {FreeBlocks} free blocks");
    }
}
