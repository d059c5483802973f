using System.Globalization;
using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.IO.Catalog;
using RLMServing.Profiling.Calibration;
using RLMServing.Profiling.Traces;
using RLMServing.Tests.Profiling;
using Xunit;
using SharedData = RLMServing.Tests.Profiling.SharedData;
using TempDir = RLMServing.Tests.Traces.TempDir;
using TestImporters = RLMServing.Tests.Traces.TestImporters;

namespace RLMServing.Tests.Runs;

/// <summary>LLMServingSim's profile composed per iteration, checked against sums computed by hand from its CSV files.</summary>
public sealed class OperatorTableCompositionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Bundle(string gpu, string org, string model) =>
        Path.Combine(SharedData.GpuProfiles, "llmservingsim", gpu, org, model, "bf16");

    /// <summary>The CSV rows of one file of the bundle, as columns by name.</summary>
    private static List<Dictionary<string, string>> Csv(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines[0].Split(',');
        return lines.Skip(1).Where(l => l.Length > 0).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    private OperatorTables Tables(string bundle, string modelName, int tp, out ModelArchitecture model)
    {
        var parquet = Path.Combine(_dir.Path, "bundle.parquet");
        TestImporters.Registry.Get("llmservingsim-profile").Import(bundle, parquet, new RLMServing.IO.Traces.ImportOptions());
        var catalog = CatalogLoader.LoadDefault([]);
        model = catalog.Model(modelName);
        var rows = TraceReader.Read<OperatorRow>(parquet).ToList();
        var compute = rows.Where(r => r.Tp == tp && r.SourceOp is not ("skew" or "moe")).ToList();
        var moe = rows.Where(r => r.Tp == 1 && r.SourceOp == "moe").ToList();
        return OperatorComposer.LlmServingSimTables(compute, moe, model, catalog.Gpu("RTXPRO6000"), tp);
    }

    [SharedDataFact]
    public void DecodeStep_IsLayersTimesDenseOpsAndAttention_PlusHeadOncePerSequence()
    {
        var bundle = Bundle("RTXPRO6000", "meta-llama", "Llama-3.1-8B");
        var tables = Tables(bundle, "Llama-3.1-8B", 1, out var model);
        var cost = new OperatorTableCostModel(tables, new RooflineCostModel(model, CatalogLoader.LoadDefault([]).Gpu("RTXPRO6000"), 1, 0.6, 0.85, 0, 0));
        // By hand from tp1/*.csv: 128 decodes at KV 1024 each, a grid point of every file.
        double Dense(string op, int tokens) => D(Csv(Path.Combine(bundle, "tp1", "dense.csv")).Single(r => r["layer"] == op && r["tokens"] == tokens.ToString(CultureInfo.InvariantCulture))["time_us"]);
        double PerSeq(string op, int seqs) => D(Csv(Path.Combine(bundle, "tp1", "per_sequence.csv")).Single(r => r["layer"] == op && r["sequences"] == seqs.ToString(CultureInfo.InvariantCulture))["time_us"]);
        double attention = D(Csv(Path.Combine(bundle, "tp1", "attention.csv")).Single(r => r["prefill_chunk"] == "0" && r["kv_prefill"] == "0" && r["n_decode"] == "128" && r["kv_decode"] == "1024")["time_us"]);
        double layer = 2 * Dense("layernorm", 128) + Dense("qkv_proj", 128) + Dense("rotary_emb", 128) + attention + Dense("o_proj", 128)
            + Dense("gate_up_proj", 128) + Dense("act_fn", 128) + Dense("down_proj", 128);
        double expected = 32 * layer + Dense("embedding", 128) + Dense("final_layernorm", 128) + PerSeq("lm_head", 128) + PerSeq("sampler", 128);
        Assert.Equal(expected, cost.PredictUs(128, 0, 0, 128, 1024, 128), 6);
        Assert.Equal(expected / 1e6, cost.Decode(128, 128 * 1024).TimeS, 9);
    }

    [SharedDataFact]
    public void MixedStep_LooksUpAttentionAtSummedChunkAndContext_NotTheSumOfItsParts()
    {
        var bundle = Bundle("RTXPRO6000", "meta-llama", "Llama-3.1-8B");
        var tables = Tables(bundle, "Llama-3.1-8B", 1, out _);
        var cost = new OperatorTableCostModel(tables, null!);
        var att = Csv(Path.Combine(bundle, "tp1", "attention.csv"));
        double At(int pc, int kp, int nd, int kd) => D(att.Single(r => r["prefill_chunk"] == $"{pc}" && r["kv_prefill"] == $"{kp}" && r["n_decode"] == $"{nd}" && r["kv_decode"] == $"{kd}")["time_us"]);
        // Two chunks of 512 over 512 cached tokens each with 64 decodes at KV 1024: one lookup at (1024, 1024, 64, 1024).
        var both = cost.PredictUs(1024 + 64, 1024, 1024, 64, 1024, 66);
        var decodesOnly = cost.PredictUs(1024 + 64, 1024, 1024, 0, 0, 66);
        Assert.Equal(32 * (At(1024, 1024, 64, 1024) - At(1024, 1024, 0, 0)), both - decodesOnly, 6);
        // The measured mixed kernel is slower than its prefill and decode parts run apart.
        Assert.True(At(1024, 1024, 64, 1024) > At(1024, 1024, 0, 0) + At(0, 0, 64, 1024) * 1.2);
    }

    [SharedDataFact]
    public void BetweenMeasuredTokenCounts_DenseOpsInterpolateLinearly_AndAboveTheGridExtrapolate()
    {
        var s = new MeasuredSeries { X = [1, 2, 4], Us = [10, 12, 20] };
        Assert.Equal(16, OperatorTableCostModel.Lookup1D(s.X, s.Us, 3), 9);
        Assert.Equal(10, OperatorTableCostModel.Lookup1D(s.X, s.Us, 0.5), 9);
        Assert.Equal(28, OperatorTableCostModel.Lookup1D(s.X, s.Us, 6), 9);
    }

    [SharedDataFact]
    public void MoeBlock_IsLookedUpAtTokensAndTheExpertsABalancedGateActivates()
    {
        var bundle = Bundle("RTXPRO6000", "Qwen", "Qwen3-30B-A3B-Instruct-2507");
        var tables = Tables(bundle, "Qwen3-30B-A3B-Instruct-2507", 1, out var model);
        var moe = Csv(Path.Combine(bundle, "tp1", "moe.csv"));
        double Moe(int tokens, int experts) => D(moe.Single(r => r["tokens"] == $"{tokens}" && r["activated_experts"] == $"{experts}")["time_us"]);
        var withMoe = new OperatorTableCostModel(tables, null!);
        var withoutMoe = new OperatorTableCostModel(tables with { Moe = null }, null!);
        // 2 tokens × 8 experts each: 16 distinct experts; 64 tokens: all 128.
        Assert.Equal(16, model.ExpertsTouched(2));
        Assert.Equal(128, model.ExpertsTouched(64));
        Assert.Equal(48 * Moe(2, 16), withMoe.PredictUs(2, 0, 0, 2, 1024, 2) - withoutMoe.PredictUs(2, 0, 0, 2, 1024, 2), 6);
        Assert.Equal(48 * Moe(64, 128), withMoe.PredictUs(64, 0, 0, 64, 1024, 64) - withoutMoe.PredictUs(64, 0, 0, 64, 1024, 64), 6);
        // Two expert-parallel ranks: each activates half the experts for the same tokens (64 tokens reach both, k = 8).
        var ep2 = new OperatorTableCostModel(tables, null!, expertParallel: 2);
        Assert.Equal(48 * Moe(64, 64), ep2.PredictUs(64, 0, 0, 64, 1024, 64) - withoutMoe.PredictUs(64, 0, 0, 64, 1024, 64), 6);
    }
}
