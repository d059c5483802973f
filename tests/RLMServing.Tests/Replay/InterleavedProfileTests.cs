using System.Diagnostics;
using System.Text.Json;
using RLMServing.IO.Calibration;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Profiling;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Profiling.Traces;
using RLMServing.Simulation;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Replay;

/// <summary>rlms replay --interleave-profile: the serving engine profiled in the replay's idle moments, off its record.</summary>
// Waits on the wall clock to the millisecond: runs alone with the other timing tests, where load from parallel tests cannot deschedule it.
[Collection("timing")]
public class InterleavedProfileTests
{
    /// <summary>Four small generation points (12 decode steps each, so some survive calibration's warm-up rule).</summary>
    private static readonly ProfileGrid Grid = ProfileGrid.Quick with
    {
        Name = "test",
        Generation = [new GenerationPoint(1, 16, 12), new GenerationPoint(2, 32, 12), new GenerationPoint(1, 64, 12), new GenerationPoint(3, 24, 12),
            new GenerationPoint(8, 16, 12)],
    };

    /// <summary>Sparse arrivals (idle moments between most requests), replayed on the CPU clock (idle waits are jumps).</summary>
    private static PreparedRun Sparse()
    {
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, """
            name: sparse
            seed: 11
            hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
            model: tiny
            cost_model: { kind: roofline }
            kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
            workload:
              requests: 10
              arrival: { process: poisson, rate: 2 }
              prompt_tokens: { dist: uniform, min: 8, max: 48 }
              output_tokens: { dist: uniform, min: 20, max: 60 }
            scheduler: { batching: continuous, max_num_seqs: 3, max_num_batched_tokens: 64 }
            """);
        return ScenarioRunner.Prepare(ScenarioLoader.Load(path), CatalogLoader.LoadDefault()).Single();
    }

    private static ReplayResult Replay(PreparedRun run, double share = 0.5)
    {
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        return ReplayRunner.Run(run, null, device, OnnxType.Float, clock: EngineClockKind.Cpu, checkInvariants: true,
            interleave: new InterleaveOptions(Grid, share));
    }

    [Fact]
    public void ProfileRunsInIdleMomentsAndLeavesTheReplaysRecordAlone()
    {
        var run = Sparse();
        var r = Replay(run);
        var p = Assert.IsType<InterleavedProfile>(r.Profile);

        // The replay's record holds its own iterations only: numbered without gaps, and the tokens they generated are
        // exactly the requests' outputs (a profile iteration left behind would add its batch's tokens).
        Assert.Equal(Enumerable.Range(0, r.Iterations.Count).Select(i => (long)i), r.Iterations.Select(i => i.Iteration));
        Assert.Equal(r.Result.Requests.Sum(q => (long)q.OutputTokens), r.Iterations.Sum(i => (long)i.TokensGenerated));
        Assert.All(r.Iterations, i => Assert.InRange(i.DecodeCount, 0, 3));
        foreach (var q in r.Result.Requests) Assert.True(q.FirstScheduledTimeS >= q.ArrivalTimeS);

        // Points that fit max_num_seqs 3 (not the batch-8 one), each with its prefill and decode rows, at least twice.
        Assert.Equal(4, p.Points);
        Assert.DoesNotContain(p.Rows, x => x.Batch == 8);
        foreach (var point in Grid.Generation.Where(g => g.Batch <= 3))
        {
            var prefill = Assert.Single(p.Rows, x => x.Phase == "prefill" && x.PromptTokens == point.Prompt);
            Assert.Equal(1, prefill.Batch);
            Assert.True(prefill.Reps >= 2 * point.Batch, $"prefill of {point}: {prefill.Reps} samples");
            var decodes = p.Rows.Where(x => x.Phase == "decode" && x.Batch == point.Batch && x.PromptTokens == point.Prompt).OrderBy(x => x.Step).ToList();
            Assert.Equal(Enumerable.Range(1, point.Steps), decodes.Select(x => x.Step));
            Assert.All(decodes, x => Assert.Equal(point.Prompt + x.Step, x.Context));
            Assert.All(decodes, x => Assert.True(x.Reps >= 2 && x.TimeUsMean > 0));
            Assert.All(p.Rows, x => Assert.Equal("serving", x.KvMode));
        }

        // Some ran while the replay was idle (not only after it), and the share was honoured.
        Assert.True(p.Sessions >= 2, $"{p.Sessions} idle moments");
        Assert.True(p.ProfileS >= 0.5 * p.BusyS, $"profile {p.ProfileS:F3} s for {p.BusyS:F3} s busy");
        double busy = r.Iterations.Sum(i => i.StepTimeMs) / 1000;
        Assert.Equal(busy, p.BusyS, 3);

        // Every kept visit is time-stamped on the replay's clock, in order, and each point's speeds average to 1.
        int kept = Grid.Generation.Where(g => g.Batch <= 3).Sum(g => p.Rows.Single(x => x.Phase == "prefill" && x.PromptTokens == g.Prompt).Reps!.Value / g.Batch);
        Assert.Equal(kept, p.Visits.Count);
        Assert.True(p.Visits.Zip(p.Visits.Skip(1)).All(v => v.Second.TimeS >= v.First.TimeS));
        // Visits in the run's idle moments carry their moment; the top-up after the run carries the run's end.
        double lastEnd = r.Iterations.Max(i => i.StartTimeS + i.StepTimeMs / 1000);
        Assert.True(p.Visits.Count(v => v.TimeS <= lastEnd) > 0, "some visits ran inside the replay");
        Assert.All(p.Visits, v => Assert.True(v.TimeS >= 0));
        Assert.All(p.Visits, v => Assert.True(v.MeanStepUs > 0 && v.DecodeSteps == 12 && v.FirstStep == ServingProfile.WarmUpSteps + 1));
        foreach (var g in p.Visits.GroupBy(v => (v.Batch, v.PromptTokens)))
            Assert.Equal(1.0, g.Average(v => v.Slowdown), 9);
    }

    /// <summary>
    /// An idle wait ends at the arrival it waits for, however long the profile run in it took: the replay's timeline
    /// does not see the profile (on the CPU clock the wait is a jump; here the profile takes fifty times the busy time).
    /// </summary>
    [Theory]
    [InlineData(EngineClockKind.Cpu)]
    [InlineData(EngineClockKind.Wall)]
    public void AnIdleWaitWithProfileWorkStillEndsAtTheArrival(EngineClockKind clock)
    {
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        using var engine = new OrtServingEngine(device, CatalogLoader.LoadDefault().Model("tiny"), OnnxType.Float, 3, 128, clock: clock);
        var points = InterleavedProfiler.Fitting(Grid, 3);
        var profiler = new InterleavedProfiler(engine, new InterleaveOptions(Grid, Share: 50), points);
        engine.StartClock();
        profiler.Execute([new ChunkWork(1, 48, 0, true)], []);
        for (int s = 0; s < 20; s++) profiler.Execute([], [new DecodeWork(1, 48 + s)]);
        profiler.Release(1, finished: true);
        double busy = profiler.BusyS, now = profiler.NowS, arrival = now + 0.001;
        Assert.Equal(engine.Iterations.Sum(i => i.EndS - i.StartS), busy, 9);
        profiler.WaitUntil(arrival);
        // The CPU clock jumps to the arrival; the wall clock sleeps and spins its last millisecond there (a loaded test
        // machine may deschedule it for a few milliseconds; the profile took at least 50 times the 21 steps' time).
        Assert.InRange(profiler.NowS, arrival, arrival + (clock == EngineClockKind.Cpu ? 0.0005 : 0.05));
        Assert.Equal(1, profiler.Sessions);
        // Relative to the steps' own time only: an absolute floor depends on the machine's speed and load.
        Assert.True(profiler.ProfileS >= 50 * busy && profiler.ProfileS > 0, $"profile {profiler.ProfileS:F4} s for {busy:F4} s busy");
        Assert.Equal(21, engine.Iterations.Count);
        // Waiting with a request holding a slot runs nothing.
        profiler.Execute([new ChunkWork(2, 16, 0, true)], []);
        double before = profiler.ProfileS;
        profiler.WaitUntil(profiler.NowS + 0.001);
        Assert.Equal(before, profiler.ProfileS);
        Assert.Equal(1, profiler.Sessions);
    }

    [Fact]
    public void AsideDropsItsIterationsAndTakesItsTimeOffTheClock()
    {
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        var arch = CatalogLoader.LoadDefault().Model("tiny");
        using var engine = new OrtServingEngine(device, arch, OnnxType.Float, 3, 128);
        engine.StartClock();
        engine.Execute([new ChunkWork(1, 16, 0, true)], []);
        int count = engine.Iterations.Count;
        double before = engine.NowS;
        var sw = Stopwatch.StartNew();
        Assert.Throws<InvalidOperationException>(() => engine.Aside(() => { }));   // request 1 holds a slot
        engine.Release(1, finished: true);
        long id = -1;
        double spent = engine.Aside(() =>
        {
            ServingProfile.RunPoint(engine, new GenerationPoint(2, 32, 8), () => id--, null, CancellationToken.None);
            Thread.Sleep(50);
        });
        Assert.True(spent >= 0.05 && sw.Elapsed.TotalSeconds >= spent, $"{spent}");
        Assert.Equal(count, engine.Iterations.Count);
        Assert.InRange(engine.NowS - before, 0, 0.01);
        Assert.True(engine.AllSlotsFree);
        engine.Execute([new ChunkWork(2, 16, 0, true)], []);
        Assert.Equal(count, engine.Iterations[^1].Index);
        Assert.True(engine.Iterations[^1].StartS >= before);
    }

    [Fact]
    public void ServingProfileRowsCarryEveryStepWithItsContext()
    {
        var s = new ServingPointSamples(new GenerationPoint(2, 100, 3));
        s.PrefillUs.AddRange([900, 1000, 1100, 1000]);
        s.StepUs[0].AddRange([210, 190]);
        s.StepUs[1].AddRange([200, 200]);
        var who = new ServingProfileIdentity("cpu-x", "tiny", "fp32", 4, 1024, 5000);
        var rows = ServingProfile.Rows(s, who, 0.1);
        Assert.Equal(3, rows.Count);   // step 3 has no samples: no row
        Assert.Equal(("prefill", 1, 100L, 100L, 1000.0), (rows[0].Phase, rows[0].Batch, rows[0].NewTokens, rows[0].Context, rows[0].TimeUsMedian));
        Assert.Equal(("decode", 2, 1L, 101L, 200.0, 2), (rows[1].Phase, rows[1].Batch, rows[1].NewTokens, rows[1].Context, rows[1].TimeUsMean!.Value, rows[1].Reps!.Value));
        Assert.Equal((2, 102L, 2 * 102L * 1024), (rows[2].Step, rows[2].Context, rows[2].KvBytesComputed!.Value));
        Assert.All(rows, x => Assert.Equal(("rlms-profile", "cpu-x", 4, "weight_bytes=5000"), (x.Source, x.Device, x.Layers, x.Extra)));
        Assert.Empty(ServingProfile.Rows(new ServingPointSamples(new GenerationPoint(1, 8, 2)), who, 0.1));
    }

    [Fact]
    public async Task CalibrateReadsTheProfileBesideAReplay()
    {
        var run = Sparse();
        var r = Replay(run);
        var dir = RlmsProcess.TempDir();
        await ReplayRunner.WriteAsync(dir, r, ReplayRunner.Metadata(run, null, "rlms replay test", r, 1));
        var file = Path.Combine(dir, ReplayRunner.ProfileFile);
        var meta = TraceReader.Metadata(file);
        Assert.Equal(("iteration", "rlms-profile", "interleaved", "cpu", "test"),
            (meta["rlms.schema"], meta["rlms.source"], meta["rlms.profile_mode"], meta["rlms.clock"], meta["rlms.grid"]));
        Assert.Equal("replay_iteration", TraceReader.Metadata(Path.Combine(dir, "iterations.parquet"))["rlms.schema"]);
        var visits = TraceReader.Read<ProfileVisitRow>(Path.Combine(dir, ReplayRunner.VisitsFile));
        Assert.Equal(r.Profile!.Visits.Count, visits.Count);
        Assert.Equal("profile_visit", TraceReader.Metadata(Path.Combine(dir, ReplayRunner.VisitsFile))["rlms.schema"]);
        // The visits are a machine-speed series for cost_model.slowdown, as they are or priced against a calibration.
        Assert.Equal(visits.Select(v => (v.TimeS, v.Slowdown)), SlowdownFile.Read(Path.Combine(dir, ReplayRunner.VisitsFile)));

        // idle_ms is the part of each gap the engine waited for an arrival; the rest is its host work.
        var iterations = TraceReader.Read<ReplayIterationRow>(Path.Combine(dir, "iterations.parquet"));
        Assert.All(iterations, i => Assert.InRange(i.IdleMs, 0, i.GapMs + 1e-9));
        Assert.True(iterations.Sum(i => i.IdleMs) > 0.5, "sparse arrivals: the engine waited");
        var hostUs = iterations.Skip(1).Select(i => Math.Max(0, i.GapMs - i.IdleMs) * 1000).ToList();
        Assert.True(hostUs.Sum() < 0.5 * iterations.Sum(i => i.StepTimeMs) * 1000, $"host gaps {hostUs.Sum():F0} µs");

        var cal = Path.Combine(dir, "cal.json");
        var o = RlmsProcess.Run("calibrate", dir, "--gpu", "CPU", "--statistic", "mean", "--host-overhead", dir, "--out", cal);
        Assert.True(o.ExitCode == 0, o.Stderr + o.Stdout);
        Assert.Contains("host overhead", o.Stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(cal));
        var sources = doc.RootElement.GetProperty("provenance").GetProperty("sources").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.EndsWith(ReplayRunner.ProfileFile, Assert.Single(sources));
        // Priced against the calibration of this very profile, the visits come out at about the machine's average.
        var priced = SlowdownFile.AgainstCalibration(Path.Combine(dir, ReplayRunner.VisitsFile), CalibrationStore.Read(cal).ToModel());
        Assert.Equal(visits.Select(v => v.TimeS), priced.Select(p => p.TimeS));
        Assert.All(priced, p => Assert.InRange(p.Factor, 0.3, 3.0));
        Assert.InRange(priced.Average(p => p.Factor), 0.8, 1.25);
        var host = doc.RootElement.GetProperty("host_overhead");
        Assert.Equal(hostUs.Average(), host.GetProperty("per_iteration_us").GetDouble(), 6);
        Assert.Equal(hostUs.Count, host.GetProperty("iterations").GetInt64());
        Assert.EndsWith("iterations.parquet", Assert.Single(host.GetProperty("sources").EnumerateArray()).GetString());

        // Only a replay's iterations measure it: a profile trace is refused, naming the flag and the file.
        var bad = RlmsProcess.Run("calibrate", dir, "--gpu", "CPU", "--host-overhead", file, "--out", Path.Combine(dir, "bad.json"));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains($"--host-overhead: {file}: rlms.schema is 'iteration'", bad.Stderr);
        var missing = RlmsProcess.Run("calibrate", dir, "--gpu", "CPU", "--host-overhead", Path.Combine(dir, "nowhere"), "--out", Path.Combine(dir, "bad.json"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("--host-overhead", missing.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "bad.json")));
    }

    [Theory]
    [InlineData(new[] { "--interleave-share", "0.3" }, "--interleave-share: needs --interleave-profile")]
    [InlineData(new[] { "--interleave-profile", "huge" }, "--interleave-profile: 'huge' is not one of")]
    [InlineData(new[] { "--interleave-profile", "serving", "--interleave-share", "0" }, "--interleave-share: 0 is not")]
    public void ReplayRefusesBadInterleaveFlags(string[] flags, string message)
    {
        var outDir = Path.Combine(RlmsProcess.TempDir(), "out");
        var o = RlmsProcess.Run([.. new[] { "replay", Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "fidelity-cpu.yaml"), "--out", outDir }, .. flags]);
        Assert.Equal(2, o.ExitCode);
        Assert.Contains(message, o.Stderr);
        Assert.False(Directory.Exists(outDir));
    }
}
