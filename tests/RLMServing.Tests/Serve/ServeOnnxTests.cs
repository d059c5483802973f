using System.Net;
using System.Text.Json;
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
}
