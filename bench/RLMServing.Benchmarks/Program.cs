using System.Diagnostics;
using System.Globalization;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Simulation;

// Simulator speed benchmark: times Simulator.Run on bench-100k.yaml (no file output) at several request counts,
// to show the time per run, the peak memory and that time grows linearly with requests.
// Usage: dotnet run -c Release --project bench/RLMServing.Benchmarks -- [simulator|cluster] [SCENARIO] [--sizes 25000,50000,100000] [--set key=value]...
// `cluster` is the same benchmark with a state-dependent router (scheduler.router=least_outstanding unless --set
// gives one), so the replicas run in lockstep to every arrival instead of one after another.
// `trace-import [ROWS] [RUNS]` (request-trace import speed) lives in TraceImportBenchmark.cs.
// `harness-overhead` (profiling harness cost per measurement) lives in HarnessOverhead.cs.
// `sweep [SWEEP.yaml] [--jobs N]` (rlms sweep end to end, 1,000 configurations x 5,000 requests) lives in SweepBenchmark.cs.
// `decode-skew [MODEL] [ROUNDS]` (replay engine decode steps: uniform vs skewed batches) lives in DecodeSkew.cs.
// `engine-drift [MODEL] [SECONDS]` (how much the same replay-engine work's time drifts on this machine) lives in EngineDrift.cs.
// `replay-steps CALIBRATION.json ITERATIONS.parquet...` (a calibration priced on a replay's own iterations) lives in ReplaySteps.cs.
// `replay-windows ITERATIONS.parquet... [--window SECONDS]` (whether large batches ran while the machine was slow) lives in ReplayWindows.cs.
// `client-overhead [REQUESTS] [STREAMS]` (rlms bench: streamed requests/s per core, timestamp error at 1,000 streams) lives in ClientOverhead.cs.
// `serve-closed-loop [REQUESTS] [SCALE]` and `serve-soak [SECONDS] [STREAMS]` (rlms serve's twin under rlms bench) live in ServeBenchmarks.cs.
// `whole-command RLMS [--requests N] [--runs R]` (rlms simulate bench-100k.yaml as a user runs it: wall, CPU, peak memory) lives in WholeCommand.cs.
if (args is ["whole-command", ..]) return RLMServing.Benchmarks.WholeCommand.Run(args);
if (args is ["serve-closed-loop", ..]) return RLMServing.Benchmarks.ServeBenchmarks.ClosedLoop(args);
if (args is ["serve-soak", ..]) return RLMServing.Benchmarks.ServeBenchmarks.Soak(args);
if (args is ["client-overhead", ..]) return RLMServing.Benchmarks.ClientOverhead.Run(args);
if (args is ["client-overhead-server"]) return RLMServing.Benchmarks.ClientOverhead.Serve();
if (args is ["client-overhead-raw-server"]) return RLMServing.Benchmarks.ClientOverhead.ServeRaw();
if (args is ["trace-import", ..]) return RLMServing.Benchmarks.TraceImportBenchmark.Run(args[1..]);
if (args is ["harness-overhead", ..]) return RLMServing.Benchmarks.HarnessOverhead.Run(args);
if (args is ["sweep", ..]) return RLMServing.Benchmarks.SweepBenchmark.Run(args[1..]);
if (args is ["decode-skew", ..]) return RLMServing.Benchmarks.DecodeSkew.Run(args);
if (args is ["engine-drift", ..]) return RLMServing.Benchmarks.EngineDrift.Run(args);
if (args is ["replay-steps", _, _, ..]) return RLMServing.Benchmarks.ReplaySteps.Run(args);
if (args is ["replay-windows", _, ..]) return RLMServing.Benchmarks.ReplayWindows.Run(args);
var argsList = args.ToList();
var sets = new List<string>();
if (argsList.Count > 0 && argsList[0] == "cluster") sets.Add("scheduler.router=least_outstanding");
if (argsList.Count > 0 && argsList[0] is "simulator" or "cluster") argsList.RemoveAt(0);
for (int i = argsList.IndexOf("--set"); i >= 0; i = argsList.IndexOf("--set"))
{
    var set = argsList[i + 1];
    sets.RemoveAll(s => s.Split('=')[0] == set.Split('=')[0]);
    sets.Add(set);
    argsList.RemoveRange(i, 2);
}
int[] sizes = [25_000, 50_000, 100_000];
int si = argsList.IndexOf("--sizes");
if (si >= 0)
{
    sizes = argsList[si + 1].Split(',').Select(int.Parse).ToArray();
    argsList.RemoveRange(si, 2);
}
string scenarioPath = argsList.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? FindScenario();

var catalog = CatalogLoader.LoadDefault();
Console.WriteLine($"scenario: {scenarioPath} {string.Join(" ", sets.Select(s => "--set " + s))} (Release build: {!Debugger.IsAttached && IsRelease()})");
{
    // Warm-up: JIT every path once so the first measured size does not pay for compilation.
    var warm = ScenarioLoader.Load(scenarioPath, [.. sets, "workload.requests=3000"]);
    var w = ScenarioRunner.Prepare(warm, catalog)[0];
    Simulator.Run(w.Scenario, w.Model, w.Groups);
}
Console.WriteLine("requests   output_tokens   iterations   best_s   median_s   ns_per_iteration   peak_working_set_mb");
foreach (var n in sizes)
{
    var file = ScenarioLoader.Load(scenarioPath, [.. sets, $"workload.requests={n}"]);
    var run = ScenarioRunner.Prepare(file, catalog)[0];
    var times = new List<double>();
    SimulationResult? result = null;
    for (int rep = 0; rep < 3; rep++)
    {
        GC.Collect();
        var sw = Stopwatch.StartNew();
        result = Simulator.Run(run.Scenario, run.Model, run.Groups);
        times.Add(sw.Elapsed.TotalSeconds);
    }
    times.Sort();
    long tokens = result!.Summary.TotalOutputTokens;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{n,8}   {tokens,13}   {result.Summary.Iterations,10}   {times[0],6:F3}   {times[1],8:F3}   {times[0] * 1e9 / result.Summary.Iterations,16:F0}   {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6,19:F0}"));
}
return 0;

static string FindScenario()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var p = Path.Combine(dir.FullName, "scenarios", "bench-100k.yaml");
        if (File.Exists(p)) return p;
    }
    throw new FileNotFoundException("scenarios/bench-100k.yaml not found; pass a scenario path");
}

static bool IsRelease()
{
#if DEBUG
    return false;
#else
    return true;
#endif
}
