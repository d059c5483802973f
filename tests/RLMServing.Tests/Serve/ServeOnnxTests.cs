using System.Net;
using System.Text.Json;
using RLMServing.IO.Results;
using RLMServing.IO.Traces;
using RLMServing.Metrics;
using RLMServing.Serve;
using RLMServing.Serve.Api;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Serve;

/// <summary>rlms serve --engine onnx: the ONNX Runtime engine (rlms replay's) generating real tokens on the tiny model, CPU.</summary>
public class ServeOnnxTests
{
    private const string Tiny = """
        name: tiny-live
        seed: 5
        hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
        model: tiny
        cost_model: { kind: roofline }
        kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
        workload:
          requests: 8
          arrival: { process: poisson, rate: 10 }
          prompt_tokens: { dist: uniform, min: 8, max: 48 }
          output_tokens: { dist: uniform, min: 4, max: 24 }
        scheduler: { batching: continuous, max_num_seqs: 4, max_num_batched_tokens: 128 }
        """;

    [Fact]
    public async Task TheOnnxEngineServesRealTokensStreamedAndNot()
    {
        var dir = RlmsProcess.TempDir();
        await using (var s = await RunningServer.StartAsync(Tiny, new ServeOptions { Engine = ServeEngineKind.Onnx, MaxModelLen = 128, Threads = 1, RecordDir = dir }))
        {
            var body = JsonDocument.Parse(await (await s.PostAsync("/v1/completions", """{"prompt": "a b c d e f", "max_tokens": 9, "ignore_eos": true}""")).Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(9, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            Assert.Equal(9, FillerText.CountTokens(body.GetProperty("choices")[0].GetProperty("text").GetString()!));

            var results = await Task.WhenAll(Enumerable.Range(0, 5).Select(async i =>
            {
                var response = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(10 + i, maxTokens: 6 + i, stream: true, ignoreEos: true),
                    completion: HttpCompletionOption.ResponseHeadersRead);
                return (i, lines: await RunningServer.DataLines(response));
            }));
            foreach (var (i, lines) in results)
            {
                Assert.Equal("[DONE]", lines[^1]);
                int words = lines.SkipLast(1).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("choices"))
                    .Where(c => c.GetArrayLength() > 0).Select(c => c[0].GetProperty("delta"))
                    .Sum(d => (d.TryGetProperty("reasoning", out var r) ? FillerText.CountTokens(r.GetString()!) : 0)
                        + (d.TryGetProperty("content", out var t) ? FillerText.CountTokens(t.GetString()!) : 0));
                Assert.Equal(6 + i, words);
            }
            var tooLong = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(100, maxTokens: 100));
            Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        }
        var rows = await RLMServing.IO.Results.ResultWriter.ReadRequestsAsync(Path.Combine(dir, "requests.parquet"));
        Assert.Equal(6, rows.Count);
        Assert.All(rows, r => Assert.True(r.TtftMs > 0 && r.E2elMs > r.TtftMs));
    }

    /// <summary>
    /// rlms bench against rlms serve --engine onnx, and rlms validate of that run against rlms replay of the same
    /// requests: the live files and the replay's share a schema, so the real CLI pairs every request by its id. The
    /// latencies of two wall-clock runs on a shared test machine are not compared here (validate's verdict may go
    /// either way); the numbers of a quiet run are in docs/performance.md.
    /// </summary>
    [Fact]
    public async Task BenchOfTheOnnxEngineValidatesAgainstReplayOfTheSameRequests()
    {
        const int n = 8;
        var dir = RlmsProcess.TempDir();
        var rng = new Random(5);
        string trace = Path.Combine(dir, "trace.parquet");
        var rows = Enumerable.Range(0, n).Select(i =>
        {
            int output = rng.Next(4, 25);
            return new RequestTraceRow(i * 0.1, rng.Next(8, 49), output, output / 2);
        }).ToList();
        using (var w = new RequestTraceWriter(trace))
        {
            foreach (var r in rows) w.Write(r);
            w.Complete(new Dictionary<string, string>());
        }
        string yaml = Tiny[..Tiny.IndexOf("workload:", StringComparison.Ordinal)] + $"workload: {{ trace: {trace} }}\n"
            + "scheduler: { batching: continuous, max_num_seqs: 4, max_num_batched_tokens: 128 }\n";
        string scenario = Path.Combine(dir, "tiny-trace.yaml");
        File.WriteAllText(scenario, yaml);

        string benchDir = Path.Combine(dir, "bench"), replayDir = Path.Combine(dir, "replay");
        await using (var s = await RunningServer.StartAsync(yaml, new ServeOptions { Engine = ServeEngineKind.Onnx, MaxModelLen = 128, Threads = 1 }))
        {
            var bench = await Task.Run(() => RlmsProcess.Run("bench", "--base-url", s.Host.BaseAddress.ToString().TrimEnd('/'), "--model", s.Model,
                "--dataset-name", "trace", "--dataset-path", trace, "--num-prompts", n.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--ignore-eos", "--ready-check-timeout-sec", "0", "--result-dir", benchDir, "--quiet"));
            Assert.True(bench.ExitCode == 0, bench.Stderr);
        }
        var replay = RlmsProcess.Run("replay", scenario, "--out", replayDir, "--threads", "1", "--quiet");
        Assert.True(replay.ExitCode == 0, replay.Stderr);

        var live = (await ResultWriter.ReadRequestsAsync(Path.Combine(benchDir, "requests.parquet"))).OrderBy(r => r.RequestId).ToList();
        var replayed = (await ResultWriter.ReadRequestsAsync(Path.Combine(replayDir, "requests.parquet"))).OrderBy(r => r.RequestId).ToList();
        Assert.Equal(Enumerable.Range(0, n).Select(i => (long)i), live.Select(r => r.RequestId));
        Assert.Equal(live.Select(r => r.RequestId), replayed.Select(r => r.RequestId));
        Assert.All(live.Concat(replayed), r => Assert.Equal(RequestStatus.Completed, r.Status));
        // The same requests on both sides: the trace's prompt and output lengths, the live ones as the server's usage reported them.
        Assert.Equal(rows.Select(r => (long)r.PromptTokens), live.Select(r => (long)r.PromptTokens));
        Assert.Equal(rows.Select(r => (long)r.OutputTokens), live.Select(r => (long)r.OutputTokens));
        Assert.Equal(replayed.Select(r => (r.PromptTokens, r.OutputTokens)), live.Select(r => (r.PromptTokens, r.OutputTokens)));

        var validate = RlmsProcess.Run("validate", "--measured", Path.Combine(benchDir, "requests.parquet"),
            "--predicted", Path.Combine(replayDir, "requests.parquet"), "--json");
        Assert.True(validate.ExitCode is 0 or 1, $"rlms validate exited with {validate.ExitCode}: {validate.Stderr}");
        var report = JsonDocument.Parse(validate.Stdout).RootElement;
        foreach (var metric in new[] { "ttft", "tpot", "e2el" })
        {
            var c = report.GetProperty(metric);
            Assert.Equal(n, c.GetProperty("requests_matched").GetInt32());
            Assert.True(c.GetProperty("measured_mean_ms").GetDouble() > 0 && c.GetProperty("predicted_mean_ms").GetDouble() > 0, metric);
        }
        Assert.True(report.GetProperty("itl").GetProperty("measured_mean_ms").GetDouble() > 0);   // from the bench's summary.json
        Assert.Equal(validate.ExitCode == 0 ? "pass" : "fail", report.GetProperty("verdict").GetString());
    }
}
