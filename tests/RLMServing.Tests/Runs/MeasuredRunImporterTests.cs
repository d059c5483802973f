using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.IO.Traces;
using RLMServing.Metrics;
using RLMServing.Tests.Profiling;
using SharedData = RLMServing.Tests.Profiling.SharedData;
using TempDir = RLMServing.Tests.Traces.TempDir;
using TestImporters = RLMServing.Tests.Traces.TestImporters;
using Xunit;

namespace RLMServing.Tests.Runs;

public sealed class MeasuredRunImporterTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string LlmServingSimRun => Path.Combine(SharedData.Root!, "validation", "llmservingsim", "RTXPRO6000", "Llama-3.1-8B");

    private (IReadOnlyList<RequestRecord> Requests, IReadOnlyList<RLMServing.Workloads.RequestSpec> Trace) Import(string format, string input)
    {
        var outDir = Path.Combine(_dir.Path, format);
        TestImporters.Registry.Get(format).Import(input, outDir, new ImportOptions());
        var requests = ResultWriter.ReadRequestsAsync(Path.Combine(outDir, MeasuredRun.RequestsFile)).GetAwaiter().GetResult();
        var trace = RequestTraceWorkload.Load(Path.Combine(outDir, MeasuredRun.TraceFile), "parquet");
        return (requests, trace);
    }

    [SharedDataFact]
    public void LlmServingSimRun_ReproducesTheMeansLlmServingSimReportsForTheSameRun()
    {
        var (requests, trace) = Import("llmservingsim-run", LlmServingSimRun);
        Assert.Equal(300, requests.Count);
        // validation/summary.txt, vLLM column: TTFT 7097.2, TPOT 32.5, latency 28200.7 ms (queued_ts anchored).
        Assert.Equal(7097.2, requests.Average(r => r.TtftMs!.Value), 1);
        Assert.Equal(32.5, requests.Average(r => r.TpotMs!.Value), 1);
        Assert.Equal(28200.7, requests.Average(r => r.E2elMs!.Value), 1);
        // The trace is the run's requests in arrival order, arrivals as the measurement has them.
        Assert.Equal(requests.Select(r => (r.PromptTokens, r.OutputTokens)), trace.Select(t => (t.PromptTokens, t.AnswerTokens)));
        Assert.All(requests.Zip(trace), p => Assert.Equal(p.First.ArrivalTimeS, p.Second.ArrivalTimeS, 9));
        Assert.Equal(0, requests[0].ArrivalTimeS);
    }

    [SharedDataFact]
    public void DistServeRun_IsInArrivalOrderAndReproducesItsSummaryLine()
    {
        var input = Path.Combine(SharedData.Root!, "validation", "distserve", "opt-13b-sharegpt", "vllm-100-1.exp");
        var (requests, trace) = Import("distserve-run", input);
        Assert.Equal(100, requests.Count);
        Assert.Equal(161.2, requests.Average(r => r.TtftMs!.Value), 1);   // line 3: avg_ttft_ms 161.2003805860877
        Assert.True(requests.Zip(requests.Skip(1)).All(p => p.First.ArrivalTimeS <= p.Second.ArrivalTimeS));
        // The workload file beside it lists the same requests in that order (checked by the importer): first 55/4.
        Assert.Equal((55, 4), (trace[0].PromptTokens, trace[0].AnswerTokens));
    }

    [Fact]
    public void VllmBench_FirstTokenAfterTtftAndLastAfterTheInterTokenLatencies()
    {
        var file = _dir.File("bench.json", """
            {"backend": "vllm", "model_id": "m", "input_lens": [10, 20], "output_lens": [3, 2],
             "ttfts": [0.1, 0.2], "itls": [[0.01, 0.02], [0.05]], "start_times": [100.0, 100.5], "errors": ["", ""]}
            """);
        var (requests, trace) = Import("vllm-bench", file);
        Assert.Equal([130.0, 250.0], requests.Select(r => Math.Round(r.E2elMs!.Value, 6)));
        Assert.Equal([100.0, 200.0], requests.Select(r => Math.Round(r.TtftMs!.Value, 6)));
        Assert.Equal([0.0, 0.5], trace.Select(t => Math.Round(t.ArrivalTimeS, 9)));
    }

    [Theory]
    [InlineData("""{"input_toks": 5, "output_toks": 3, "queued_ts": 1.0, "first_token_ts": 1.5}""", "line 2: last_token_ts: missing")]
    [InlineData("""{"input_toks": 5, "output_toks": 3, "queued_ts": "soon", "first_token_ts": 1.5, "last_token_ts": 2}""", "line 2: queued_ts: not a number")]
    [InlineData("""{"input_toks": 5, "output_toks": 0, "queued_ts": 1.0, "first_token_ts": 1.5, "last_token_ts": 2}""", "line 2: output_toks: zero output tokens")]
    [InlineData("""{"input_toks": 5, "output_toks": 3, "queued_ts": 0.5, "first_token_ts": 1.5, "last_token_ts": 2}""", "line 2: queued_ts: 0.5 is earlier than the previous request's (1)")]
    public void LlmServingSimRun_BadLine_IsOneLineNamingFileLineAndField_AndWritesNothing(string second, string expected)
    {
        var run = Path.Combine(_dir.Path, "run");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "meta.json"), """{"vllm_version": "0.19.0"}""");
        var requests = Path.Combine(run, "requests.jsonl");
        File.WriteAllText(requests, """{"input_toks": 5, "output_toks": 3, "queued_ts": 1.0, "first_token_ts": 1.5, "last_token_ts": 2}""" + "\n" + second + "\n");
        var outDir = Path.Combine(_dir.Path, "out");
        var e = Assert.Throws<UserInputException>(() => TestImporters.Registry.Get("llmservingsim-run").Import(run, outDir, new ImportOptions()));
        Assert.Equal($"{requests}: {expected}", e.Message[..(requests.Length + 2 + expected.Length)]);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir).Any());
    }

    [Theory]
    [InlineData("{'prompt_len': 5, 'output_len': 3, 'issue_time': 2.0, 'first_token_time': 2.5}", "request [1]: complete_time: missing")]
    [InlineData("{'prompt_len': 5, 'output_len': 3, 'issue_time': 'soon', 'first_token_time': 2.5, 'complete_time': 3.0}", "request [1]: issue_time: not a number")]
    [InlineData("{'prompt_len': 5, 'output_len': 3, 'issue_time': None, 'first_token_time': 2.5, 'complete_time': 3.0}", "request [1]: issue_time: missing")]
    [InlineData("{'prompt_len': 5, 'output_len': 0, 'issue_time': 2.0, 'first_token_time': 2.5, 'complete_time': 3.0}", "request [1]: output_len: zero output tokens")]
    public void DistServeRun_BadRequest_IsOneLineNamingFileLineAndField_AndWritesNothing(string second, string expected)
    {
        // The .exp file's first line is the Python-literal list of measured requests (in completion order).
        var exp = _dir.File("vllm-1-1.exp", "[{'prompt_len': 5, 'output_len': 3, 'issue_time': 1.0, 'first_token_time': 1.5, 'complete_time': 2.0}, "
            + second + "]\nsummary line\n");
        var outDir = Path.Combine(_dir.Path, "out");
        var e = Assert.Throws<UserInputException>(() => TestImporters.Registry.Get("distserve-run").Import(exp, outDir, new ImportOptions()));
        Assert.StartsWith($"{exp}: line 1: {expected}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir).Any());
    }

    [Fact]
    public void VllmBench_FailedRequestOrShortList_IsBadInput()
    {
        var failed = _dir.File("failed.json", """
            {"input_lens": [10], "output_lens": [0], "ttfts": [0], "itls": [[]], "start_times": [1.0], "errors": ["timeout"]}
            """);
        var e = Assert.Throws<UserInputException>(() => TestImporters.Registry.Get("vllm-bench").Import(failed, Path.Combine(_dir.Path, "o1"), new ImportOptions()));
        Assert.StartsWith($"{failed}: errors[0]: the request failed", e.Message);
        var shortList = _dir.File("short.json", """{"input_lens": [10, 11], "output_lens": [3], "ttfts": [0.1], "itls": [[0.1]], "start_times": [1.0]}""");
        e = Assert.Throws<UserInputException>(() => TestImporters.Registry.Get("vllm-bench").Import(shortList, Path.Combine(_dir.Path, "o2"), new ImportOptions()));
        Assert.Equal($"{shortList}: output_lens: 1 entries, but input_lens has 2", e.Message);
    }
}
