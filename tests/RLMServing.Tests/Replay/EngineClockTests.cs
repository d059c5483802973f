using System.Diagnostics;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Replay;

/// <summary>--clock cpu: the engine thread's CPU time, idle waits skipped; refused where it would not measure the engine.</summary>
/// <remarks>Reads this thread's CPU and JIT times, which other tests' threads would disturb: runs alone with the other timing tests.</remarks>
[Collection("timing")]
public class EngineClockTests
{
    [Fact]
    public void CpuClockJumpsToAnArrivalAndStaysMonotone()
    {
        var clock = new EngineClock(EngineClockKind.Cpu);
        double a = clock.NowS;
        clock.WaitUntil(500, CancellationToken.None);
        double b = clock.NowS;
        Assert.InRange(b, 500, 501);   // jumped, did not sleep 500 s
        double sink = 0;
        for (int i = 0; i < 2_000_000; i++) sink += Math.Sqrt(i);   // CPU work advances it
        double c = clock.NowS;
        Assert.True(sink > 0);
        Assert.True(a >= 0 && b > a && c > b, $"{a} {b} {c}");
        clock.WaitUntil(c - 1, CancellationToken.None);   // the past: no change
        Assert.True(clock.NowS >= c);
    }

    /// <summary>Compiling code on the engine thread (a method's first call) is not engine time: the CPU clock leaves it out.</summary>
    [Fact]
    public void CpuClockLeavesOutJitCompilation()
    {
        var clock = new EngineClock(EngineClockKind.Cpu);
        double cpu0 = ThreadCpuTime.Seconds(), jit0 = System.Runtime.JitInfo.GetCompilationTime(currentThread: true).TotalSeconds;
        double start = clock.NowS;
        long sum = 0;
        for (int i = 0; i < 200; i++)
        {
            // Each compiled expression is a new method, JIT-compiled on this thread at its first call.
            var x = System.Linq.Expressions.Expression.Parameter(typeof(long));
            var body = System.Linq.Expressions.Expression.Add(System.Linq.Expressions.Expression.Multiply(x, System.Linq.Expressions.Expression.Constant((long)i)), System.Linq.Expressions.Expression.Constant(7L));
            sum += System.Linq.Expressions.Expression.Lambda<Func<long, long>>(body, x).Compile()(i);
        }
        double cpu = ThreadCpuTime.Seconds() - cpu0;
        double jit = System.Runtime.JitInfo.GetCompilationTime(currentThread: true).TotalSeconds - jit0;
        double elapsed = clock.NowS - start;
        Assert.True(sum > 0);
        Assert.True(jit > 0, "no JIT time was recorded on this thread");
        // The clock advanced by at most the thread's CPU time less its JIT time (to the few microseconds between the
        // reads). Only the upper bound holds under any load: the JIT's time is wall time, which a busy machine stretches,
        // and the clock never runs backwards, so a loaded run advances it less, never more.
        Assert.InRange(elapsed, 0, Math.Max(0, cpu - jit) + 0.002);
        Assert.True(elapsed < cpu, $"the clock advanced {elapsed} s of {cpu} s CPU time: the {jit} s of JIT compilation were not left out");
    }

    [Fact]
    public void CpuClockRefusesAnotherThread()
    {
        var clock = new EngineClock(EngineClockKind.Cpu);
        Exception? seen = null;
        var t = new Thread(() => { try { _ = clock.NowS; } catch (Exception e) { seen = e; } });
        t.Start();
        t.Join();
        Assert.IsType<InvalidOperationException>(seen);
    }

    [Fact]
    public void WallClockWaits()
    {
        var clock = new EngineClock(EngineClockKind.Wall);
        var sw = Stopwatch.StartNew();
        clock.WaitUntil(0.03, CancellationToken.None);
        Assert.True(clock.NowS >= 0.03);
        Assert.True(sw.Elapsed.TotalSeconds >= 0.029);
    }

    [Theory]
    [InlineData("cuda", 1)]
    [InlineData("cpu", 0)]
    [InlineData("cpu", 4)]
    public void CpuClockNeedsOneCpuThread(string device, int threads)
    {
        var e = Assert.Throws<UserInputException>(() => EngineClock.CheckUsable(EngineClockKind.Cpu, DeviceSpec.Parse(device), threads));
        Assert.Contains("--clock cpu", e.Message);
        EngineClock.CheckUsable(EngineClockKind.Wall, DeviceSpec.Parse(device), threads);   // the wall clock always works
        EngineClock.CheckUsable(EngineClockKind.Cpu, DeviceSpec.Parse("cpu"), 1);
    }

    [Fact]
    public void ParseNamesTheFlag()
    {
        Assert.Equal(EngineClockKind.Cpu, EngineClock.Parse("CPU"));
        Assert.Equal(EngineClockKind.Wall, EngineClock.Parse("wall"));
        Assert.Contains("--clock", Assert.Throws<UserInputException>(() => EngineClock.Parse("gpu")).Message);
    }

    /// <summary>
    /// Sparse arrivals (about one every 4 s) replayed on the CPU clock: every request keeps its arrival time, starts
    /// no earlier, and the run covers the arrivals' span without sleeping through it.
    /// </summary>
    [Fact]
    public void ReplayOnTheCpuClockSkipsIdleTimeButKeepsArrivals()
    {
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, """
            name: sparse
            seed: 5
            hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
            model: tiny
            cost_model: { kind: roofline }
            kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
            workload:
              requests: 6
              arrival: { process: poisson, rate: 0.25 }
              prompt_tokens: { dist: uniform, min: 8, max: 48 }
              output_tokens: { dist: uniform, min: 4, max: 24 }
            scheduler: { batching: continuous, max_num_seqs: 3, max_num_batched_tokens: 64 }
            """);
        var run = RLMServing.IO.Runs.ScenarioRunner.Prepare(RLMServing.IO.Scenarios.ScenarioLoader.Load(path),
            RLMServing.IO.Catalog.CatalogLoader.LoadDefault()).Single();
        var arrivals = run.Scenario.Workload!.Generate(run.Scenario.Seed).Select(r => r.ArrivalTimeS).ToList();
        Assert.True(arrivals.Max() > 8, "the workload should span several idle seconds");
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        var sw = Stopwatch.StartNew();
        var r = ReplayRunner.Run(run, null, device, OnnxType.Float, clock: EngineClockKind.Cpu);
        double wall = sw.Elapsed.TotalSeconds;
        Assert.Equal(EngineClockKind.Cpu, r.Clock);
        Assert.Equal(6, r.Result.Requests.Count);
        foreach (var q in r.Result.Requests)
        {
            Assert.Contains(q.ArrivalTimeS, arrivals);
            Assert.True(q.FirstScheduledTimeS >= q.ArrivalTimeS);
            Assert.True(q.CompletionTimeS > q.FirstTokenTimeS);
        }
        Assert.True(r.Result.Summary.Duration >= arrivals.Max());
        // Slept through, the arrivals alone would take their span of wall time.
        Assert.True(wall < arrivals.Max(), $"replay took {wall:F1} s of wall time for arrivals spanning {arrivals.Max():F1} s");
        var meta = ReplayRunner.Metadata(run, null, "test", r, 1);
        Assert.Equal("cpu", meta["rlms.clock"]);
    }

    [Theory]
    [InlineData("--threads", "0")]
    [InlineData("--device", "cuda")]
    public void ReplayRefusesTheCpuClockWhereItCannotMeasure(string flag, string value)
    {
        var dir = RlmsProcess.TempDir();
        var outDir = Path.Combine(dir, "out");
        string[] args = ["replay", Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "fidelity-cpu.yaml"), "--out", outDir, "--clock", "cpu", "--threads", "1", flag, value];
        var o = RlmsProcess.Run(args);
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("--clock cpu", o.Stderr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void ProfileRefusesTheCpuClockOutsideTheServingGenerationProfile()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run(["profile", "--model", "tiny", "--device", "cpu", "--threads", "1", "--clock", "cpu", "--out", Path.Combine(dir, "p")]);
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("--groups generation --kv-mode serving", o.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "p")));
    }

    /// <summary>
    /// The JIT's compilation time is wall time: a compile that waited for a core adds more to it than to the thread's CPU
    /// time. The clock then holds still for that read instead of stepping back, and counts on at once afterwards.
    /// </summary>
    [Fact]
    public void TheCpuClockNeverStepsBackWhenTheJitOutrunsTheCpu()
    {
        double cpu = 10, jit = 2;
        var clock = new EngineClock(EngineClockKind.Cpu, () => cpu, () => jit);
        cpu = 10.005;
        Assert.Equal(0.005, clock.NowS, 12);
        cpu = 10.006; jit = 2.003;   // 1 ms of CPU, 3 ms of compilation on the wall clock
        Assert.Equal(0.005, clock.NowS, 12);
        cpu = 10.008;                // counts on from where it stood, not 2 ms behind
        Assert.Equal(0.007, clock.NowS, 12);
        cpu = 10.010; jit = 2.0035;  // a compile shorter than the CPU time it took: taken off
        Assert.Equal(0.0085, clock.NowS, 12);
        clock.Exclude(0.0005);
        Assert.Equal(0.008, clock.NowS, 12);
    }
}
