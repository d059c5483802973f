using System.Diagnostics;
using System.Globalization;
using RLMServing.Bench;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.IO.Traces;
using RLMServing.Metrics;
using RLMServing.Serve;

namespace RLMServing.Benchmarks;

/// <summary>
/// rlms serve's twin under rlms bench, wall-clock runs (not CI: they need a quiet machine and minutes).
/// <c>serve-closed-loop [REQUESTS] [SCALE]</c>: a Poisson trace replayed by BenchRunner against the twin at the time
/// scale; the client's mean TTFT, TPOT and E2E (times the scale) against rlms simulate of the same trace (target 5%).
/// <c>serve-soak [SECONDS] [STREAMS]</c>: STREAMS concurrent streams against the twin at time scale 1 for about
/// SECONDS; every request must be a row, and the process's managed heap is sampled to show it stays flat.
/// </summary>
public static class ServeBenchmarks
{
    private const string Scenario = """
        name: serve-bench
        seed: 7
        hardware: { gpu: H100-SXM-80G, replicas: 1, tensor_parallel: 1 }
        model: DeepSeek-R1-Distill-Qwen-7B
        cost_model: { kind: roofline }
        workload: WORKLOAD
        scheduler: { batching: continuous, max_num_seqs: 256, max_num_batched_tokens: 8192, queue: fcfs, preemption: recompute }
        kv_cache: { block_size: 16, gpu_memory_utilization: 0.9 }
        """;

    private static string Dir() => Directory.CreateTempSubdirectory("rlms-serve-bench-").FullName;

    private static PreparedRun Prepare(string dir, string workload)
    {
        string path = Path.Combine(dir, "scenario.yaml");
        File.WriteAllText(path, Scenario.Replace("WORKLOAD", workload));
        return ScenarioRunner.Prepare(ScenarioLoader.Load(path, []), CatalogLoader.LoadDefault()).Single();
    }

    private static void WriteTrace(string path, IEnumerable<RequestTraceRow> rows)
    {
        using var w = new RequestTraceWriter(path);
        foreach (var r in rows) w.Write(r);
        w.Complete(new Dictionary<string, string>());
    }

    private static (double Ttft, double Tpot, double E2e, int N) Means(IEnumerable<RequestRecord> rows, double scale)
    {
        var done = rows.Where(r => r.Status == RequestStatus.Completed && r.TpotMs is not null).ToList();
        return (done.Average(r => r.TtftMs!.Value) * scale, done.Average(r => r.TpotMs!.Value) * scale, done.Average(r => r.E2elMs!.Value) * scale, done.Count);
    }

    public static int ClosedLoop(string[] args)
    {
        int n = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
        double scale = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 1.0;
        string dir = Dir();
        var rng = new Random(11);
        var rows = new List<RequestTraceRow>();
        double t = 0;
        for (int i = 0; i < n; i++)
        {
            if (i > 0) t += -Math.Log(1 - rng.NextDouble()) / 1.5;
            int output = rng.Next(80, 241);
            rows.Add(new RequestTraceRow(t, rng.Next(4000, 8001), output, output * 3 / 4));
        }
        string trace = Path.Combine(dir, "trace.parquet"), wall = Path.Combine(dir, "trace-wall.parquet");
        WriteTrace(trace, rows);
        WriteTrace(wall, rows.Select(r => r with { ArrivalTimeS = r.ArrivalTimeS / scale }));
        var run = Prepare(dir, $"{{ trace: {trace} }}");
        var predicted = Means(ScenarioRunner.Simulate(run, null).Requests, 1);
        var host = ServeHost.Create(run, new ServeOptions { Port = 0, TimeScale = scale });
        host.StartAsync().GetAwaiter().GetResult();
        try
        {
            var options = new BenchOptions
            {
                BaseUrl = host.BaseAddress.ToString().TrimEnd('/'), Model = host.ModelName, DatasetName = "trace", DatasetPath = wall,
                NumPrompts = n, IgnoreEos = true, ReadyCheckTimeoutSec = 0, ResultDir = Path.Combine(dir, "bench"),
            };
            using var runner = new BenchRunner(options);
            runner.RunAllAsync().GetAwaiter().GetResult();
        }
        finally
        {
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        var measured = Means(ResultWriter.ReadRequestsAsync(Path.Combine(dir, "bench", "requests.parquet")).GetAwaiter().GetResult(), scale);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"closed loop, {n} requests, time scale {scale}: {measured.N} completed\n" +
            $"  mean TTFT {measured.Ttft:F1} ms (simulate {predicted.Ttft:F1}, {(measured.Ttft / predicted.Ttft - 1) * 100:+0.0;-0.0}%)\n" +
            $"  mean TPOT {measured.Tpot:F2} ms (simulate {predicted.Tpot:F2}, {(measured.Tpot / predicted.Tpot - 1) * 100:+0.0;-0.0}%)\n" +
            $"  mean E2E  {measured.E2e:F0} ms (simulate {predicted.E2e:F0}, {(measured.E2e / predicted.E2e - 1) * 100:+0.0;-0.0}%)"));
        return 0;
    }

    public static int Soak(string[] args)
    {
        double seconds = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 600;
        int streams = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 500;
        string dir = Dir();
        var run = Prepare(dir, """
            { requests: 100, arrival: { process: poisson, rate: 1 }, prompt_tokens: { dist: constant, value: 256 },
              thinking_tokens: { dist: uniform, min: 100, max: 400 }, answer_tokens: { dist: uniform, min: 20, max: 100 } }
            """);
        var host = ServeHost.Create(run, new ServeOptions { Port = 0, MaxWaiting = 100_000 });
        host.StartAsync().GetAwaiter().GetResult();
        var heap = new List<(double S, long Bytes)>();
        var sw = Stopwatch.StartNew();
        using var stopSampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                heap.Add((sw.Elapsed.TotalSeconds, GC.GetTotalMemory(forceFullCollection: true)));
                try { await Task.Delay(TimeSpan.FromSeconds(30), stopSampling.Token); } catch (OperationCanceledException) { }
            }
        });
        int sent = 0, rowsWritten = 0, completed = 0;
        try
        {
            // Closed batches of STREAMS requests, one after another, until the time is up: STREAMS open at once.
            while (sw.Elapsed.TotalSeconds < seconds)
            {
                var options = new BenchOptions
                {
                    BaseUrl = host.BaseAddress.ToString().TrimEnd('/'), Model = host.ModelName, NumPrompts = streams, InputLen = 256, OutputLen = 300,
                    IgnoreEos = true, ReadyCheckTimeoutSec = 0, ResultDir = Path.Combine(dir, $"bench-{sent}"), Seed = sent,
                };
                using var runner = new BenchRunner(options);
                runner.RunAllAsync().GetAwaiter().GetResult();
                var rows = ResultWriter.ReadRequestsAsync(Path.Combine(options.ResultDir, "requests.parquet")).GetAwaiter().GetResult();
                sent += streams;
                rowsWritten += rows.Count;
                completed += rows.Count(r => r.Status == RequestStatus.Completed);
                Directory.Delete(options.ResultDir, recursive: true);
            }
        }
        finally
        {
            stopSampling.Cancel();
            sampler.GetAwaiter().GetResult();
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak: {streams} concurrent streams for {sw.Elapsed.TotalSeconds:F0} s: {sent} sent, {rowsWritten} rows, {completed} completed"));
        foreach (var (s, b) in heap) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  t={s,5:F0} s  managed heap {b / 1e6,7:F1} MB"));
        return rowsWritten == sent ? 0 : 1;
    }
}
