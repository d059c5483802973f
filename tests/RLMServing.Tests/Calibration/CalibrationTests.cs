using FsCheck.Xunit;
using RLMServing.Calibration;
using RLMServing.Costs;
using RLMServing.IO.Calibration;
using RLMServing.Profiling.Traces;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Calibration;

public class CalibrationTests
{
    /// <summary>Iterations priced by a known model: a grid of prefills and decodes like a profile's.</summary>
    private static List<CalibrationSample> Synthetic(IterationCoefficients truth, double noise = 0, int seed = 1)
    {
        var rng = new Random(seed);
        var samples = new List<CalibrationSample>();
        foreach (int batch in new[] { 1, 4, 16, 64 })
            foreach (long context in new[] { 512L, 2048, 8192, 32768 })
            {
                var d = IterationFeatures.Decode(batch, (double)batch * context);
                samples.Add(new(d, truth.PredictUs(d) * (1 + noise * (rng.NextDouble() - 0.5)), "decode"));
                var p = IterationFeatures.Prefill(Math.Min(batch, 8), context / 4);
                samples.Add(new(p, truth.PredictUs(p) * (1 + noise * (rng.NextDouble() - 0.5)), "prefill"));
            }
        return samples;
    }

    [Fact]
    public void CalibrationRecoversKnownParameters()
    {
        var truth = new IterationCoefficients(5000, 20, 150, 0.01, 0.001);
        var fit = IterationFitter.Fit(Synthetic(truth));
        var got = fit.Coefficients.Vector();
        var want = truth.Vector();
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], want[i] * 1e-6);
        Assert.True(fit.Quality.Mape < 1e-9);
        Assert.True(fit.Quality.LeaveOneOutMape < 1e-9);
        Assert.Empty(fit.Unidentified);
    }

    [Fact]
    public void NoisyMeasurementsGiveSmallErrorsAndHonestLeaveOneOut()
    {
        var truth = new IterationCoefficients(5000, 20, 150, 0.01, 0.001);
        var fit = IterationFitter.Fit(Synthetic(truth, noise: 0.10));
        Assert.InRange(fit.Quality.Mape, 0.005, 0.05);
        Assert.True(fit.Quality.LeaveOneOutMape >= fit.Quality.Mape);
    }

    [Fact]
    public void DecodeOnlyTracesLeaveThePrefillTermsUnidentified()
    {
        var truth = new IterationCoefficients(5000, 20, 0, 0.01, 0.001);
        var decodeOnly = Synthetic(truth).Where(s => s.Phase == "decode").ToList();
        var fit = IterationFitter.Fit(decodeOnly);
        Assert.Contains("per_attn_pair_us", fit.Unidentified);
        Assert.Contains("per_sampled_us", fit.Unidentified);
        Assert.Equal(0, fit.Coefficients.PerAttnPairUs);
        Assert.Equal(5000, fit.Coefficients.BaseUs, 1e-3);
    }

    /// <summary>Coefficients are never negative, so a prediction never falls when tokens or context grow.</summary>
    [Property(MaxTest = 100)]
    public void ExtrapolationIsMonotoneInTokensAndContext(int seed)
    {
        var rng = new Random(seed);
        var truth = new IterationCoefficients(rng.Next(100, 9000), rng.NextDouble() * 30, rng.NextDouble() * 200, rng.NextDouble() * 0.02, rng.NextDouble() * 0.002);
        var fit = IterationFitter.Fit(Synthetic(truth, noise: 0.3, seed: seed));
        Assert.All(fit.Coefficients.Vector(), c => Assert.True(c >= 0));
        var model = new CalibratedCostModel(fit.Coefficients, new RooflineCostModel(
            Simulation.TestScenarios.Tiny, Simulation.TestScenarios.SmallGpu(64), 1, 0.6, 0.85, 1, 10));
        double previous = 0;
        foreach (long context in new[] { 1_000L, 32_000, 128_000, 1_000_000 })
        {
            double t = model.Decode(64, 64 * context).TimeS;
            Assert.True(t >= previous);
            previous = t;
        }
        Assert.True(model.Iteration(new BatchShape(new[] { new PrefillChunk(8192, 100_000, true) }, 0, 0)).TimeS
            >= model.Iteration(new BatchShape(new[] { new PrefillChunk(8192, 0, true) }, 0, 0)).TimeS);
    }

    [Fact]
    public void DecodeFastPathEqualsTheGeneralShape()
    {
        var model = new CalibratedCostModel(new IterationCoefficients(5000, 20, 150, 0.01, 0.001), new RooflineCostModel(
            Simulation.TestScenarios.Tiny, Simulation.TestScenarios.SmallGpu(64), 1, 0.6, 0.85, 1, 10));
        Assert.Equal(model.Iteration(BatchShape.DecodeOnly(32, 100_000)), model.Decode(32, 100_000));
    }

    [Fact]
    public void ShippedCalibrationsLoadAndFitTheirOwnTracesWell()
    {
        var dir = Path.Combine(RlmsProcess.RepoRoot(), "calibration");
        var files = Directory.GetFiles(dir, "*.json");
        Assert.True(files.Length >= 50, $"{files.Length} shipped calibrations");
        foreach (var f in files)
        {
            var cal = CalibrationStore.Read(f);
            Assert.True(cal.Fit.Samples > 10, f);
            Assert.NotNull(cal.Fit.LeaveOneOutMape);
            Assert.True(cal.Fit.LeaveOneOutMape >= cal.Fit.Mape - 1e-12, f);
            Assert.NotNull(cal.Fit.InterpolatedLeaveOneOutMape);
            // Data a linear law fits to 15% interpolate to within 10% held out; Splitwise's Llama-2-70B TP2 prefills
            // (batch 64 faster than batch 16) fit no smooth law, and their held-out error says so (docs/calibration.md).
            Assert.InRange(cal.Fit.InterpolatedLeaveOneOutMape!.Value, 0, cal.Fit.LeaveOneOutMape < 0.15 ? 0.10 : 0.6);
            Assert.NotNull(cal.Residuals);
            Assert.All(cal.Coefficients.Values, v => Assert.True(v >= 0));
            Assert.Contains(Simulation.TestScenarios.Catalog.Models, m => m.Name == cal.Model);
            Assert.Equal(Simulation.TestScenarios.Catalog.Gpu(cal.Gpu).Name, cal.Gpu);
            Assert.Matches($"-tp{cal.TensorParallel}(-vidur|-vllm)?\\.json$", f);
            // Every calibration says which serving stack measured it.
            Assert.False(string.IsNullOrEmpty(cal.Engine) || string.IsNullOrEmpty(cal.EngineVersion), f);
        }
    }

    /// <summary>Every shipped calibration prices every shape positively, and more work never costs less — into the 128k-token reasoning regime.</summary>
    [Fact]
    public void ShippedCalibrationsGivePositiveMonotoneCosts()
    {
        foreach (var f in Directory.GetFiles(Path.Combine(RlmsProcess.RepoRoot(), "calibration"), "*.json"))
        {
            var model = CalibrationStore.Read(f).ToModel();
            foreach (int batch in new[] { 1, 3, 16, 64, 256, 512 })
            {
                double previous = 0;
                foreach (long context in new[] { 16L, 100, 1_000, 4_096, 16_384, 32_768, 65_536, 131_072 })
                {
                    double t = model.PredictDecodeUs(batch, (double)batch * context);
                    Assert.True(t > 0 && double.IsFinite(t), $"{f}: decode {batch} x {context}");
                    Assert.True(t >= previous * (1 - 1e-9) || context <= 16_384, $"{f}: decode {batch} x {context}: {t} < {previous}");
                    previous = t;
                }
            }
            double last = 0;
            foreach (int tokens in new[] { 8_192, 16_384, 32_768, 65_536, 131_072 })
            {
                double t = model.PredictUs(new BatchShape(new[] { new PrefillChunk(tokens, 0, true) }, 0, 0));
                Assert.True(t > 0 && t >= last * (1 - 1e-9), $"{f}: prefill {tokens}: {t} < {last}");
                last = t;
            }
        }
    }

    [Theory]
    [InlineData("traces/public/llmservingsim/rtxpro6000-llama-3.1-8b-bf16.parquet", "--tp 2 --model Llama-3.1-8B", "Llama-3.1-8B", "RTXPRO6000", 2)]
    [InlineData("traces/public/vidur/vidur-operators.parquet", "--trace-model meta-llama/Llama-2-7b-hf --trace-device h100 --tp 2", "Llama-2-7B", "H100-SXM-80G", 2)]
    [InlineData("traces/public/distserve/distserve-coefficients.parquet", "--trace-model facebook/opt-13b --tp 1 --engine distserve", "OPT-13B", "A100-SXM-80G", 1)]
    public void PublicProfilesCalibrateFromTheCommandLine(string trace, string options, string model, string gpu, int tp)
    {
        var root = RlmsProcess.RepoRoot();
        var cal = Path.Combine(RlmsProcess.TempDir(), "public.json");
        var o = RlmsProcess.RunIn(root, ["calibrate", trace, .. options.Split(' '), "--out", cal]);
        Assert.True(o.ExitCode == 0, o.Stderr);
        var written = CalibrationStore.Read(cal);
        Assert.Equal((model, gpu, tp), (written.Model, written.Gpu, written.TensorParallel));
        Assert.InRange(written.Fit.InterpolatedLeaveOneOutMape!.Value, 0, 0.10);
        Assert.Contains(trace, string.Join(" ", written.Provenance.Sources));
        Assert.StartsWith("rlms calibrate ", written.Provenance.Command);
        Assert.True(written.Grid.PrefillSamples > 0 && written.Grid.DecodeSamples > 0);
        if (trace.Contains("vidur"))
        {
            Assert.Contains("attention", written.Derived!.Keys);                   // not in the shared Vidur data
            Assert.Contains("h100_dgx", written.Derived["all_reduce_source"]);     // measured NCCL, single node
            Assert.Contains("mlp_up_proj", written.Fit.MapeByOperator!.Keys);
        }
        if (trace.Contains("llmservingsim"))
        {
            Assert.Contains("all_reduce", written.Derived!.Keys);                  // TP2 tables are one GPU's shard
            Assert.Contains("attention", written.Fit.MapeByOperator!.Keys);
        }
    }

    [Fact]
    public void FilesWithoutResidualsLoadAsTheRegressionAndBadTablesNameTheirKey()
    {
        var dir = RlmsProcess.TempDir();
        var source = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(RlmsProcess.RepoRoot(), "calibration", "h200-llama-3.1-8b-tp1.json")))!.AsObject();
        source.Remove("residuals");
        var old = Path.Combine(dir, "old.json");
        File.WriteAllText(old, source.ToJsonString());
        var cal = CalibrationStore.Read(old);
        Assert.Null(cal.Residuals);
        var shape = IterationFeatures.Decode(8, 8 * 4096.0);
        Assert.Equal(cal.ToCoefficients().PredictUs(shape), cal.ToModel().PredictUs(shape, "decode", 8, 4096));

        source["residuals"] = System.Text.Json.Nodes.JsonNode.Parse("""{"decode": {"batch": [1, 2], "length": [100], "ratio": [[1.0], [-2.0]]}}""");
        var bad = Path.Combine(dir, "bad.json");
        File.WriteAllText(bad, source.ToJsonString());
        var e = Assert.Throws<UserInputException>(() => CalibrationStore.Read(bad));
        Assert.Contains("residuals.decode", e.Message);
        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public void CalibrateRefusesMixedTraceKindsAndAmbiguousSelections()
    {
        var root = RlmsProcess.RepoRoot();
        var outFile = Path.Combine(RlmsProcess.TempDir(), "x.json");
        var mixed = RlmsProcess.RunIn(root, "calibrate", "traces/public/splitwise/splitwise-iterations.parquet",
            "traces/public/distserve/distserve-coefficients.parquet", "--out", outFile);
        Assert.Equal(2, mixed.ExitCode);
        Assert.Contains("cannot be calibrated together", mixed.Stderr);
        var ambiguous = RlmsProcess.RunIn(root, "calibrate", "traces/public/vidur/vidur-operators.parquet", "--out", outFile);
        Assert.Equal(2, ambiguous.ExitCode);
        Assert.Contains("--trace-model", ambiguous.Stderr);
        var badNetwork = RlmsProcess.RunIn(root, "calibrate", "traces/public/vidur/vidur-operators.parquet", "--trace-model", "meta-llama/Llama-2-7b-hf",
            "--trace-device", "a100", "--tp", "2", "--network", "nowhere", "--out", outFile);
        Assert.Equal(2, badNetwork.ExitCode);
        Assert.Contains("--network", badNetwork.Stderr);
        Assert.False(File.Exists(outFile));
    }

    [Fact]
    public void SimulateWarnsOnceWhenTheRunLeavesTheMeasuredGrid()
    {
        var root = RlmsProcess.RepoRoot();
        var dir = RlmsProcess.TempDir();
        // The RTX PRO 6000 calibration measured decode KV up to 16,384 tokens; these requests reach 40k and more.
        var sim = RlmsProcess.Run("simulate", Path.Combine(root, "scenarios", "calibrated-h200.yaml"), "--out", dir, "--quiet",
            "--set", "hardware.gpu=RTXPRO6000", "--set", "model=Llama-3.1-8B",
            "--set", $"cost_model.file={Path.Combine(root, "calibration", "rtxpro6000-llama-3.1-8b-tp1.json")}",
            "--set", "workload.requests=20", "--set", "workload.output_tokens={dist: constant, value: 40000}", "--set", "workload.max_output_tokens=65536");
        Assert.True(sim.ExitCode == 0, sim.Stderr);
        var lines = sim.Stderr.Split('\n').Where(l => l.Contains("tokens of context")).ToList();
        Assert.Single(lines);
        Assert.Contains("measured grid: batch 1–256 sequences, context 16–16384 tokens", lines[0]);
        var summary = File.ReadAllText(Path.Combine(dir, "calibrated-ort", "summary.json"));
        Assert.Contains("calibration_warnings", summary);
    }

    [Fact]
    public void CalibrateThenSimulateFromTheCommandLine()
    {
        var root = RlmsProcess.RepoRoot();
        var dir = RlmsProcess.TempDir();
        var cal = Path.Combine(dir, "h200-7b.json");
        var o = RlmsProcess.RunIn(root, "calibrate", "traces/h200/DeepSeek-R1-Distill-Qwen-7B", "--gpu", "H200-SXM-141G", "--out", cal);
        Assert.True(o.ExitCode == 0, o.Stderr);
        var written = CalibrationStore.Read(cal);
        Assert.Equal("DeepSeek-R1-Distill-Qwen-7B", written.Model);
        Assert.InRange(written.Fit.Mape, 0, 0.10);

        var sim = RlmsProcess.Run("simulate", Path.Combine(root, "scenarios", "calibrated-h200.yaml"), "--out", Path.Combine(dir, "out"),
            "--set", $"cost_model.file={cal}", "--set", "workload.requests=100", "--quiet");
        Assert.True(sim.ExitCode == 0, sim.Stderr);

        // A calibration for another model or TP degree is refused, naming the key.
        var wrong = RlmsProcess.Run("simulate", Path.Combine(root, "scenarios", "calibrated-h200.yaml"), "--out", Path.Combine(dir, "bad"),
            "--set", "model=Llama-3.1-8B", "--quiet");
        Assert.Equal(2, wrong.ExitCode);
        Assert.Contains("cost_model.file", wrong.Stderr);
        Assert.Contains("calibrated for model", wrong.Stderr);
    }

    /// <summary>
    /// The shipped CPU serving-engine profile (18 loops: one prefill row and 48 decode steps each): its warm-up decode
    /// steps are left out, and --statistic picks which statistic of the repetitions is fitted — the interpolated model
    /// reproduces that statistic exactly at a measured point.
    /// </summary>
    [Fact]
    public void CalibrateLeavesOutWarmUpStepsAndFitsTheChosenStatistic()
    {
        var root = RlmsProcess.RepoRoot();
        var trace = Path.Combine(root, "traces", "cpu", "tiny-serving-rounds-2026-11-28", "profile", "iterations.parquet");
        var rows = TraceReader.Read<IterationRow>(trace);
        int loops = rows.Count(r => r.Phase == "prefill");
        Assert.Equal(18, loops);
        Assert.All(rows, r => Assert.Equal("serving", r.KvMode));
        var dir = RlmsProcess.TempDir();
        var point = rows.First(r => r.Phase == "decode" && r.Batch == 1 && r.PromptTokens == 256 && r.Step == 20);
        Assert.NotEqual(point.TimeUsMedian, point.TimeUsMean!.Value, 3);
        foreach (var (statistic, expected) in new[] { ("median", point.TimeUsMedian), ("mean", point.TimeUsMean!.Value) })
        {
            var cal = Path.Combine(dir, $"{statistic}.json");
            var o = RlmsProcess.Run("calibrate", trace, "--gpu", "CPU", "--statistic", statistic, "--out", cal);
            Assert.True(o.ExitCode == 0, o.Stderr);
            var file = CalibrationStore.Read(cal);
            Assert.Equal(rows.Count - loops * global::RLMServing.Profiling.Calibration.CalibrationBuilder.ServingWarmUpSteps, file.Fit.Samples);
            Assert.Equal(expected, file.ToModel().PredictDecodeUs(1, point.Context), expected * 1e-6);
        }
        var bad = RlmsProcess.Run("calibrate", trace, "--gpu", "CPU", "--statistic", "p90", "--out", Path.Combine(dir, "bad.json"));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--statistic", bad.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "bad.json")));
        // Operator traces carry per-configuration statistics of another kind: only iteration traces fit by the mean.
        var ops = RlmsProcess.Run("calibrate", Path.Combine(root, "traces", "public", "vidur", "vidur-operators.parquet"), "--statistic", "mean",
            "--out", Path.Combine(dir, "ops.json"));
        Assert.Equal(2, ops.ExitCode);
        Assert.Contains("only iteration traces", ops.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "ops.json")));
    }
}
