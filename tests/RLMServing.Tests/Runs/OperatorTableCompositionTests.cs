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
        var compute = rows.Where(r => r.Tp == tp && r.SourceOp is not ("skew" or "skew_fit" or "moe")).ToList();
        var moe = rows.Where(r => r.Tp == 1 && r.SourceOp == "moe").ToList();
        var skewFit = rows.Where(r => r.Tp == tp && r.SourceOp == "skew_fit").ToList();
        return OperatorComposer.LlmServingSimTables(compute, moe, model, catalog.Gpu("RTXPRO6000"), tp, skewFit);
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

    /// <summary>
    /// LLMServingSim's skew correction (trace_generator._lookup_attention_with_skew): by hand from tp1/attention.csv
    /// and tp1/skew_fit.csv, 64 decodes of mean KV 1,024 whose longest is 4,096 and shortest 512 (skew rate 0.14)
    /// fall in bucket pc=0|n&lt;=64|sr&lt;=15%|kvB&lt;=4k|kp=0, alpha 0.0672; each layer's attention moves from the
    /// table at 1,024 by alpha of the way to the table at 4,096.
    /// </summary>
    [SharedDataFact]
    public void SkewedDecodeBatch_MovesAttentionByTheBucketsAlphaTowardsTheLongestKv()
    {
        var bundle = Bundle("RTXPRO6000", "meta-llama", "Llama-3.1-8B");
        var tables = Tables(bundle, "Llama-3.1-8B", 1, out _);
        Assert.NotNull(tables.AttentionSkew);
        var cost = new OperatorTableCostModel(tables, new RooflineCostModel(CatalogLoader.LoadDefault([]).Model("Llama-3.1-8B"), CatalogLoader.LoadDefault([]).Gpu("RTXPRO6000"), 1, 0.6, 0.85, 0, 0));
        Assert.True(cost.UsesKvSpread);
        var att = Csv(Path.Combine(bundle, "tp1", "attention.csv"));
        double At(int kd) => D(att.Single(r => r["prefill_chunk"] == "0" && r["kv_prefill"] == "0" && r["n_decode"] == "64" && r["kv_decode"] == $"{kd}")["time_us"]);
        double alpha = D(Csv(Path.Combine(bundle, "tp1", "skew_fit.csv")).Single(r => r["pc"] == "0" && r["n_label"] == "n<=64"
            && r["skew_rate_label"] == "sr<=15%" && r["kv_big_label"] == "kvB<=4k" && r["kp_label"] == "kp=0")["alpha"]);
        Assert.Equal(0.0672, alpha);
        double uniform = cost.Decode(64, 64 * 1024).TimeS, skewed = cost.Decode(64, 64 * 1024, new KvSpread(4096, 512)).TimeS;
        Assert.Equal(32 * alpha * (At(4096) - At(1024)) / 1e6, skewed - uniform, 9);
        Assert.Equal(skewed, cost.Iteration(BatchShape.DecodeOnly(64, 64 * 1024, new KvSpread(4096, 512))).TimeS, 12);
        // A uniform batch (longest = mean) and a single decode are the table's value.
        Assert.Equal(uniform, cost.Decode(64, 64 * 1024, new KvSpread(1024, 1024)).TimeS, 12);
        Assert.Equal(cost.Decode(1, 4096).TimeS, cost.Decode(1, 4096, new KvSpread(4096, 4096)).TimeS, 12);
        // A bucket the fit has no row for takes the TP's pooled alpha_default (meta.yaml: 0.0543).
        Assert.Equal(0.0543, tables.AttentionSkew!.AlphaDefault);
        // Wrappers pass the spread and the need for it on.
        Assert.True(new CudaGraphCostModel(cost, [1, 2, 4, 8]).UsesKvSpread);
        Assert.True(new HostOverheadCostModel(cost, 1e-4, overlapped: true).UsesKvSpread);
        Assert.Equal(skewed, new HostOverheadCostModel(cost, 0).Decode(64, 64 * 1024, new KvSpread(4096, 512)).TimeS, 12);
    }

    /// <summary>The RTX 4090 bundle ships skew_fit.csv but its meta.yaml says skew_fit.enabled: false, so LLMServingSim applies none; neither do we.</summary>
    [SharedDataFact]
    public void DisabledSkewFit_IsNotImported()
    {
        var tables = Tables(Bundle("RTX4090", "meta-llama", "Llama-3.1-8B"), "Llama-3.1-8B", 1, out _);
        Assert.Null(tables.AttentionSkew);
        Assert.False(new OperatorTableCostModel(tables, null!).UsesKvSpread);
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
    public void V0LayerProfile_NanosecondsBecomeMicroseconds_AttentionIsAPrefillAndLmHeadPerSequence()
    {
        var parquet = Path.Combine(_dir.Path, "v0.parquet");
        var input = Path.Combine(SharedData.GpuProfiles, "llmservingsim", "v0", "H100", "meta-llama", "Llama-3.1-8B");
        var result = TestImporters.Registry.Get("llmservingsim-v0-profile").Import(input, parquet, new RLMServing.IO.Traces.ImportOptions());
        Assert.Equal(2 * 15 * 2048, result.Rows);   // tp1 and tp2, 15 operators at 1..2048 tokens
        var rows = TraceReader.Read<OperatorRow>(parquet).ToList();
        Assert.All(rows, r => Assert.Equal(("H100", "meta-llama/Llama-3.1-8B", "llmservingsim-v0"), (r.Device, r.Model, r.Source)));
        var lmHead = rows.Single(r => r.Tp == 1 && r.SourceOp == "lm_head" && r.Tokens == 1);
        Assert.Equal((366.336, 1), (lmHead.TimeUsMedian, lmHead.Batch));   // tp1/layers.csv: lm_head,1,0,1,366336
        var attention = rows.Single(r => r.Tp == 1 && r.SourceOp == "attention" && r.Tokens == 98);
        Assert.Equal((98L, 0L, 0, 12.307), (attention.PrefillTokens!.Value, attention.PrefillContext!.Value, attention.DecodeSeqs!.Value, attention.TimeUsMedian));
    }

    /// <summary>Every shipped calibration with operator tables prices decodes positively, and longer contexts never cost less, up to 128k tokens.</summary>
    [Fact]
    public void ShippedOperatorTables_PriceDecodesPositively_AndMonotoneInContext()
    {
        var files = Directory.GetFiles(Path.Combine(RLMServing.Tests.Cli.RlmsProcess.RepoRoot(), "calibration"), "*.json")
            .Select(f => (File: f, Cal: RLMServing.IO.Calibration.CalibrationStore.Read(f))).Where(x => x.Cal.OperatorTables is not null).ToList();
        Assert.Equal(7, files.Count);
        foreach (var (f, cal) in files)
        {
            var cost = new OperatorTableCostModel(cal.OperatorTables!, null!);
            foreach (int batch in new[] { 1, 3, 16, 64, 256 })
            {
                double previous = 0;
                foreach (long context in new[] { 16L, 100, 1_000, 4_096, 16_384, 32_768, 65_536, 131_072 })
                {
                    double t = cost.PredictUs(batch, 0, 0, batch, context, batch);
                    Assert.True(t > 0 && double.IsFinite(t), $"{f}: decode {batch} x {context}");
                    Assert.True(t >= previous * (1 - 1e-9), $"{f}: decode {batch} x {context}: {t} < {previous}");
                    previous = t;
                }
            }
        }
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
