using RLMServing.Catalog;
using RLMServing.Scenarios;

namespace RLMServing.Memory;

/// <summary>
/// How a replica's GPU memory splits into weights, an activation reserve, speculative decoding's draft and paged KV
/// blocks: KV = memory x utilisation - weights - reserve - draft weights, in blocks of <c>block_size</c> tokens, each
/// block also paying the draft's KV for its tokens (<see cref="DraftMemory"/>).
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
    /// <summary>Speculative decoding's fixed reservation per replica (draft weights, or the draft_memory_gib override).</summary>
    public double DraftFixedBytes { get; init; }

    /// <summary>Draft KV bytes reserved per target token (0 without a draft that caches KV).</summary>
    public long DraftKvBytesPerToken { get; init; }

    public int TensorParallel { get; init; } = 1;

    public long CapacityTokens => (long)TotalBlocks * BlockSize;
    public double KvCacheBytes => (double)TotalBlocks * BlockSize * KvBytesPerToken;

    /// <summary>Everything speculative decoding took from the KV budget of the replica: fixed part plus the draft KV of every block.</summary>
    public double SpeculativeReservedBytes => DraftFixedBytes + (double)CapacityTokens * DraftKvBytesPerToken;

    /// <summary>Plans one replica; throws <see cref="UserInputException"/> when the model (or the model and its draft) does not fit.</summary>
    public static KvCachePlan For(ModelArchitecture model, GpuSpec gpu, int tensorParallel, KvCacheConfig kv, SchedulerConfig scheduler,
        DraftMemory? draft = null)
    {
        draft ??= DraftMemory.None;
        double replicaMemory = gpu.MemoryBytes * tensorParallel;
        double usable = replicaMemory * kv.GpuMemoryUtilization;
        double reserve = kv.ActivationReserveGib is { } gib
            ? gib * (1L << 30) * tensorParallel
            : EstimateActivationReserve(model, scheduler) * tensorParallel;
        double free = usable - model.WeightBytes - reserve;
        long blockBytes = (long)kv.BlockSize * model.KvBytesPerToken;
        if (Blocks(free, blockBytes) < 1)
            throw new UserInputException(
                $"model: {model.Name} does not fit: {Gib(model.WeightBytes)} GiB of weights + {Gib(reserve)} GiB activation reserve " +
                $"exceed {Gib(usable)} GiB usable on {tensorParallel} x {gpu.Name} (gpu_memory_utilization {kv.GpuMemoryUtilization}); " +
                "raise hardware.tensor_parallel or pick a larger GPU");
        double draftFixed = draft.FixedBytes(tensorParallel);
        long draftBlockBytes = (long)kv.BlockSize * draft.PerTokenBytes;
        int blocks = Blocks(free - draftFixed, blockBytes + draftBlockBytes);
        if (blocks < 1)
            throw new UserInputException(
                $"speculative: the draft does not fit beside {model.Name}: it needs {Gib(draftFixed / tensorParallel)} GiB per GPU fixed " +
                $"+ {Kib(draftBlockBytes / (double)tensorParallel)} KiB of draft KV per {kv.BlockSize}-token block, and only " +
                $"{Gib(free / tensorParallel)} GiB per GPU is left after weights and activation reserve on {tensorParallel} x {gpu.Name}; " +
                (draft.OverrideBytesPerGpu is null ? "raise hardware.tensor_parallel or pick a smaller draft" : "lower speculative.draft_memory_gib or raise hardware.tensor_parallel"));
        return new KvCachePlan(replicaMemory, usable, model.WeightBytes, reserve, model.KvBytesPerToken, kv.BlockSize, blocks)
        {
            DraftFixedBytes = draftFixed,
            DraftKvBytesPerToken = draft.PerTokenBytes,
            TensorParallel = tensorParallel,
        };
    }

    /// <summary>Whole blocks of <paramref name="blockBytes"/> in <paramref name="freeBytes"/>, rounded down (0 when nothing is free).</summary>
    public static int Blocks(double freeBytes, long blockBytes) =>
        freeBytes <= 0 ? 0 : (int)Math.Min(int.MaxValue, Math.Floor(freeBytes / blockBytes));

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
    private static string Kib(double bytes) => (bytes / 1024).ToString("F0", System.Globalization.CultureInfo.InvariantCulture);
}
