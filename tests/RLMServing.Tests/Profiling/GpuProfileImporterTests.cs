using RLMServing.IO.Traces;
using RLMServing.Profiling.Importers;
using RLMServing.Profiling.Traces;
using RLMServing.Tests.Traces;
using Xunit;

namespace RLMServing.Tests.Profiling;

/// <summary>Finds ../shared/data from the test binary (or /work/shared); tests skip only when it is truly absent.</summary>
internal static class SharedData
{
    public static string? Root { get; } = Find();

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(Path.Combine(candidate, "gpu-profiles"))) return candidate;
        }
        return Directory.Exists("/work/shared/data/gpu-profiles") ? "/work/shared/data" : null;
    }

    public static string GpuProfiles => Path.Combine(Root!, "gpu-profiles");
}

/// <summary>A fact that is skipped, saying why, when the shared data folder is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute()
    {
        if (SharedData.Root is null) Skip = "shared/data (../shared relative to the repository) is not present";
    }
}

public sealed class GpuProfileImporterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rlms-import-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ITraceImporter Importer(string format)
    {
        return TestImporters.Registry.Get(format);
    }

    [SharedDataFact]
    public void VidurProfile_AllComputeAndNetworkRows_InMicroseconds()
    {
        var output = Path.Combine(_dir, "vidur.parquet");
        var result = Importer("vidur-profile").Import(Path.Combine(SharedData.GpuProfiles, "vidur"), output, new ImportOptions());

        // 145,578 non-empty op cells in 14 mlp.csv files (10 ops a line, 9 for phi-2) + 26,364 collective lines.
        Assert.Equal(171_942, result.Rows);
        Assert.Equal("operator", result.Schema);
        var rows = TraceReader.Read<OperatorRow>(output);
        Assert.Equal(91_029, rows.Count(r => r.Device == "a100"));
        Assert.Equal(54_549, rows.Count(r => r.Device == "h100"));
        Assert.Equal(26_364, rows.Count(r => r.Op is "all_reduce" or "send_recv"));

        // First data line of Llama-2-7b on A100: attn_pre_proj median 1.911 ms at 4096 tokens, TP1.
        var qkv = rows.First(r => r.Device == "a100" && r.Model == "meta-llama/Llama-2-7b-hf" && r.SourceOp == "attn_pre_proj");
        Assert.Equal("qkv_proj", qkv.Op);
        Assert.Equal(4096, qkv.Tokens);
        Assert.Equal(1, qkv.Tp);
        Assert.Equal(1911.0, qkv.TimeUsMedian, 6);
        Assert.Equal(1711.0, qkv.TimeUsMin!.Value, 6);

        // First all_reduce line of a100_dgx: 2 workers, 2048 bytes, median 0.043 ms.
        var ar = rows.First(r => r.Device == "a100_dgx" && r.Op == "all_reduce");
        Assert.Equal(2048, ar.SizeBytes);
        Assert.Equal(2, ar.Workers);
        Assert.Equal(43.0, ar.TimeUsMedian, 6);

        var meta = TraceReader.Metadata(output);
        Assert.Equal("us", meta[TraceMetadata.TimeUnit]);
        Assert.Equal(VidurProfileImporter.Commit, meta[TraceMetadata.SourceCommit]);
        Assert.Contains("ms->us", meta[TraceMetadata.UnitsConverted]);
    }

    [SharedDataFact]
    public void LlmServingSimProfile_DenseAttentionPerSequenceSkew_BothTp()
    {
        var bundle = Path.Combine(SharedData.GpuProfiles, "llmservingsim", "RTXPRO6000", "meta-llama", "Llama-3.1-8B", "bf16");
        var output = Path.Combine(_dir, "lss.parquet");
        var result = Importer("llmservingsim-profile").Import(bundle, output, new ImportOptions());

        // 67,642 measured rows plus the skew fit (meta.yaml skew_fit.enabled: true): per TP one default row and one
        // row per line of tpN/skew_fit.csv (3,982 and 3,966).
        Assert.Equal(67_642 + 3_983 + 3_967, result.Rows);
        var rows = TraceReader.Read<OperatorRow>(output);
        var tp1 = rows.Where(r => r.Tp == 1).ToList();
        Assert.Equal(1_368, tp1.Count(r => r.SourceOp is not ("attention" or "skew" or "skew_fit" or "lm_head" or "sampler")));
        Assert.Equal(80, tp1.Count(r => r.SourceOp is "lm_head" or "sampler"));
        Assert.Equal(19_364, tp1.Count(r => r.SourceOp == "attention"));
        Assert.Equal(13_009, tp1.Count(r => r.SourceOp == "skew"));
        Assert.Equal(3_983, tp1.Count(r => r.SourceOp == "skew_fit"));
        // meta.yaml: per_tp 1 alpha_default 0.0543 and the bucket axes; tp1/skew_fit.csv line 2: pc 0, n<=128, sr<=15%, kvB<=16k, kp=0, alpha 0.0328.
        var fitDefault = tp1.Single(r => r.SourceOp == "skew_fit" && r.Skew == "default");
        Assert.StartsWith("alpha=0.0543;n_bins=0,2,4,8,16,32,64,128,256,1000000;n_labels=n<=2,", fitDefault.Extra);
        var bucket = tp1.First(r => r.SourceOp == "skew_fit" && r.Skew != "default");
        Assert.Equal("pc=0|n<=128|sr<=15%|kvB<=16k|kp=0", bucket.Skew);
        Assert.Equal("alpha=0.0328;n_samples=4", bucket.Extra);
        Assert.Equal(0.0, bucket.TimeUsMedian);

        // attention.csv line 2: no prefill, 1 decode sequence at KV 16 -> 8.35233 µs (already µs, unchanged).
        var first = tp1.First(r => r.SourceOp == "attention");
        Assert.Equal("decode", first.Phase);
        Assert.Equal(1, first.DecodeSeqs);
        Assert.Equal(16, first.DecodeContextSum);
        Assert.Equal(8.35233, first.TimeUsMedian, 9);
        Assert.All(rows, r => Assert.Equal("NVIDIA RTX PRO 6000 Blackwell Server Edition", r.Device));

        var lmHead = tp1.First(r => r.Op == "lm_head");
        Assert.Equal(1, lmHead.Batch);
        Assert.Equal(714.006, lmHead.TimeUsMedian, 9);
    }

    [SharedDataFact]
    public void SplitwisePerf_TwoIterationRowsPerLine_MillisecondsToMicroseconds()
    {
        var output = Path.Combine(_dir, "splitwise.parquet");
        var result = Importer("splitwise-perf").Import(Path.Combine(SharedData.GpuProfiles, "splitwise", "perf_model.csv"), output, new ImportOptions());

        Assert.Equal(2 * 1_260, result.Rows);
        Assert.Equal("iteration", result.Schema);
        var rows = TraceReader.Read<IterationRow>(output);
        Assert.Equal(840, rows.Count(r => r.Device == "a100-80gb"));
        var prefill = rows[0];
        var decode = rows[1];
        Assert.Equal(("llama2-70b", 2, 1, 512L), (prefill.Model, prefill.Tp, prefill.Batch, prefill.PromptTokens));
        Assert.Equal(196_253.2191537321, prefill.TimeUsMedian, 6);
        Assert.Equal("decode", decode.Phase);
        Assert.Equal(54_879.51193752838, decode.TimeUsMedian, 6);
        Assert.Equal(512 + 64, decode.Context);
    }

    [SharedDataFact]
    public void DistServeProfile_FitsAndCapacity_CoefficientsInMicroseconds()
    {
        var output = Path.Combine(_dir, "distserve.parquet");
        var result = Importer("distserve-profile").Import(Path.Combine(SharedData.GpuProfiles, "distserve"), output, new ImportOptions());

        Assert.Equal(42 + 76, result.Rows);
        var rows = TraceReader.Read<CoefficientRow>(output);
        Assert.Equal(76, rows.Count(r => r.Kind == "kv_capacity"));
        var prefill = rows.Single(r => r.Engine == "distserve" && r.Model == "facebook/opt-13b" && r.Tp == 1 && r.Kind == "prefill");
        Assert.Equal(18_102.54647486372, prefill.A!.Value, 6);
        Assert.Equal(101.9122572698738, prefill.B!.Value, 9);
        var small = rows.Single(r => r.Engine == "distserve" && r.Model == "facebook/opt-13b" && r.Tp == 1 && r.Kind == "decoding_smallbs");
        Assert.Equal(95, small.Threshold);
    }

    [SharedDataFact]
    public void Limit_StopsAtTheRequestedRowCount()
    {
        var output = Path.Combine(_dir, "limited.parquet");
        var result = Importer("splitwise-perf").Import(Path.Combine(SharedData.GpuProfiles, "splitwise"), output, new ImportOptions(Limit: 10));
        Assert.Equal(10, result.Rows);
        Assert.Equal(10, TraceReader.Read<IterationRow>(output).Count);
    }

    [Fact]
    public void UnknownFormat_NamesTheGpuProfileFormats()
    {
        var e = Assert.Throws<UserInputException>(() => Importer("no-such-format"));
        Assert.Contains("vidur-profile", e.Message);
    }
}
