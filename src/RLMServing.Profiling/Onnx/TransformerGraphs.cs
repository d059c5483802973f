using RLMServing.Catalog;
using static RLMServing.Profiling.Onnx.GraphBuilder;

namespace RLMServing.Profiling.Onnx;

/// <summary>A weight the runner allocates once on the device and fills with random values (mean, std).</summary>
public sealed record WeightSpec(string Name, long[] Shape, float Mean = 0f, float Std = 0.02f)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>A synthesised graph: the serialised model plus the weights its inputs expect.</summary>
public sealed record SynthGraph(string Kind, GraphBuilder Builder, IReadOnlyList<WeightSpec> Weights)
{
    public byte[] ModelBytes() => Builder.ToModelBytes();
}

/// <summary>
/// Builds the ONNX graphs of one decoder-only architecture, op by op and whole: the shapes and operator choices
/// follow ONNX Runtime GenAI exports (SimplifiedLayerNormalization, MatMul projections, com.microsoft
/// GroupQueryAttention with rotary inside and a KV buffer shared between past and present, ArgMax sampling).
/// Activations are [batch, seq, width] with symbolic batch and seq, so one session serves a whole grid.
/// </summary>
public sealed class TransformerGraphs(ModelArchitecture arch, OnnxType dtype, int maxPositions, bool embedWeights = false)
{
    /// <summary>
    /// Store random fp32 weights in the file as initializers instead of declaring them as inputs: a self-contained
    /// model, like a user's export (small architectures only; used to test the user-model path).
    /// </summary>
    public bool EmbedWeights { get; } = embedWeights && dtype == OnnxType.Float
        ? true
        : embedWeights ? throw new ArgumentException("embedded weights are fp32 only") : false;

    public const float NormEpsilon = 1e-6f;
    public ModelArchitecture Arch { get; } = arch;
    public OnnxType Dtype { get; } = dtype;

    /// <summary>Rotary cos/sin tables cover this many positions (the largest context a grid reaches).</summary>
    public int MaxPositions { get; } = maxPositions;

    private int Hd => Arch.HeadDim;
    private long QWidth => (long)Arch.Heads * Hd;
    private long KvWidth => (long)Arch.KvHeads * Hd;

    public SynthGraph RmsNorm()
    {
        var g = new GraphBuilder("rmsnorm");
        var w = new List<WeightSpec>();
        var x = g.Input("x", Dtype, 1, "seq", Arch.Hidden);
        g.Op("SimplifiedLayerNormalization", [x, Weight(g, w, "w.norm", [Arch.Hidden], 1f)], "y", "",
            Attr("axis", -1L), Attr("epsilon", NormEpsilon));
        g.Output("y", Dtype, 1, "seq", Arch.Hidden);
        return new SynthGraph("rmsnorm", g, w);
    }

    public SynthGraph QkvProjection()
    {
        var g = new GraphBuilder("qkv_proj");
        var w = new List<WeightSpec>();
        var x = g.Input("x", Dtype, 1, "seq", Arch.Hidden);
        var y = Linear(g, w, x, "w.qkv", Arch.Hidden, Arch.QkvWidth, Arch.QkvBias);
        g.Op("Identity", [y], "y");
        g.Output("y", Dtype, 1, "seq", Arch.QkvWidth);
        return new SynthGraph("qkv_proj", g, w);
    }

    /// <summary>Rotary embedding of Q and K on its own (in the attention graphs it runs inside GroupQueryAttention).</summary>
    public SynthGraph Rotary()
    {
        var g = new GraphBuilder("rotary");
        var w = new List<WeightSpec>();
        var q = g.Input("q", Dtype, 1, "seq", QWidth);
        var k = g.Input("k", Dtype, 1, "seq", KvWidth);
        var pos = g.Input("position_ids", OnnxType.Int64, 1, "seq");
        var (cos, sin) = RotaryCaches(g, w);
        g.Op("RotaryEmbedding", [q, pos, cos, sin], "q_rot", MicrosoftDomain, Attr("num_heads", (long)Arch.Heads));
        g.Op("RotaryEmbedding", [k, pos, cos, sin], "k_rot", MicrosoftDomain, Attr("num_heads", (long)Arch.KvHeads));
        g.Output("q_rot", Dtype, 1, "seq", QWidth);
        g.Output("k_rot", Dtype, 1, "seq", KvWidth);
        return new SynthGraph("rotary", g, w);
    }

    public SynthGraph OutputProjection()
    {
        var g = new GraphBuilder("o_proj");
        var w = new List<WeightSpec>();
        var x = g.Input("x", Dtype, 1, "seq", QWidth);
        g.Op("Identity", [Linear(g, w, x, "w.o", QWidth, Arch.Hidden, false)], "y");
        g.Output("y", Dtype, 1, "seq", Arch.Hidden);
        return new SynthGraph("o_proj", g, w);
    }

    public SynthGraph Mlp()
    {
        var g = new GraphBuilder("mlp");
        var w = new List<WeightSpec>();
        var x = g.Input("x", Dtype, 1, "seq", Arch.Hidden);
        g.Op("Identity", [MlpBlock(g, w, x, "")], "y");
        g.Output("y", Dtype, 1, "seq", Arch.Hidden);
        return new SynthGraph("mlp", g, w);
    }

    /// <summary>
    /// GroupQueryAttention with rotary, for decode (seq = 1, any batch, per-sequence context lengths through seqlens_k)
    /// and prefill (batch 1, a chunk of seq tokens after a context). past and present share one buffer.
    /// </summary>
    public SynthGraph Attention()
    {
        var g = new GraphBuilder("attention");
        var w = new List<WeightSpec>();
        var q = g.Input("q", Dtype, "batch", "seq", QWidth);
        var k = g.Input("k", Dtype, "batch", "seq", KvWidth);
        var v = g.Input("v", Dtype, "batch", "seq", KvWidth);
        var pk = g.Input("past_key", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        var pv = g.Input("past_value", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        var seqlens = g.Input("seqlens_k", OnnxType.Int32, "batch");
        var total = g.Input("total_sequence_length", OnnxType.Int32);
        var (cos, sin) = RotaryCaches(g, w);
        g.OpMulti("GroupQueryAttention", [q, k, v, pk, pv, seqlens, total, cos, sin], ["y", "present_key", "present_value"],
            MicrosoftDomain, GqaAttributes());
        g.Output("y", Dtype, "batch", "seq", QWidth);
        g.Output("present_key", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        g.Output("present_value", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        return new SynthGraph("attention", g, w);
    }

    /// <summary>Final norm, LM head and greedy sampling (ArgMax) for one new token per sequence.</summary>
    public SynthGraph LmHead()
    {
        var g = new GraphBuilder("lm_head");
        var w = new List<WeightSpec>();
        var x = g.Input("x", Dtype, "batch", 1, Arch.Hidden);
        var n = g.Op("SimplifiedLayerNormalization", [x, Weight(g, w, "w.final_norm", [Arch.Hidden], 1f)], null, "",
            Attr("axis", -1L), Attr("epsilon", NormEpsilon));
        var logits = Linear(g, w, n, "w.lm_head", Arch.Hidden, Arch.Vocab, false);
        g.Op("ArgMax", [logits], "next_token", "", Attr("axis", -1L), Attr("keepdims", 0L));
        g.Output("next_token", OnnxType.Int64, "batch", 1);
        return new SynthGraph("lm_head", g, w);
    }

    /// <summary>One whole decoder layer, attention with the same shared KV buffer as <see cref="Attention"/>.</summary>
    public SynthGraph Layer()
    {
        var g = new GraphBuilder("layer");
        var w = new List<WeightSpec>();
        var x = g.Input("x", Dtype, "batch", "seq", Arch.Hidden);
        var pk = g.Input("past_key", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        var pv = g.Input("past_value", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        var seqlens = g.Input("seqlens_k", OnnxType.Int32, "batch");
        var total = g.Input("total_sequence_length", OnnxType.Int32);
        var (cos, sin) = RotaryCaches(g, w);
        var y = DecoderLayer(g, w, x, pk, pv, seqlens, total, cos, sin, "", "present_key", "present_value");
        g.Op("Identity", [y], "y");
        g.Output("y", Dtype, "batch", "seq", Arch.Hidden);
        g.Output("present_key", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        g.Output("present_value", Dtype, "batch", Arch.KvHeads, "max_seq", Hd);
        return new SynthGraph("layer", g, w);
    }

    /// <summary>
    /// An N-layer decoder in the ONNX Runtime GenAI layout: input_ids, attention_mask, past_key_values.{i}.key/value
    /// in; logits, present.{i}.key/value out. seqlens_k and total_sequence_length come from the attention mask, as
    /// in GenAI exports, so the same generation loop drives this model and user models.
    /// </summary>
    public SynthGraph Model(int layers)
    {
        var g = new GraphBuilder("model");
        var w = new List<WeightSpec>();
        var ids = g.Input("input_ids", OnnxType.Int64, "batch", "seq");
        var mask = g.Input("attention_mask", OnnxType.Int64, "batch", "total_seq");
        var pastKeys = new string[layers];
        var pastValues = new string[layers];
        for (int i = 0; i < layers; i++)
        {
            pastKeys[i] = g.Input($"past_key_values.{i}.key", Dtype, "batch", Arch.KvHeads, "past_seq", Hd);
            pastValues[i] = g.Input($"past_key_values.{i}.value", Dtype, "batch", Arch.KvHeads, "past_seq", Hd);
        }
        var (cos, sin) = RotaryCaches(g, w);
        var summed = g.Op("ReduceSum", [mask, g.ConstInt64("axes", 1)], null, "", Attr("keepdims", 0L));
        var seqlens = g.Op("Cast", [g.Op("Sub", [summed, g.ScalarInt64("one", 1)])], null, "", Attr("to", (long)OnnxType.Int32));
        var totalLen = g.Op("Gather", [g.Op("Shape", [mask]), g.ScalarInt64("dim1", 1)], null, "", Attr("axis", 0L));
        var total = g.Op("Cast", [totalLen], null, "", Attr("to", (long)OnnxType.Int32));

        var h = g.Op("Gather", [Weight(g, w, "w.embed", [Arch.Vocab, Arch.Hidden]), ids], null, "", Attr("axis", 0L));
        for (int i = 0; i < layers; i++)
            h = DecoderLayer(g, w, h, pastKeys[i], pastValues[i], seqlens, total, cos, sin, $"l{i}.",
                $"present.{i}.key", $"present.{i}.value");
        // Logits for the last position only, as serving engines compute them (a 32k-token prompt's full logits
        // would be gigabytes that no sampler reads).
        var last = g.Op("Slice", [h, g.ConstInt64("starts", -1), g.ConstInt64("ends", long.MaxValue), g.ConstInt64("axes", 1)]);
        var n = g.Op("SimplifiedLayerNormalization", [last, Weight(g, w, "w.final_norm", [Arch.Hidden], 1f)], null, "",
            Attr("axis", -1L), Attr("epsilon", NormEpsilon));
        g.Op("Identity", [Linear(g, w, n, "w.lm_head", Arch.Hidden, Arch.Vocab, false)], "logits");
        g.Output("logits", Dtype, "batch", 1, Arch.Vocab);
        // Greedy sampling on the device, as serving engines sample: only the token ids cross to the host (a 152k
        // vocabulary's logits at batch 32 would be 10 MB a step to copy and scan on the CPU).
        g.Op("ArgMax", ["logits"], "next_token", "", Attr("axis", -1L), Attr("keepdims", 0L));
        g.Output("next_token", OnnxType.Int64, "batch", 1);
        for (int i = 0; i < layers; i++)
        {
            g.Output($"present.{i}.key", Dtype, "batch", Arch.KvHeads, "present_seq", Hd);
            g.Output($"present.{i}.value", Dtype, "batch", Arch.KvHeads, "present_seq", Hd);
        }
        return new SynthGraph("model", g, w);
    }

    private string DecoderLayer(GraphBuilder g, List<WeightSpec> w, string x, string pastKey, string pastValue, string seqlens,
        string total, string cos, string sin, string prefix, string presentKey, string presentValue)
    {
        var n1 = g.Op("SimplifiedLayerNormalization", [x, Weight(g, w, prefix + "w.norm1", [Arch.Hidden], 1f)], null, "",
            Attr("axis", -1L), Attr("epsilon", NormEpsilon));
        var qkv = Linear(g, w, n1, prefix + "w.qkv", Arch.Hidden, Arch.QkvWidth, Arch.QkvBias);
        var parts = g.OpMulti("Split", [qkv, g.ConstInt64("split", QWidth, KvWidth, KvWidth)], 3, "", Attr("axis", -1L));
        var attn = g.OpMulti("GroupQueryAttention", [parts[0], parts[1], parts[2], pastKey, pastValue, seqlens, total, cos, sin],
            [null, presentKey, presentValue], MicrosoftDomain, GqaAttributes())[0];
        var o = Linear(g, w, attn, prefix + "w.o", QWidth, Arch.Hidden, false);
        var h = g.Op("Add", [x, o]);
        var n2 = g.Op("SimplifiedLayerNormalization", [h, Weight(g, w, prefix + "w.norm2", [Arch.Hidden], 1f)], null, "",
            Attr("axis", -1L), Attr("epsilon", NormEpsilon));
        return g.Op("Add", [h, MlpBlock(g, w, n2, prefix)]);
    }

    private string MlpBlock(GraphBuilder g, List<WeightSpec> w, string x, string prefix)
    {
        if (Arch.GatedMlp)
        {
            var gate = Linear(g, w, x, prefix + "w.gate", Arch.Hidden, Arch.Ffn, false);
            var up = Linear(g, w, x, prefix + "w.up", Arch.Hidden, Arch.Ffn, false);
            var act = g.Op("Mul", [gate, g.Op("Sigmoid", [gate])]);
            return Linear(g, w, g.Op("Mul", [act, up]), prefix + "w.down", Arch.Ffn, Arch.Hidden, false);
        }
        var u = Linear(g, w, x, prefix + "w.up", Arch.Hidden, Arch.Ffn, false);
        return Linear(g, w, g.Op("Relu", [u]), prefix + "w.down", Arch.Ffn, Arch.Hidden, false);
    }

    private OnnxAttribute[] GqaAttributes() =>
    [
        Attr("num_heads", (long)Arch.Heads), Attr("kv_num_heads", (long)Arch.KvHeads), Attr("do_rotary", 1L),
        Attr("rotary_interleaved", 0L), Attr("local_window_size", -1L), Attr("scale", (float)(1.0 / Math.Sqrt(Hd))),
    ];

    private (string Cos, string Sin) RotaryCaches(GraphBuilder g, List<WeightSpec> w) =>
        (Weight(g, w, "w.cos_cache", [MaxPositions, Hd / 2], 0.5f, 0.2f),
         Weight(g, w, "w.sin_cache", [MaxPositions, Hd / 2], 0.5f, 0.2f));

    private string Linear(GraphBuilder g, List<WeightSpec> w, string x, string name, long input, long output, bool bias)
    {
        var y = g.Op("MatMul", [x, Weight(g, w, name, [input, output])]);
        return bias ? g.Op("Add", [y, Weight(g, w, name + "_bias", [output])]) : y;
    }

    private string Weight(GraphBuilder g, List<WeightSpec> w, string name, long[] shape, float mean = 0f, float std = 0.02f)
    {
        var existing = w.FirstOrDefault(x => x.Name == name);
        if (existing is not null) return existing.Name;
        var spec = new WeightSpec(name, shape, mean, std);
        if (EmbedWeights)
        {
            var rnd = new Random(name.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & 0x7fffffff);
            var data = new float[spec.Elements];
            for (int i = 0; i < data.Length; i++) data[i] = mean + std * (float)(rnd.NextDouble() * 2 - 1) * 1.7f;
            return g.InitializerFloat(name, shape, data);
        }
        w.Add(spec);
        return g.Input(name, Dtype, shape.Select(d => (Dim)d).ToArray());
    }

    /// <summary>Bytes of one element of <paramref name="type"/>.</summary>
    public static int ElementBytes(OnnxType type) => type switch
    {
        OnnxType.Float or OnnxType.Int32 => 4,
        OnnxType.Int64 => 8,
        OnnxType.Float16 or OnnxType.BFloat16 => 2,
        OnnxType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static OnnxType ParseDtype(string dtype) => dtype switch
    {
        "fp32" => OnnxType.Float,
        "fp16" => OnnxType.Float16,
        "bf16" => OnnxType.BFloat16,
        _ => throw new UserInputException($"--dtype: '{dtype}' is not one of fp32, fp16, bf16"),
    };

    public static string DtypeName(OnnxType type) => type switch
    {
        OnnxType.Float => "fp32",
        OnnxType.Float16 => "fp16",
        OnnxType.BFloat16 => "bf16",
        _ => type.ToString(),
    };
}
