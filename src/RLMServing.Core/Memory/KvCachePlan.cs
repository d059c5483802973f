using RLMServing.Catalog;
using RLMServing.Scenarios;

namespace RLMServing.Memory;

/// <summary>
/// How a replica's GPU memory splits into weights, an activation reserve and paged KV blocks:
/// KV = memory x utilisation - weights - reserve, in blocks of <c>block_size</c> tokens.
/// </summary>
public sealed record KvCachePlan(
    double ReplicaMemoryBytes,
    double UsableBytes,
    double WeightBytes,
    double ActivationReserveBytes,
    long KvBytesPerToken,
    int BlockSize,
    int TotalBlocks)
{
    public long CapacityTokens => (long)TotalBlocks * BlockSize;
    public double KvCacheBytes => (double)TotalBlocks * BlockSize * KvBytesPerToken;

    /// <summary>Plans one replica; throws <see cref="UserInputException"/> when the model does not fit.</summary>
    public static KvCachePlan For(ModelArchitecture model, GpuSpec gpu, int tensorParallel, KvCacheConfig kv, SchedulerConfig scheduler)
    {
        double replicaMemory = gpu.MemoryBytes * tensorParallel;
        double usable = replicaMemory * kv.GpuMemoryUtilization;
        double reserve = kv.ActivationReserveGib is { } gib
            ? gib * (1L << 30) * tensorParallel
            : EstimateActivationReserve(model, scheduler) * tensorParallel;
        double free = usable - model.WeightBytes - reserve;
        long blockBytes = (long)kv.BlockSize * model.KvBytesPerToken;
        int blocks = free <= 0 ? 0 : (int)Math.Min(int.MaxValue, Math.Floor(free / blockBytes));
        if (blocks < 1)
            throw new UserInputException(
                $"model: {model.Name} does not fit: {Gib(model.WeightBytes)} GiB of weights + {Gib(reserve)} GiB activation reserve " +
                $"exceed {Gib(usable)} GiB usable on {tensorParallel} x {gpu.Name} (gpu_memory_utilization {kv.GpuMemoryUtilization}); " +
                "raise hardware.tensor_parallel or pick a larger GPU");
        return new KvCachePlan(replicaMemory, usable, model.WeightBytes, reserve, model.KvBytesPerToken, kv.BlockSize, blocks);
    }

    /// <summary>
    /// Peak activation memory of one forward pass over max_num_batched_tokens (hidden states, QKV, the gated MLP's
    /// intermediate) plus fp32 logits for max_num_seqs, and 1 GiB for the CUDA context and graphs per GPU.
    /// </summary>
    public static double EstimateActivationReserve(ModelArchitecture m, SchedulerConfig s)
    {
        double perToken = (4.0 * m.Hidden + m.QkvWidth + 2.0 * m.Ffn) * m.BytesPerParam;
        double logits = (double)s.MaxNumSeqs * m.Vocab * 4;
        return s.MaxNumBatchedTokens * perToken + logits + (1L << 30);
    }

    private static string Gib(double bytes) => (bytes / (1L << 30)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
}
