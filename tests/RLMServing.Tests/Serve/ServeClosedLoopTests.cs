using System.Globalization;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.IO.Traces;
using RLMServing.Metrics;
using RLMServing.Serve;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Serve;

/// <summary>
/// The closed loop over HTTP: <c>rlms bench</c> replays a trace against <c>rlms serve --engine twin</c> and measures
/// what <c>rlms simulate</c> predicts for the same trace.
/// </summary>
// Wall-clock means of a client process: alone on the cores, as the other timing tests (beside the suite's parallel
// CPU-heavy tests, in a clean-clone CI run, the client process's mean TTFT came out 4x the served one).
[Collection("timing")]
public class ServeClosedLoopTests
{
    private const double TimeScale = 2;

    /// <summary>40 requests, Poisson at 1.5 req/s (simulated seconds), 4,000-8,000 prompt and 80-240 output tokens.</summary>
    private static List<RequestTraceRow> Trace()
    {
        var rng = new Random(11);
        var rows = new List<RequestTraceRow>();
        double t = 0;
        for (int i = 0; i < 40; i++)
        {
            if (i > 0) t += -Math.Log(1 - rng.NextDouble()) / 1.5;
            int output = rng.Next(80, 241);
            rows.Add(new RequestTraceRow(t, rng.Next(4000, 8001), output, output * 3 / 4));
        }
        return rows;
    }

    private static void Write(string path, IEnumerable<RequestTraceRow> rows)
    {
        using var w = new RequestTraceWriter(path);
        foreach (var r in rows) w.Write(r);
        w.Complete(new Dictionary<string, string>());
    }

    private static (double Ttft, double Tpot, double E2e) Means(IEnumerable<RequestRecord> rows, double scale)
    {
        var done = rows.Where(r => r.Status == RequestStatus.Completed).ToList();
        return (done.Average(r => r.TtftMs!.Value) * scale, done.Average(r => r.TpotMs!.Value) * scale, done.Average(r => r.E2elMs!.Value) * scale);
    }

    /// <summary>The twin's scenario with a trace workload in place of the synthetic one.</summary>
    private static string WithTrace(string trace) =>
        RunningServer.Twin[..RunningServer.Twin.IndexOf("workload:", StringComparison.Ordinal)]
        + $"workload: {{ trace: {trace} }}\n"
        + "scheduler: { batching: continuous, max_num_seqs: 64, max_num_batched_tokens: 4096, queue: fcfs, preemption: recompute }\n"
        + "kv_cache: { block_size: 16, gpu_memory_utilization: 0.9 }\n";

    /// <summary>
    /// rlms bench replays the trace against the twin; the server-side timings are then exactly what rlms simulate
    /// gives for the arrivals the server saw (the twin's clock is the simulation's, whatever the host's load), and the
    /// client measures the same per-token pace. The comparison with the nominal trace's simulation (mean TTFT, TPOT and
    /// E2E within 5%) needs a quiet machine, since on a loaded one the client itself sends late: it is the benchmark
    /// <c>serve-closed-loop</c> (docs/performance.md).
    /// </summary>
    [Fact]
    public async Task BenchAgainstTheTwinMeasuresTheSimulationOfWhatItSent()
    {
        var dir = RlmsProcess.TempDir();
        var rows = Trace();
        string wallTrace = Path.Combine(dir, "trace-wall.parquet");
        // The client sends on the wall clock: the trace's times divided by the twin's time scale.
        Write(wallTrace, rows.Select(r => r with { ArrivalTimeS = r.ArrivalTimeS / TimeScale }));
        Write(Path.Combine(dir, "trace.parquet"), rows);
        string yaml = WithTrace(Path.Combine(dir, "trace.parquet"));

        string benchDir = Path.Combine(dir, "bench"), servedDir = Path.Combine(dir, "served");
        await using (var s = await RunningServer.StartAsync(yaml, new ServeOptions { TimeScale = TimeScale, RecordDir = servedDir }))
        {
            var bench = await Task.Run(() => RlmsProcess.Run("bench", "--base-url", s.Host.BaseAddress.ToString().TrimEnd('/'), "--model", s.Model,
                "--dataset-name", "trace", "--dataset-path", wallTrace, "--num-prompts", "40", "--ignore-eos",
                "--ready-check-timeout-sec", "0", "--result-dir", benchDir, "--quiet"));
            Assert.True(bench.ExitCode == 0, bench.Stderr);
        }
        var client = (await ResultWriter.ReadRequestsAsync(Path.Combine(benchDir, "requests.parquet"))).ToList();
        var served = (await ResultWriter.ReadRequestsAsync(Path.Combine(servedDir, "requests.parquet"))).OrderBy(r => r.ArrivalTimeS).ToList();
        Assert.Equal(40, client.Count(r => r.Status == RequestStatus.Completed));
        Assert.Equal(40, served.Count(r => r.Status == RequestStatus.Completed));

        // The simulation of the arrivals the server saw (its own clock), with the lengths it served.
        string seen = Path.Combine(dir, "seen.parquet");
        Write(seen, served.Select(r => new RequestTraceRow(r.ArrivalTimeS, r.PromptTokens, r.OutputTokens, r.ThinkingTokens)));
        var simulated = ScenarioRunner.Simulate(RunningServer.Prepare(WithTrace(seen)), null).Requests.OrderBy(r => r.ArrivalTimeS).ToList();
        var twin = Means(served, 1);
        var sim = Means(simulated, 1);
        var measured = Means(client, TimeScale);
        string report = string.Create(CultureInfo.InvariantCulture,
            $"served TTFT {twin.Ttft:F2} TPOT {twin.Tpot:F3} E2E {twin.E2e:F1} ms; simulated {sim.Ttft:F2} {sim.Tpot:F3} {sim.E2e:F1}; client {measured.Ttft:F1} {measured.Tpot:F2} {measured.E2e:F0}");
        Assert.True(Math.Abs(twin.Ttft / sim.Ttft - 1) <= 0.01, report);
        Assert.True(Math.Abs(twin.Tpot / sim.Tpot - 1) <= 0.01, report);
        Assert.True(Math.Abs(twin.E2e / sim.E2e - 1) <= 0.01, report);
        // The client sees the served pace, and nothing sooner than it was served.
        Assert.True(Math.Abs(measured.Tpot / twin.Tpot - 1) <= 0.10, report);   // 10%: a loaded test machine delays the client
        Assert.True(measured.Ttft >= twin.Ttft * 0.99, report);
    }
}
