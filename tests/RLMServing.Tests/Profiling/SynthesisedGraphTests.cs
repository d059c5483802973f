using Microsoft.ML.OnnxRuntime;
using RLMServing.Catalog;
using RLMServing.IO.Catalog;
using RLMServing.Profiling;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using Xunit;

namespace RLMServing.Tests.Profiling;

public sealed class SynthesisedGraphTests
{
    internal static ModelArchitecture Tiny { get; } = CatalogLoader.LoadDefault().Model("tiny");

    private static readonly TransformerGraphs Graphs = new(Tiny, OnnxType.Float, 512);

    /// <summary>Runs a synthesised graph on the CPU with random float inputs and the given int inputs; returns float outputs.</summary>
    private static Dictionary<string, float[]> Run(SynthGraph graph, int batch, int seq, Action<GraphSession>? bindExtra = null)
    {
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), intraOpThreads: 1);
        using var s = new GraphSession(device, graph.Kind, graph.ModelBytes(), graph.Weights, OnnxType.Float);
        var rnd = new Random(7);
        foreach (var input in graph.Builder.Inputs.Where(i => i.Type == OnnxType.Float && !i.Name.StartsWith("w.", StringComparison.Ordinal)))
        {
            var shape = input.Shape.Select(d => d.Param switch
            {
                "batch" => batch,
                "seq" => seq,
                "max_seq" => 64L,
                _ => d.Value ?? 1,
            }).ToArray();
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++) data[i] = (float)(rnd.NextDouble() - 0.5);
            s.BindInput(input.Name, OrtValue.CreateTensorValueFromMemory(data, shape));
        }
        bindExtra?.Invoke(s);
        foreach (var o in graph.Builder.Outputs) s.BindOutputToDevice(o.Name);
        s.Run();
        using var outputs = s.OutputValues();
        var names = s.OutputNames();
        var result = new Dictionary<string, float[]>();
        for (int i = 0; i < names.Length; i++)
        {
            var v = outputs[i];
            var type = v.GetTensorTypeAndShape().ElementDataType;
            result[names[i]] = type == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float
                ? v.GetTensorDataAsSpan<float>().ToArray()
                : v.GetTensorDataAsSpan<long>().ToArray().Select(x => (float)x).ToArray();
        }
        return result;
    }

    private static void AssertFinite(Dictionary<string, float[]> outputs)
    {
        Assert.NotEmpty(outputs);
        foreach (var (name, values) in outputs)
        {
            Assert.True(values.Length > 0, $"{name} is empty");
            Assert.True(values.All(float.IsFinite), $"{name} has non-finite values");
        }
    }

    [Fact]
    public void TokenParallelGraphs_LoadAndGiveFiniteOutputs()
    {
        AssertFinite(Run(Graphs.RmsNorm(), 1, 8));
        AssertFinite(Run(Graphs.QkvProjection(), 1, 8));
        AssertFinite(Run(Graphs.OutputProjection(), 1, 8));
        AssertFinite(Run(Graphs.Mlp(), 1, 8));
        AssertFinite(Run(Graphs.Rotary(), 1, 8, s => s.BindInput("position_ids", Enumerable.Range(0, 8).Select(i => (long)i).ToArray(), [1, 8])));
    }

    [Fact]
    public void AttentionAndLayer_DecodeWithSkewedContexts_GiveFiniteOutputs()
    {
        int[] lengths = [40, 5, 17];
        void Bind(GraphSession s)
        {
            s.BindInput("seqlens_k", lengths, [3]);
            s.BindInput("total_sequence_length", new[] { lengths.Max() + 1 }, []);
        }
        var attention = Run(Graphs.Attention(), 3, 1, Bind);
        AssertFinite(attention);
        Assert.Equal(3 * Tiny.Heads * Tiny.HeadDim, attention["y"].Length);
        AssertFinite(Run(Graphs.Layer(), 3, 1, Bind));
    }

    [Fact]
    public void LmHead_SamplesOneTokenPerSequenceInsideTheVocabulary()
    {
        var tokens = Run(Graphs.LmHead(), 4, 1)["next_token"];
        Assert.Equal(4, tokens.Length);
        Assert.All(tokens, t => Assert.InRange(t, 0, Tiny.Vocab - 1));
    }

    [Fact]
    public void Model_FollowsTheGenAiLayout()
    {
        var graph = Graphs.Model(2);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        using var s = new GraphSession(device, "model", graph.ModelBytes(), graph.Weights, OnnxType.Float);
        var sig = DecoderSignature.FromSession(s.Session, "tiny", graph.Weights.Select(w => w.Name).ToHashSet());
        Assert.Equal(2, sig.Layers.Count);
        Assert.Equal(Tiny.KvHeads, sig.KvHeads);
        Assert.Equal(Tiny.HeadDim, sig.HeadDim);
        Assert.Equal(Tiny.Vocab, sig.Vocab);
        Assert.Equal("past_key_values.1.value", sig.Layers[1].PastValue);
        Assert.Equal("present.1.value", sig.Layers[1].PresentValue);
    }

    [Fact]
    public void GraphBytes_AreSmallEvenForA70BLayer()
    {
        var big = CatalogLoader.LoadDefault().Model("DeepSeek-R1-Distill-Llama-70B");
        var g = new TransformerGraphs(big, OnnxType.BFloat16, 32768);
        var layer = g.Layer();
        Assert.True(layer.ModelBytes().Length < 16_384, "weights are graph inputs, never stored in the file");
        Assert.Equal(big.ParamsPerLayer - 2L * big.Hidden, layer.Weights.Where(w => !w.Name.Contains("norm") && !w.Name.Contains("cache"))
            .Sum(w => w.Elements));
    }

    [Fact]
    public void DecodePoints_SkewPatterns()
    {
        Assert.Equal([100, 100, 100, 100], new DecodePoint(4, 100, "uniform").Lengths());
        Assert.Equal([800, 100, 100, 100], new DecodePoint(4, 800, "skewed").Lengths());
        Assert.Equal([200, 400, 600, 800], new DecodePoint(4, 800, "linear").Lengths());
    }
}
