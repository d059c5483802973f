using FsCheck.Xunit;
using RLMServing.Costs;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Scenarios;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>cost_model.slowdown: the machine's speed over a run, as a factor on every priced iteration.</summary>
public class SlowdownTests
{
    [Fact]
    public void TheCurveIsPiecewiseLinearAndConstantOutsideItsKnots()
    {
        var s = new Slowdown([10, 20, 40], [1.0, 2.0, 0.5]);
        Assert.Equal(1.0, s.At(-5));
        Assert.Equal(1.0, s.At(10));
        Assert.Equal(1.5, s.At(15), 12);
        Assert.Equal(2.0, s.At(20));
        Assert.Equal(1.25, s.At(30), 12);
        Assert.Equal(0.5, s.At(40));
        Assert.Equal(0.5, s.At(1e9));
        // The mean over [10, 20] of a line from 1 to 2; over [0, 10] the constant before the first knot.
        Assert.Equal(1.5, s.MeanOver(10, 20), 12);
        Assert.Equal(1.0, s.MeanOver(0, 10), 12);
        Assert.Equal((10 * 1.5 + 20 * 1.25) / 30, s.MeanOver(10, 40), 12);
        Assert.Equal(3.0, Slowdown.Constant(3).At(123));
    }

    [Fact]
    public void BadKnotsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new Slowdown([], []));
        Assert.Throws<ArgumentException>(() => new Slowdown([0, 1], [1]));
        Assert.Throws<ArgumentException>(() => new Slowdown([1, 1], [1, 1]));
        Assert.Throws<ArgumentException>(() => new Slowdown([0], [0]));
        Assert.Throws<ArgumentException>(() => new Slowdown([0], [double.NaN]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Slowdown.FromSamples([(0, 1)], -1));
    }

    [Fact]
    public void SamplesAreAveragedIntoWindows()
    {
        (double, double)[] samples = [(0.5, 1.0), (1.5, 1.2), (2.1, 0.9), (2.9, 1.1), (7.0, 2.0)];
        var s = Slowdown.FromSamples(samples, 2);
        // Windows [0, 2), [2, 4), [6, 8): one knot each at the samples' mean time with their mean factor.
        Assert.Equal([1.0, 2.5, 7.0], s.TimesS.ToArray(), new Approx());
        Assert.Equal([1.1, 1.0, 2.0], s.Factors.ToArray(), new Approx());
        var raw = Slowdown.FromSamples([(1, 1.0), (1, 3.0), (2, 1.5)], 0);
        Assert.Equal([1.0, 2.0], raw.TimesS.ToArray());
        Assert.Equal([2.0, 1.5], raw.Factors.ToArray());
    }

    private sealed class Approx : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) < 1e-12;
        public int GetHashCode(double d) => 0;
    }

    private static string Scenario(string slowdown, int requests = 1, string extra = "")
    {
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, $$"""
            name: slow
            seed: 4
            hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
            model: tiny
            engine: ort
            cost_model: { kind: roofline{{slowdown}} }
            kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
            workload:
              requests: {{requests}}
              arrival: { process: poisson, rate: 50 }
              prompt_tokens: { dist: uniform, min: 100, max: 300 }
              output_tokens: { dist: uniform, min: 200, max: 400 }
            scheduler: { batching: continuous, max_num_seqs: 4, max_num_batched_tokens: 512 }
            {{extra}}
            """);
        return path;
    }

    private static PreparedRun Prepare(string path, params string[] sets) => TestScenarios.PrepareFile(path, sets);

    private static IReadOnlyList<Metrics.RequestRecord> Run(string path, params string[] sets) =>
        ScenarioRunner.Simulate(Prepare(path, sets), null).Requests;

    [Fact]
    public void AConstantFactorScalesEveryIterationOfALoneRequest()
    {
        var path = Scenario("");
        var plain = Assert.Single(Run(path));
        var slow = Assert.Single(Run(path, "cost_model.slowdown=2"));
        Assert.Equal(2 * plain.TtftMs!.Value, slow.TtftMs!.Value, 9);
        Assert.Equal(2 * plain.TpotMs!.Value, slow.TpotMs!.Value, 9);
        Assert.Equal(2 * plain.E2elMs!.Value, slow.E2elMs!.Value, 6);
        // Host work is machine work too: a constant factor scales it with the steps.
        var host = Assert.Single(Run(path, "cost_model.slowdown=2", "cost_model.host_overhead_us=50"));
        Assert.Equal(2 * (plain.TpotMs!.Value + 0.05), host.TpotMs!.Value, 9);
    }

    /// <summary>
    /// A slow spell that starts halfway through a lone request's decode: the tokens before it are priced as before,
    /// the ones after it three times as long.
    /// </summary>
    [Fact]
    public void AStepInTheCurveSlowsOnlyWhatRunsAfterIt()
    {
        var path = Scenario("");
        var plain = Assert.Single(Run(path));
        double startS = plain.ArrivalTimeS + plain.TtftMs!.Value / 1000;
        double endS = plain.ArrivalTimeS + plain.E2elMs!.Value / 1000;
        double switchS = (startS + endS) / 2;
        var csv = Path.Combine(Path.GetDirectoryName(path)!, "speed.csv");
        File.WriteAllText(csv, $"time_s,slowdown,note\n0,1,before\n{switchS:R},1,\n{switchS + 1e-9:R},3,spell\n");
        var slow = Assert.Single(Run(path, $"cost_model.slowdown.file={csv}", "cost_model.slowdown.window_s=0"));
        Assert.Equal(plain.TtftMs!.Value, slow.TtftMs!.Value, 9);
        double remainingMs = (endS - switchS) * 1000;
        double extraMs = slow.E2elMs!.Value - plain.E2elMs!.Value;
        // Two extra step-times for everything after the switch, give or take the step that straddles it.
        Assert.InRange(extraMs, 2 * remainingMs - 3 * plain.TpotMs!.Value, 2 * remainingMs + 3 * plain.TpotMs!.Value);
    }

    [Property(MaxTest = 60)]
    public void FastForwardEqualsSteppingUnderAVaryingSpeed(int seed)
    {
        var s = TestScenarios.Random(seed);
        var rng = new Random(seed);
        int knots = rng.Next(1, 12);
        double t = 0;
        var times = Enumerable.Range(0, knots).Select(_ => t += 0.05 + rng.NextDouble()).ToList();
        var factors = times.Select(_ => 0.5 + 2 * rng.NextDouble()).ToList();
        s = s with { CostModel = s.CostModel with { Slowdown = new Slowdown(times, factors) } };
        var gpu = TestScenarios.GpuFor(seed);
        var fast = TestScenarios.Run(s, gpu, check: false);
        var step = TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, gpu, check: true);
        TestScenarios.AssertIdentical(step, fast);
    }

    /// <summary>
    /// A queue builds in a slow spell and outlives it: a spell costs waiting requests more than a constant slowdown with
    /// the same average over the run.
    /// </summary>
    [Fact]
    public void ASlowSpellCostsMoreThanItsAverage()
    {
        // About 46% busy at full speed: stable at the spell's average (about 67%), not during the spell itself (115%).
        var path = Scenario("", requests: 60);
        const string rate = "workload.arrival.rate=2";
        var plain = Run(path, rate);
        double endS = plain.Max(r => r.ArrivalTimeS + r.E2elMs!.Value / 1000);
        var curve = WriteCurve(path, endS);
        var spell = Run(path, rate, $"cost_model.slowdown.file={curve}", "cost_model.slowdown.window_s=0");
        double average = Prepare(path, $"cost_model.slowdown.file={curve}", "cost_model.slowdown.window_s=0").Scenario.CostModel.Slowdown!.MeanOver(0, endS);
        Assert.InRange(average, 1.3, 1.7);
        var flat = Run(path, rate, FormattableString.Invariant($"cost_model.slowdown={average}"));
        Assert.Equal(plain.Count, spell.Count);
        Assert.True(spell.Average(r => r.TtftMs!.Value) > flat.Average(r => r.TtftMs!.Value),
            $"TTFT {spell.Average(r => r.TtftMs!.Value):F2} ms under the spell vs {flat.Average(r => r.TtftMs!.Value):F2} ms at its average {average:F3}");
        Assert.True(flat.Average(r => r.E2elMs!.Value) > plain.Average(r => r.E2elMs!.Value));
    }

    private static string WriteCurve(string scenario, double endS)
    {
        var csv = Path.Combine(Path.GetDirectoryName(scenario)!, "spell.csv");
        File.WriteAllText(csv, $"time_s,slowdown\n0,1\n{endS * 0.2:R},1\n{endS * 0.25:R},2.5\n{endS * 0.5:R},2.5\n{endS * 0.55:R},1\n");
        return csv;
    }

    [Fact]
    public async Task AParquetSeriesIsRead()
    {
        var dir = RlmsProcess.TempDir();
        var file = Path.Combine(dir, "visits.parquet");
        await Parquet.Serialization.ParquetSerializer.SerializeAsync(
            new[] { new Row { TimeS = 0.5, Slowdown = 1.2 }, new Row { TimeS = 3.0, Slowdown = 0.8 } }, file);
        Assert.Equal([(0.5, 1.2), (3.0, 0.8)], SlowdownFile.Read(file));
        var run = Prepare(Scenario($", slowdown: {{ file: {file} }}"));
        Assert.Equal([0.5, 3.0], run.Scenario.CostModel.Slowdown!.TimesS);
        Assert.Equal(file, run.Scenario.CostModel.SlowdownFile);
    }

    [Fact]
    public void AFileThatIsNotParquetIsOneLine()
    {
        var path = Scenario(", slowdown: { file: speed.parquet }");
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(path)!, "speed.parquet"), "time_s,slowdown\n0,1\n");
        var e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains("cost_model.slowdown.file", e.Message);
        Assert.Contains("not a readable Parquet file", e.Message);
    }

    private sealed class Row
    {
        [System.Text.Json.Serialization.JsonPropertyName("time_s")] public double TimeS { get; set; }
        [System.Text.Json.Serialization.JsonPropertyName("slowdown")] public double Slowdown { get; set; }
    }

    [Theory]
    [InlineData(", slowdown: 0", "cost_model.slowdown: must be greater than 0")]
    [InlineData(", slowdown: fast", "cost_model.slowdown: expected a number")]
    [InlineData(", slowdown: [1, 2]", "cost_model.slowdown: expected a number (a constant factor) or a mapping")]
    [InlineData(", slowdown: { window_s: 2 }", "cost_model.slowdown.file: is required")]
    [InlineData(", slowdown: { file: nowhere.csv }", "nowhere.csv: file not found")]
    [InlineData(", slowdown: { file: speed.csv, window_s: -1 }", "cost_model.slowdown.window_s: must not be negative")]
    [InlineData(", slowdown: { file: speed.csv, windows: 1 }", "cost_model.slowdown.windows: unknown key")]
    public void BadSlowdownsNameTheKey(string slowdown, string expected)
    {
        var path = Scenario(slowdown);
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(path)!, "speed.csv"), "time_s,slowdown\n0,1\n");
        var e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("time,slowdown\n0,1\n", "line 1: missing column 'time_s'")]
    [InlineData("time_s,slowdown\n0,1\n1,0\n", "line 3: slowdown 0 is not a finite factor > 0")]
    [InlineData("time_s,slowdown\n-1,1\n", "line 2: time_s -1 is not a finite time >= 0")]
    [InlineData("time_s,slowdown\nx,1\n", "line 2: time_s (empty or not a number)")]
    [InlineData("time_s,slowdown\n", "no rows")]
    [InlineData("", "the file is empty")]
    public void BadSeriesFilesNameTheFileAndLine(string text, string expected)
    {
        var path = Scenario(", slowdown: { file: speed.csv }");
        var csv = Path.Combine(Path.GetDirectoryName(path)!, "speed.csv");
        File.WriteAllText(csv, text);
        var e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains("cost_model.slowdown.file", e.Message);
        Assert.Contains(csv, e.Message);
        Assert.Contains(expected, e.Message);
    }

    /// <summary>
    /// Visits priced against the calibration: a visit that ran exactly k times the calibration's prediction of its steps
    /// has slowdown k, whatever its batch and prompt.
    /// </summary>
    [Fact]
    public async Task VisitsArePricedAgainstTheCalibration()
    {
        var dir = RlmsProcess.TempDir();
        var calPath = Path.Combine(RlmsProcess.RepoRoot(), "calibration", "cpu-tiny-tp1.json");
        var model = RLMServing.IO.Calibration.CalibrationStore.Read(calPath).ToModel();
        double Predicted(int b, int p, int first, int steps) =>
            Enumerable.Range(first, steps - first + 1).Average(s => model.PredictDecodeUs(b, (double)b * (p + s)));
        var visits = new[]
        {
            new RLMServing.Profiling.Replay.ProfileVisitRow { TimeS = 1, Batch = 1, PromptTokens = 32, FirstStep = 7, DecodeSteps = 48, MeanStepUs = 1.25 * Predicted(1, 32, 7, 48), Slowdown = 9 },
            new RLMServing.Profiling.Replay.ProfileVisitRow { TimeS = 5, Batch = 4, PromptTokens = 256, FirstStep = 1, DecodeSteps = 3, MeanStepUs = 0.8 * Predicted(4, 256, 1, 3), Slowdown = 9 },
        };
        var file = Path.Combine(dir, "profile-visits.parquet");
        await Parquet.Serialization.ParquetSerializer.SerializeAsync(visits, file);
        var priced = SlowdownFile.AgainstCalibration(file, model);
        Assert.Equal([1.0, 5.0], priced.Select(v => v.TimeS));
        Assert.Equal(1.25, priced[0].Factor, 9);
        Assert.Equal(0.8, priced[1].Factor, 9);

        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, File.ReadAllText(Scenario("")).Replace("{ kind: roofline }",
            $"{{ kind: calibrated, file: {calPath}, slowdown: {{ file: profile-visits.parquet, window_s: 0, reference: calibration }} }}"));
        Assert.Equal([1.25, 0.8], Prepare(path).Scenario.CostModel.Slowdown!.Factors.Select(f => Math.Round(f, 9)));
        // The file's own slowdown column, by default.
        Assert.Equal([9.0, 9.0], Prepare(path, "cost_model.slowdown.reference=file").Scenario.CostModel.Slowdown!.Factors);
    }

    [Fact]
    public void PricingAgainstACalibrationNeedsOneAndTheVisitColumns()
    {
        var path = Scenario(", slowdown: { file: speed.csv, reference: calibration }");
        var csv = Path.Combine(Path.GetDirectoryName(path)!, "speed.csv");
        File.WriteAllText(csv, "time_s,slowdown\n0,1\n");
        var e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains("cost_model.slowdown.reference: calibration needs cost_model.kind: calibrated", e.Message);
        var calPath = Path.Combine(RlmsProcess.RepoRoot(), "calibration", "cpu-tiny-tp1.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("kind: roofline", $"kind: calibrated, file: {calPath}"));
        e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains("line 1: missing column 'batch'", e.Message);
        File.WriteAllText(csv, "time_s,batch,prompt_tokens,first_step,decode_steps,mean_step_us\n0,2,32,7,5,100\n");
        e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains("line 2: decode_steps 5 is not a whole number >= 7", e.Message);
    }

    [Fact]
    public void ASimulatedRunRecordsItsSlowdown()
    {
        var path = Scenario(", slowdown: { file: speed.csv }");
        var csv = Path.Combine(Path.GetDirectoryName(path)!, "speed.csv");
        File.WriteAllText(csv, "time_s,slowdown\n0,1.1\n");
        var outDir = Path.Combine(Path.GetDirectoryName(path)!, "out");
        var o = RlmsProcess.Run("simulate", path, "--out", outDir, "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr + o.Stdout);
        var meta = RLMServing.IO.Traces.RequestTraceReader.ReadMetadata(Path.Combine(outDir, "requests.parquet"));
        Assert.Equal((csv, "2", "file"), (meta["rlms.slowdown"], meta["rlms.slowdown_window_s"], meta["rlms.slowdown_reference"]));
        o = RlmsProcess.Run("simulate", path, "--out", outDir, "--quiet", "--set", "cost_model.slowdown=1.5");
        Assert.True(o.ExitCode == 0, o.Stderr + o.Stdout);
        meta = RLMServing.IO.Traces.RequestTraceReader.ReadMetadata(Path.Combine(outDir, "requests.parquet"));
        Assert.Equal("1.5", meta["rlms.slowdown"]);
        Assert.False(meta.ContainsKey("rlms.slowdown_window_s"));
        // A bad series: one line naming the key and the file, exit 2, nothing written.
        File.WriteAllText(csv, "time_s,slowdown\n0,-1\n");
        var bad = Path.Combine(Path.GetDirectoryName(path)!, "bad");
        o = RlmsProcess.Run("simulate", path, "--out", bad, "--quiet");
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("cost_model.slowdown.file", o.Stderr);
        Assert.False(Directory.Exists(bad) && Directory.EnumerateFileSystemEntries(bad).Any());
    }
}
