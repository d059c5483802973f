using RLMServing.Catalog;
using RLMServing.IO.Catalog;
using Xunit;

namespace RLMServing.Tests;

public class CatalogTests
{
    private static readonly HardwareCatalog Catalog = CatalogLoader.Load([CatalogLoader.BundledDirectory]);

    [Theory]
    [InlineData("DeepSeek-R1-Distill-Qwen-7B", 7.0e9, 8.0e9)]
    [InlineData("DeepSeek-R1-Distill-Llama-70B", 69e9, 72e9)]
    [InlineData("Llama-3.1-8B", 7.9e9, 8.2e9)]
    [InlineData("QwQ-32B", 32e9, 33.5e9)]
    [InlineData("DeepSeek-R1-Distill-Qwen-1.5B", 1.7e9, 1.9e9)]
    public void ParameterCountsMatchPublishedSizes(string model, double min, double max)
    {
        var p = Catalog.Model(model).ParameterCount;
        Assert.InRange(p, min, max);
    }

    [Fact]
    public void KvBytesPerTokenOfLlama8BIs128KiB()
    {
        // 2 (K,V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 131072 bytes.
        Assert.Equal(131072, Catalog.Model("Llama-3.1-8B").KvBytesPerToken);
    }

    [Fact]
    public void UnknownModelSuggestsNearestNames()
    {
        var e = Assert.Throws<CatalogException>(() => Catalog.Model("DeepSeek-R1-Distill-Qwen-8B"));
        Assert.Contains("DeepSeek-R1-Distill-Qwen-7B", e.Message);
    }

    [Theory]
    [InlineData("A100-SXM-80G")]
    [InlineData("H100-SXM-80G")]
    [InlineData("H200-SXM-141G")]
    [InlineData("L40S")]
    [InlineData("RTXPRO6000")]
    [InlineData("B200")]
    public void RequiredGpusArePresent(string gpu) => Assert.True(Catalog.Gpu(gpu).MemoryGib > 0);
}
