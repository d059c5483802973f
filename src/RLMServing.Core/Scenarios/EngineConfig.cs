namespace RLMServing.Scenarios;

/// <summary>
/// The serving engine a scenario models (<c>engine</c>): whose scheduling rules the batch planner follows by
/// default and which execution rules the cost model adds. Each rule cites the engine's source (docs/engines.md).
/// </summary>
/// <param name="Name"><c>vllm-v1</c> (the default), <c>vllm-v0</c> or <c>ort</c> (rlms replay's engine).</param>
/// <param name="Version">The engine version whose rules are modelled.</param>
/// <param name="CudaGraphSizes">
/// Decode-only batches up to the largest size run as a captured CUDA graph padded to the next size; null: eager.
/// </param>
/// <param name="AsyncScheduling">
/// The host's per-step work (scheduling, input preparation, output processing) overlaps the GPU's previous step,
/// so an iteration takes max(GPU, host) instead of their sum.
/// </param>
public sealed record EngineConfig(string Name, string Version, IReadOnlyList<int>? CudaGraphSizes, bool AsyncScheduling)
{
    public const string VllmV1 = "vllm-v1", VllmV0 = "vllm-v0", Ort = "ort";

    /// <summary>The engines a scenario can name.</summary>
    public static readonly IReadOnlyList<string> Names = [VllmV1, VllmV0, Ort];

    /// <summary>rlms replay's ONNX Runtime engine: the batching policy as configured, eager, host work in series.</summary>
    public static readonly EngineConfig OrtEngine = new(Ort, "1.31", null, false);

    public bool IsVllm => Name is VllmV1 or VllmV0;

    /// <summary>
    /// vLLM's default CUDA-graph capture sizes for a max_num_seqs: 1, 2, 4, then every 8 up to 256, then every 16,
    /// up to the largest capture size min(2 x max_num_seqs, 512) (vllm/config/vllm.py, _set_cudagraph_sizes, 0.11-0.19).
    /// </summary>
    public static IReadOnlyList<int> DefaultCudaGraphSizes(int maxNumSeqs)
    {
        int max = Math.Min(2 * maxNumSeqs, 512);
        var sizes = new List<int> { 1, 2, 4 };
        for (int s = 8; s < 256; s += 8) sizes.Add(s);
        for (int s = 256; s <= 512; s += 16) sizes.Add(s);
        return sizes.Where(s => s <= max).ToList();
    }
}
