namespace RLMServing.Scenarios;

/// <summary>What a replica group does: everything, only prefills (then hands the KV over), or only decodes.</summary>
public enum ReplicaRole { Both, Prefill, Decode }

/// <summary>One group of identical replicas: its GPU, tensor-parallel degree, scheduler and role.</summary>
public sealed record ReplicaGroupConfig(string Name, string Gpu, int Replicas, int TensorParallel, SchedulerConfig Scheduler, ReplicaRole Role);

/// <summary>How long moving one request's KV cache from a prefill replica to a decode replica takes.</summary>
public sealed record KvTransferConfig(double BandwidthGBps, double LatencyMs);

/// <summary>
/// <c>cluster:</c> replica groups (heterogeneous GPUs, TP degrees and schedulers), the router's balance threshold
/// and, for disaggregated serving, the KV transfer link between prefill and decode pools.
/// </summary>
public sealed record ClusterConfig(IReadOnlyList<ReplicaGroupConfig> Groups, int BalanceThreshold, KvTransferConfig? KvTransfer)
{
    public bool Disaggregated => Groups.Any(g => g.Role != ReplicaRole.Both);
}

/// <summary>
/// KV-memory policies besides the plan: prefix caching (block hashing, LRU eviction of unreferenced cached blocks),
/// swap space in host memory for <c>preemption: swap</c> with its PCIe bandwidth, and the admission watermark.
/// Swap space and bandwidth are per GPU (a TP replica swaps its shards in parallel).
/// </summary>
public sealed record MemoryPolicyConfig(bool PrefixCaching, double SwapSpaceGib, double SwapBandwidthGBps, double Watermark)
{
    public static readonly MemoryPolicyConfig Default = new(false, 4, 25, 0);
}
