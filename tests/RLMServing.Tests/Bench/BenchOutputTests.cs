using System.Text.Json;
using System.Text.Json.Nodes;
using RLMServing.Bench;
using RLMServing.Cli;
using RLMServing.Cli.Commands;
using RLMServing.IO.ParquetFiles;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using Xunit;
using static RLMServing.Tests.Bench.FakeOpenAiServer;
using static RLMServing.Tests.Bench.StreamTimingTests;

namespace RLMServing.Tests.Bench;

/// <summary>What a benchmark writes: the simulator's files (read back by the simulator's readers), chunks, vLLM's file, budgets.</summary>
public class BenchOutputTests
{
    private static async Task<IReadOnlyList<BenchResult>> RunAllAsync(BenchOptions options)
    {
        using var runner = new BenchRunner(options);
        return await runner.RunAllAsync();
    }

    /// <summary>A Parquet file's column names, and each column as text (strings) or numbers.</summary>
    private static async Task<(string[] Names, Dictionary<string, string?[]> Text, Dictionary<string, double?[]> Numbers)> ReadParquet(string path)
    {
        await using var reader = ParquetColumns.Open(path);
        var text = new Dictionary<string, string?[]>();
        var numbers = new Dictionary<string, double?[]>();
        using var g = reader.OpenRowGroupReader(0);
        foreach (var f in reader.Schema.DataFields)
        {
            if (f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>)) text[f.Name] = await g.ReadStrings(f);
            else if (f.ClrType == typeof(double) || f.ClrType == typeof(long) || f.ClrType == typeof(int))
                numbers[f.Name] = ParquetColumns.ReadNumbers(path, g, f, (int)g.RowCount);
        }
        return (reader.Schema.DataFields.Select(f => f.Name).ToArray(), text, numbers);
    }

    [Fact]
    public async Task ARunWritesTheSimulatorsFilesThatItsReadersRead()
    {
        await using var server = await StartAsync((i, _) => i == 2 ? new FakeReply([], 503, """{"error":{"message":"overloaded"}}""") : Chat(2, 3, gapMs: 2));
        var options = Options(server, prompts: 4) with { VllmJson = true, MaxConcurrency = 1, Label = "fake", Metadata = new Dictionary<string, string> { ["gpu"] = "none" } };
        var result = Assert.Single(await RunAllAsync(options));
        var dir = result.Directory;
        Assert.Equal(options.ResultDir, dir);

        var rows = await ResultWriter.ReadRequestsAsync(Path.Combine(dir, "requests.parquet"));
        Assert.Equal(4, rows.Count);
        Assert.Equal(3, rows.Count(r => r.Status == RequestStatus.Completed));
        Assert.All(rows.Where(r => r.Status == RequestStatus.Completed), r => Assert.Equal((5, 2), (r.OutputTokens, r.ThinkingTokens)));
        var (names, text, _) = await ReadParquet(Path.Combine(dir, "requests.parquet"));
        Assert.Equal(ResultWriter.RequestSchema.DataFields.Select(f => f.Name), names.Take(ResultWriter.RequestSchema.DataFields.Length));
        Assert.Equal(new[] { "completed", "completed", "failed", "completed" }, text["status"]);
        Assert.Equal("HTTP 503: overloaded", text["error"][2]);
        Assert.Equal("usage", text["token_count_source"][0]);
        Assert.Contains("scheduled_time_s", names);
        Assert.Contains("send_time_s", names);

        var summary = JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(Path.Combine(dir, "summary.json")), ResultWriter.Json)!;
        Assert.Equal((3, 1, "fake"), (summary.Completed, summary.Failed, summary.Scenario));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!;
        Assert.Equal("none", (string?)json["gpu"]);
        Assert.NotNull(json["p99_ttft_ms"]);
        Assert.Equal(3, (int)json["token_count_source"]!["usage"]!);

        var (chunkNames, chunkText, chunkNumbers) = await ReadParquet(Path.Combine(dir, "chunks.parquet"));
        Assert.Equal(["request", "sequence", "time", "channel", "characters"], chunkNames);
        Assert.Equal(15, chunkNumbers["request"].Length);
        Assert.Equal(6, chunkText["channel"].Count(c => c == "reasoning"));

        Assert.NotEmpty(await ResultWriter.ReadTimeseriesAsync(Path.Combine(dir, "timeseries.parquet")));

        var vllm = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, BenchResultWriter.VllmResultFile)))!;
        Assert.Equal((3, 1), ((int)vllm["completed"]!, (int)vllm["failed"]!));
        Assert.Equal(4, vllm["ttfts"]!.AsArray().Count);
        Assert.Equal("overloaded", ((string?)vllm["errors"]![2])!.Split(": ")[1]);
        Assert.Equal("none", (string?)vllm["gpu"]);
        foreach (var key in new[] { "mean_ttft_ms", "median_tpot_ms", "std_itl_ms", "p99_itl_ms", "request_throughput", "output_throughput", "max_concurrent_requests" })
            Assert.NotNull(vllm[key]);
    }

    [Fact]
    public async Task ValidateAndReportReadABenchmarkFolder()
    {
        await using var server = await StartAsync((_, _) => Chat(2, 2, gapMs: 1));
        var options = Options(server, prompts: 5);
        await RunAllAsync(options);
        var requests = Path.Combine(options.ResultDir, "requests.parquet");
        var saved = Console.Out;
        Console.SetOut(TextWriter.Null);
        try
        {
            Assert.Equal(0, CliHost.Run(["validate", "--measured", requests, "--predicted", requests], [typeof(ValidateCommand)]));
        }
        finally { Console.SetOut(saved); }
        var input = Assert.IsType<RLMServing.Reports.RunsInput>(await RLMServing.Reports.ReportInputLoader.LoadAsync(options.ResultDir));
        Assert.Equal(5, Assert.Single(input.Runs).Requests.Count);
    }

    [Fact]
    public async Task TokenBudgetsRunTheSamePromptsOncePerBudgetEachInItsFolder()
    {
        await using var server = await StartAsync((_, body) =>
        {
            int max = (int)body["max_completion_tokens"]!;
            return new FakeReply([new(0, Reasoning("t")), new(0, Content("a", max <= 8 ? "length" : "stop")), new(0, Usage(5, Math.Min(max, 2), 1)), new(0, Done)]);
        });
        var options = Options(server, prompts: 3) with { TokenBudgets = [8, 64] };
        var results = await RunAllAsync(options);
        Assert.Equal([8, 64], results.Select(r => r.TokenBudget!.Value));
        foreach (var b in new[] { 8, 64 })
            Assert.True(File.Exists(Path.Combine(options.ResultDir, $"budget-{b}", "requests.parquet")));
        var bodies = server.Bodies.ToList();
        Assert.Equal([8, 8, 8, 64, 64, 64], bodies.Select(b => (int)b["max_completion_tokens"]!));
        var prompts = bodies.Select(b => (string)b["messages"]![0]!["content"]!).ToList();
        Assert.Equal(prompts.Take(3).Order(), prompts.Skip(3).Order());
        var comparison = JsonNode.Parse(File.ReadAllText(Path.Combine(options.ResultDir, "comparison.json")))!["token_budgets"]!.AsArray();
        Assert.Equal(["budget-8", "budget-64"], comparison.Select(r => (string)r!["folder"]!));
        Assert.Equal([1.0, 0.0], comparison.Select(r => (double)r!["length_capped_share"]!));
        var report = Assert.IsType<RLMServing.Reports.RunsInput>(await RLMServing.Reports.ReportInputLoader.LoadAsync(options.ResultDir));
        Assert.Equal(["budget-8", "budget-64"], report.Runs.Select(r => r.Name));
    }

    [Fact]
    public async Task WithIgnoreEosEachBudgetCapsTheRequestsOwnLengthInsteadOfReplacingIt()
    {
        await using var server = await StartAsync((_, _) => new FakeReply([new(0, Content("a", "length")), new(0, Usage(5, 1, 0)), new(0, Done)]));
        // math500's preset draws each request's length (hundreds to thousands of tokens); a standard model's answers are shorter.
        var options = Options(server, prompts: 40) with { DatasetName = "math500", IgnoreEos = true, TokenBudgets = [64, 1_000_000] };
        await RunAllAsync(options);
        var bodies = server.Bodies.ToList();
        Assert.All(bodies, b => Assert.True((bool)b["ignore_eos"]!));
        var small = bodies.Take(40).Select(b => (int)b["max_completion_tokens"]!).ToList();
        var large = bodies.Skip(40).Select(b => (int)b["max_completion_tokens"]!).ToList();
        Assert.All(small, m => Assert.Equal(64, m));                  // every drawn length is above 64: cut at the budget
        Assert.True(large.Distinct().Count() > 20);                    // under a budget nothing reaches: the lengths as drawn
        Assert.All(large, m => Assert.InRange(m, 65, 999_999));

        await using var standard = await StartAsync((_, _) => new FakeReply([new(0, Content("a", "length")), new(0, Usage(5, 1, 0)), new(0, Done)]));
        await RunAllAsync(Options(standard, prompts: 40) with { DatasetName = "math500", IgnoreEos = true, PresetLengths = "standard", TokenBudgets = [1_000_000] });
        var answers = standard.Bodies.Select(b => (int)b["max_completion_tokens"]!).ToList();
        Assert.True(answers.Average() < large.Average() / 2, $"standard {answers.Average()} vs reasoning {large.Average()}");
    }

    [Fact]
    public async Task ScrapedServerMetricsLandInTheTimeseries()
    {
        await using var server = await StartAsync((_, _) => Chat(1, 1, gapMs: 150));
        int scrapes = 0;
        server.Metrics = () =>
        {
            int n = Interlocked.Increment(ref scrapes);
            return $"""
                # HELP vllm:num_requests_running Number of requests in model execution batches.
                # TYPE vllm:num_requests_running gauge
                vllm:num_requests_running{"{"}model_name="fake",engine="0"{"}"} 3
                vllm:num_requests_running{"{"}model_name="fake",engine="1"{"}"} 2
                vllm:num_requests_waiting{"{"}model_name="fake"{"}"} 7
                vllm:kv_cache_usage_perc{"{"}model_name="fake"{"}"} 0.25
                vllm:num_preemptions_total{"{"}model_name="fake"{"}"} {n}
                vllm:spec_decode_num_accepted_tokens_total{"{"}model_name="fake"{"}"} 1.5e3

                """;
        };
        var options = Options(server, prompts: 2) with { ScrapeMetricsIntervalS = 0.05 };
        var result = Assert.Single(await RunAllAsync(options));
        var points = await ResultWriter.ReadTimeseriesAsync(Path.Combine(options.ResultDir, "timeseries.parquet"));
        Assert.True(points.Count >= 3);
        Assert.All(points.Skip(1), p => Assert.Equal((5, 7, 0.25), (p.Running, p.Waiting, p.KvUsage)));
        var (_, _, series) = await ReadParquet(Path.Combine(options.ResultDir, "timeseries.parquet"));
        Assert.Contains(1500.0, series["spec_decode_num_accepted_tokens_total"]);
        Assert.Equal(0.25, result.Summary.Summary.PeakKvCacheUsage);
        Assert.True(result.Summary.Summary.Preemptions >= 1);
    }

    [Fact]
    public void PrometheusTextSumsLabelSetsAndSkipsComments()
    {
        var m = PrometheusText.Parse("""
            # HELP x help
            # TYPE x gauge
            x{a="1",b="with } brace"} 2
            x{a="2"} 3.5 1700000000000
            y 1e2
            z NaN
            bad_line_without_value
            """);
        Assert.Equal(5.5, m["x"]);
        Assert.Equal(100, m["y"]);
        Assert.True(double.IsNaN(m["z"]));
        Assert.False(m.ContainsKey("bad_line_without_value"));
    }

    [Fact]
    public async Task Gsm8kSendsRealQuestionsAndKeepsTheirReferenceAnswers()
    {
        await using var server = await StartAsync((_, _) => Chat(1, 1));
        var options = Options(server, prompts: 3) with { DatasetName = "gsm8k", MaxConcurrency = 1 };
        await RunAllAsync(options);
        var questions = File.ReadLines(BenchDatasets.Gsm8kPath).Select(l => JsonNode.Parse(l)!).ToDictionary(n => (string)n["question"]!, n => (string)n["answer"]!);
        Assert.Equal(1319, questions.Count);
        var sent = server.Bodies.Select(b => (string)b["messages"]![0]!["content"]!).ToList();
        Assert.All(sent, q => Assert.True(questions.ContainsKey(q), "a sent prompt is not a GSM8K question"));
        var (_, columns, _) = await ReadParquet(Path.Combine(options.ResultDir, "requests.parquet"));
        var answers = columns["reference_answer"];
        for (int i = 0; i < sent.Count; i++) Assert.Equal(questions[sent[i]], answers[i]);
        Assert.All(answers, a => Assert.Contains("#### ", a));
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(BenchDatasets.Gsm8kPath)!, "LICENSE.txt")));
    }

    [Fact]
    public void CustomDatasetErrorsNameTheLine()
    {
        var dir = Cli.RlmsProcess.TempDir();
        var path = Path.Combine(dir, "prompts.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"hello\", \"max_tokens\": 7}\n{\"text\": \"no prompt\"}\n");
        var e = Assert.Throws<UserInputException>(() => BenchDatasets.Load(new BenchOptions { Model = "m", DatasetName = "custom", DatasetPath = path }));
        Assert.Contains("prompts.jsonl:2", e.Message);
        File.WriteAllText(path, "{\"prompt\": \"hello\", \"max_tokens\": 7}\n");
        var p = Assert.Single(BenchDatasets.Load(new BenchOptions { Model = "m", DatasetName = "custom", DatasetPath = path }));
        Assert.Equal(("hello", 7), (p.Prompt, p.MaxTokens));
    }
}
