using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using RLMServing.Profiling.Onnx;

namespace RLMServing.Profiling.Runtime;

/// <summary>One layer's KV inputs and outputs in the GenAI / Optimum layout.</summary>
public sealed record KvLayer(string PastKey, string PastValue, string PresentKey, string PresentValue);

/// <summary>
/// The inputs and outputs of an exported decoder as ONNX Runtime GenAI and Optimum write them:
/// input_ids, attention_mask, position_ids, past_key_values.{i}.key/value in; logits, present.{i}.key/value out.
/// <see cref="NextToken"/> is an optional int64 [batch, 1] output of on-device greedy sampling (our synthesised models
/// have it; exported models usually do not).
/// </summary>
public sealed partial record DecoderSignature(
    string InputIds,
    string? AttentionMask,
    string? PositionIds,
    string Logits,
    IReadOnlyList<KvLayer> Layers,
    int KvHeads,
    int HeadDim,
    OnnxType KvType,
    int? Vocab,
    string? NextToken = null)
{
    /// <summary>KV bytes one token adds across all layers (K and V).</summary>
    public long KvBytesPerToken => 2L * Layers.Count * KvHeads * HeadDim * TransformerGraphs.ElementBytes(KvType);

    [GeneratedRegex(@"^past_key_values\.(\d+)\.(key|value)$")]
    private static partial Regex PastName();

    /// <param name="weights">Inputs that are weights bound by the runner (synthesised models), not part of the layout.</param>
    public static DecoderSignature FromSession(InferenceSession session, string where, IReadOnlySet<string>? weights = null)
    {
        var inputs = session.InputMetadata;
        var outputs = session.OutputMetadata;
        if (!inputs.ContainsKey("input_ids"))
            throw new UserInputException($"{where}: the model has no 'input_ids' input (inputs: {string.Join(", ", inputs.Keys)})");
        if (!outputs.ContainsKey("logits"))
            throw new UserInputException($"{where}: the model has no 'logits' output (outputs: {string.Join(", ", outputs.Keys)})");
        var known = new HashSet<string>(StringComparer.Ordinal) { "input_ids", "attention_mask", "position_ids" };
        if (weights is not null) known.UnionWith(weights);
        var layers = new SortedDictionary<int, (string? K, string? V)>();
        foreach (var name in inputs.Keys)
        {
            var m = PastName().Match(name);
            if (!m.Success) continue;
            int i = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            var cur = layers.GetValueOrDefault(i);
            layers[i] = m.Groups[2].Value == "key" ? (name, cur.V) : (cur.K, name);
            known.Add(name);
        }
        var unknown = inputs.Keys.Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new UserInputException($"{where}: unsupported inputs {string.Join(", ", unknown)}; expected the GenAI/Optimum decoder layout " +
                "(input_ids, attention_mask, position_ids, past_key_values.N.key/value)");
        if (layers.Count == 0)
            throw new UserInputException($"{where}: no past_key_values.N.key/value inputs; only decoders with a KV cache can be profiled");

        var kv = new List<KvLayer>();
        foreach (var (i, (k, v)) in layers)
        {
            if (k is null || v is null) throw new UserInputException($"{where}: layer {i} lacks its past key or value input");
            string pk = $"present.{i}.key", pv = $"present.{i}.value";
            if (!outputs.ContainsKey(pk) || !outputs.ContainsKey(pv))
                throw new UserInputException($"{where}: layer {i} has no '{pk}'/'{pv}' outputs");
            kv.Add(new KvLayer(k, v, pk, pv));
        }
        var meta = inputs[kv[0].PastKey];
        var dims = meta.Dimensions;
        if (dims.Length != 4 || dims[1] <= 0 || dims[3] <= 0)
            throw new UserInputException($"{where}: '{kv[0].PastKey}' should be [batch, kv_heads, seq, head_dim] with fixed heads and head_dim");
        var type = (OnnxType)(int)meta.ElementDataType;
        var logitsDims = outputs["logits"].Dimensions;
        int? vocab = logitsDims.Length == 3 && logitsDims[2] > 0 ? logitsDims[2] : null;
        return new DecoderSignature("input_ids", inputs.ContainsKey("attention_mask") ? "attention_mask" : null,
            inputs.ContainsKey("position_ids") ? "position_ids" : null, "logits", kv, dims[1], dims[3], type, vocab,
            outputs.ContainsKey("next_token") ? "next_token" : null);
    }
}
