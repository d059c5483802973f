using RLMServing.Cli;
using RLMServing.Cli.Commands;
using RLMServing.Profiling;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using RLMServing.Profiling.Traces;
using Xunit;
using Xunit.Abstractions;

namespace RLMServing.Tests.Profiling;

/// <summary>Timing tests must not share the two CI cores with other tests.</summary>
[CollectionDefinition("timing", DisableParallelization = true)]
public sealed class TimingCollection;

/// <summary>Runs <c>rlms profile --model tiny --device cpu --grid quick</c> once for the timing assertions.</summary>
public sealed class QuickProfileFixture : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("rlms-profile-").FullName;
    public int ExitCode { get; }
    public double Seconds { get; }

    public QuickProfileFixture()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        ExitCode = CliHost.Run(["profile", "--model", "tiny", "--device", "cpu", "--grid", "quick", "--out", Dir, "--no-progress"],
            [typeof(ProfileCommand)]);
        Seconds = sw.Elapsed.TotalSeconds;
    }

    public IList<OperatorRow> Operators => TraceReader.Read<OperatorRow>(Path.Combine(Dir, Profiler.OperatorsFile));
    public IList<IterationRow> Iterations => TraceReader.Read<IterationRow>(Path.Combine(Dir, Profiler.IterationsFile));

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

[Collection("timing")]
public sealed class ProfilerTests(QuickProfileFixture quick, ITestOutputHelper output) : IClassFixture<QuickProfileFixture>
{
    [Fact]
    public void QuickGrid_WritesRowsWithMedianAndSpread_InUnderTwoMinutes()
    {
        Assert.Equal(0, quick.ExitCode);
        output.WriteLine($"quick grid for tiny on CPU: {quick.Seconds:F1} s");
        Assert.True(quick.Seconds < 120, $"quick grid took {quick.Seconds:F0} s");
        var ops = quick.Operators;
        Assert.Equal(new[] { "attention", "harness_overhead", "layer", "lm_head", "mlp", "o_proj", "qkv_proj", "rmsnorm", "rotary" },
            ops.Select(r => r.Op).Distinct().Order());
        Assert.All(ops, r =>
        {
            Assert.True(r.TimeUsMedian > 0);
            Assert.True(r.TimeUsMin <= r.TimeUsMedian && r.TimeUsMedian <= r.TimeUsP90);
            Assert.NotNull(r.TimeUsStd);
            Assert.True(r.Reps >= 5);
            Assert.NotNull(r.Cv);
        });
        var meta = TraceReader.Metadata(Path.Combine(quick.Dir, Profiler.OperatorsFile));
        foreach (var key in new[] { TraceMetadata.Device, TraceMetadata.Ort, TraceMetadata.Dtype, TraceMetadata.Architecture, TraceMetadata.Host,
                     TraceMetadata.Date, TraceMetadata.Command })
            Assert.False(string.IsNullOrEmpty(meta[key]), key);
        Assert.Equal("1.31.0", meta[TraceMetadata.Ort]);
        Assert.Equal("fp32", meta[TraceMetadata.Dtype]);
    }

    [Fact]
    public void DecodeAttentionTime_GrowsWithContext()
    {
        var decode = quick.Operators.Where(r => r.Op == "attention" && r.Phase == "decode" && r.Skew == "uniform").ToList();
        foreach (var batch in new[] { 1, 4 })
        {
            var byContext = decode.Where(r => r.Batch == batch).OrderBy(r => r.DecodeContextMax).ToList();
            output.WriteLine(string.Join(", ", byContext.Select(r => $"b{batch} ctx {r.DecodeContextMax}: {r.TimeUsMedian:F1} us")));
            Assert.Equal(3, byContext.Count);
            Assert.True(byContext[2].TimeUsMedian > 2 * byContext[0].TimeUsMedian, "8192 tokens of context should cost well over 256");
            Assert.True(byContext[2].TimeUsMedian > byContext[1].TimeUsMedian);
        }
        // Skew: one long sequence among short ones reads far less KV than all long, and costs less.
        var b4 = decode.Single(r => r.Batch == 4 && r.DecodeContextMax == 8192);
        var skewed = quick.Operators.Single(r => r.Op == "attention" && r.Skew == "skewed");
        Assert.True(skewed.DecodeContextSum < b4.DecodeContextSum);
        Assert.True(skewed.TimeUsMedian < b4.TimeUsMedian);
    }

    [Fact]
    public void WholeLayer_CostsAboutTheSumOfItsParts()
    {
        var ops = quick.Operators;
        var layers = ops.Where(r => r.Op == "layer").ToList();
        Assert.Equal(2, layers.Count);
        foreach (var l in layers)
        {
            // Parts: 2 x rmsnorm + qkv_proj + attention (rotary inside) + o_proj + mlp, at the layer's shapes.
            OperatorRow Part(string op) => ops.Single(r => r.Op == op && r.Tokens == l.Tokens);
            var attention = ops.Single(r => r.Op == "attention" && r.Phase == l.Phase && r.Tokens == l.Tokens
                && r.PrefillContext == l.PrefillContext && r.DecodeContextSum == l.DecodeContextSum && r.Skew == l.Skew);
            var parts = new[] { Part("rmsnorm"), Part("rmsnorm"), Part("qkv_proj"), attention, Part("o_proj"), Part("mlp") };
            double byMin = l.TimeUsMin!.Value / parts.Sum(p => p.TimeUsMin!.Value);
            double byMedian = l.TimeUsMedian / parts.Sum(p => p.TimeUsMedian);
            output.WriteLine($"{l.Phase} layer: ratio by min {byMin:F3}, by median {byMedian:F3} ({l.Extra})");
            // Measured for tiny on the shared 2-core machine over repeated runs: by min 0.71-1.23, by median 0.49-1.30
            // (the layer adds Split and residual Adds, saves five session runs' fixed cost and lets ORT fuse the norms
            // into the residual Adds). On a loaded machine either statistic alone can stray (by min 2.1 seen at load
            // ~13), so the check is structural: a layer missing a part or counting one twice moves both out of range.
            Assert.True(byMin is >= 0.5 and <= 2.0 || byMedian is >= 0.5 and <= 2.0,
                $"{l.Phase} layer vs its parts: by min {byMin:F2}, by median {byMedian:F2}");
        }
    }

    [Fact]
    public void GenerationLoop_RowsCoverPrefillThenEveryDecodeStep()
    {
        var iters = quick.Iterations;
        foreach (var g in iters.GroupBy(r => r.Batch))
        {
            var steps = g.OrderBy(r => r.Step).ToList();
            Assert.Equal(17, steps.Count);
            Assert.Equal("prefill", steps[0].Phase);
            Assert.Equal(64, steps[0].Context);
            Assert.Equal(64 + 16, steps[^1].Context);
            Assert.All(steps.Skip(1), s => Assert.Equal(1, s.NewTokens));
            Assert.All(steps, s => Assert.Equal(g.Key * s.Context * SynthesisedGraphTests.Tiny.KvBytesPerToken, s.KvBytesComputed));
        }
    }

    [Fact]
    public void HarnessOverhead_IsSmallAgainstA100MicrosecondOperator()
    {
        var overhead = quick.Operators.Single(r => r.Op == "harness_overhead");
        output.WriteLine($"harness overhead (Identity graph, IO binding, sync): {overhead.TimeUsMedian:F2} us");
        Assert.True(overhead.TimeUsMedian < 5.0, $"overhead {overhead.TimeUsMedian} us is 5% or more of a 100 us operator");
    }
}

public sealed class GenerationLoopTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void KvMemory_GrowsByTheComputedBytesPerToken(int batch)
    {
        var tiny = SynthesisedGraphTests.Tiny;
        var graph = new TransformerGraphs(tiny, OnnxType.Float, 256).Model(tiny.Layers);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        using var s = new GraphSession(device, "model", graph.ModelBytes(), graph.Weights, OnnxType.Float);
        var sig = DecoderSignature.FromSession(s.Session, "tiny", graph.Weights.Select(w => w.Name).ToHashSet());
        Assert.Equal(tiny.KvBytesPerToken, sig.KvBytesPerToken);

        var steps = new GenerationLoop(s, sig, device, KvMode.Concat).RunOnce(new GenerationPoint(batch, 10, 8));
        Assert.Equal(9, steps.Count);
        Assert.Equal(batch * 10 * tiny.KvBytesPerToken, steps[0].KvBytesMeasured);
        for (int i = 1; i < steps.Count; i++)
            Assert.Equal(batch * tiny.KvBytesPerToken, steps[i].KvBytesMeasured - steps[i - 1].KvBytesMeasured);
        Assert.All(steps, st => Assert.True(st.TimeUs > 0));
    }

    [Fact]
    public void SharedBuffer_HoldsPromptPlusSteps()
    {
        var tiny = SynthesisedGraphTests.Tiny;
        var graph = new TransformerGraphs(tiny, OnnxType.Float, 256).Model(1);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        using var s = new GraphSession(device, "model", graph.ModelBytes(), graph.Weights, OnnxType.Float);
        var sig = DecoderSignature.FromSession(s.Session, "tiny", graph.Weights.Select(w => w.Name).ToHashSet());
        var steps = new GenerationLoop(s, sig, device, KvMode.Shared).RunOnce(new GenerationPoint(2, 12, 4));
        Assert.Equal(5, steps.Count);
        Assert.All(steps, st => Assert.Equal(2 * (12 + 4) * sig.KvBytesPerToken, st.KvBytesMeasured));
    }
}

public sealed class KernelTraceTests
{
    [Fact]
    public void KernelTrace_GivesPerNodeRowsForEveryConfiguration()
    {
        var dir = Directory.CreateTempSubdirectory("rlms-kernel-").FullName;
        try
        {
            var grid = ProfileGrid.Quick with { Tokens = [1, 32] };
            var options = new ProfileOptions("tiny", SynthesisedGraphTests.Tiny, null, DeviceSpec.Parse("cpu"), OnnxType.Float, grid, dir,
                KernelTrace: true, Groups: ["token_ops"], IntraOpThreads: 1, Policy: SamplingPolicy.Fast);
            var summary = new Profiler(options).Run();
            Assert.Empty(summary.Failures);
            var rows = TraceReader.Read<KernelRow>(Path.Combine(dir, Profiler.KernelsFile));
            Assert.Equal(5 * 2, rows.Select(r => (r.Graph, r.Config)).Distinct().Count());
            Assert.Contains(rows, r => r.Graph == "mlp" && r.OpType == "MatMul" && r.Config == "tokens=32" && r.DurUs >= 0);
            Assert.All(rows.Where(r => r.OpType != "model_run"), r => Assert.Equal("CPUExecutionProvider", r.Provider));
            Assert.Equal(5 * 2 * 3, rows.Count(r => r.OpType == "model_run"));
            Assert.Empty(Directory.GetFiles(dir, "ort_profile_*"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

public sealed class UserModelTests
{
    [Fact]
    public void ExportedDecoderFile_RunsThroughTheGenerationLoop()
    {
        var dir = Directory.CreateTempSubdirectory("rlms-user-").FullName;
        try
        {
            // A self-contained decoder in the GenAI layout (weights stored as initializers), as a user would export it.
            var tiny = SynthesisedGraphTests.Tiny;
            var model = new TransformerGraphs(tiny, OnnxType.Float, 512, embedWeights: true).Model(2);
            Assert.Empty(model.Weights);
            var file = Path.Combine(dir, "user-decoder.onnx");
            File.WriteAllBytes(file, model.ModelBytes());

            var outDir = Path.Combine(dir, "out");
            int rc = CliHost.Run(["profile", "--model", file, "--device", "cpu", "--grid", "quick", "--groups", "generation", "--out", outDir,
                "--no-progress", "--threads", "1"], [typeof(ProfileCommand)]);
            Assert.Equal(0, rc);
            var rows = TraceReader.Read<IterationRow>(Path.Combine(outDir, Profiler.IterationsFile));
            Assert.Equal(2 * 17, rows.Count);
            Assert.All(rows, r => Assert.Equal("concat", r.KvMode));
            Assert.All(rows, r => Assert.Equal(r.KvBytesComputed, r.KvBytesMeasured));
            Assert.Equal("user-decoder", rows[0].Model);
            Assert.StartsWith("onnx:", TraceReader.Metadata(Path.Combine(outDir, Profiler.IterationsFile))[TraceMetadata.Architecture]);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void FileWithoutTheDecoderLayout_IsAUserError()
    {
        var dir = Directory.CreateTempSubdirectory("rlms-user-").FullName;
        try
        {
            var g = new GraphBuilder("not-a-decoder");
            g.Op("Identity", [g.Input("x", OnnxType.Float, 1)], "y");
            g.Output("y", OnnxType.Float, 1);
            var file = Path.Combine(dir, "identity.onnx");
            File.WriteAllBytes(file, g.ToModelBytes());
            var stderr = new StringWriter();
            var old = Console.Error;
            Console.SetError(stderr);
            int rc;
            try
            {
                rc = CliHost.Run(["profile", "--model", file, "--groups", "generation", "--out", Path.Combine(dir, "o"), "--no-progress"],
                    [typeof(ProfileCommand)]);
            }
            finally
            {
                Console.SetError(old);
            }
            Assert.Equal(2, rc);
            Assert.Contains("input_ids", stderr.ToString());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

public sealed class ServingGenerationTests
{
    /// <summary>
    /// The serving engine's generation profile takes its repetitions round the grid; each point still gets one prefill
    /// row (every prompt of every kept repetition) and one row per decode step (one sample per kept repetition).
    /// </summary>
    [Fact]
    public void EveryPointGetsEveryRepetition()
    {
        var dir = Directory.CreateTempSubdirectory("rlms-serving-gen-").FullName;
        try
        {
            var grid = ProfileGrid.Quick with
            {
                Name = "test",
                Generation = [new GenerationPoint(1, 32, 8), new GenerationPoint(3, 48, 8)],
                GenerationReps = 4,
            };
            var options = new ProfileOptions("tiny", SynthesisedGraphTests.Tiny, null, DeviceSpec.Parse("cpu"), OnnxType.Float, grid, dir,
                KvMode: KvMode.Serving, Groups: ["generation"], IntraOpThreads: 1);
            var summary = new Profiler(options).Run();
            Assert.False(summary.Cancelled);
            var rows = TraceReader.Read<IterationRow>(Path.Combine(dir, Profiler.IterationsFile));
            foreach (var point in grid.Generation)
            {
                var mine = rows.Where(r => r.PromptTokens == point.Prompt).ToList();   // the two points have different prompts
                var prefill = Assert.Single(mine, r => r.Phase == "prefill");
                Assert.Equal(point.Batch * grid.GenerationReps, prefill.Reps);
                var decode = mine.Where(r => r.Phase == "decode").OrderBy(r => r.Step).ToList();
                Assert.Equal(Enumerable.Range(1, point.Steps), decode.Select(r => r.Step));
                Assert.All(decode, r => Assert.Equal(grid.GenerationReps, r.Reps));
                Assert.All(decode, r => Assert.Equal("serving", r.KvMode));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

public sealed class InterruptionTests
{
    [Fact]
    public void Cancelling_KeepsEveryRowWrittenBeforeIt()
    {
        var dir = Directory.CreateTempSubdirectory("rlms-cancel-").FullName;
        try
        {
            using var cts = new CancellationTokenSource();
            var options = new ProfileOptions("tiny", SynthesisedGraphTests.Tiny, null, DeviceSpec.Parse("cpu"), OnnxType.Float, ProfileGrid.Quick, dir,
                Groups: ["overhead", "token_ops"], IntraOpThreads: 1, Policy: SamplingPolicy.Fast);
            int seen = 0;
            var summary = new Profiler(options).Run(new Progress(p => { seen = p.Done; if (p.Done == 7) cts.Cancel(); }), cts.Token);
            Assert.True(summary.Cancelled);
            Assert.Equal(7, seen);
            var rows = TraceReader.Read<OperatorRow>(Path.Combine(dir, Profiler.OperatorsFile));
            Assert.Equal(7, rows.Count);
            Assert.True(File.Exists(Path.Combine(dir, Profiler.SummaryFile)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private sealed class Progress(Action<ProfileProgress> report) : IProgress<ProfileProgress>
    {
        public void Report(ProfileProgress value) => report(value);
    }
}
