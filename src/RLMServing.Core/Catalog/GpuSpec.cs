namespace RLMServing.Catalog;

/// <summary>One GPU model's datasheet numbers, as the roofline cost model and memory planner use them.</summary>
public sealed record GpuSpec(
    string Name,
    double MemoryGib,
    double MemoryBandwidthGBps,
    double Bf16Tflops,
    double Fp16Tflops,
    double Fp32Tflops,
    string Interconnect,
    double InterconnectBandwidthGBps,
    IReadOnlyList<string> Aliases)
{
    public double MemoryBytes => MemoryGib * (1L << 30);

    /// <summary>Dense tensor throughput in FLOP/s for a weight dtype.</summary>
    public double PeakFlops(string dtype) => dtype switch
    {
        "bf16" => Bf16Tflops * 1e12,
        "fp16" => Fp16Tflops * 1e12,
        "fp32" => Fp32Tflops * 1e12,
        // fp8/int8 run on the same tensor cores at twice the bf16 rate on Hopper and later.
        "fp8" or "int8" => 2 * Bf16Tflops * 1e12,
        _ => Bf16Tflops * 1e12,
    };

    public double MemoryBandwidthBytesPerS => MemoryBandwidthGBps * 1e9;
    public double InterconnectBytesPerS => InterconnectBandwidthGBps * 1e9;
}
