using System.Globalization;
using System.Text.Json.Nodes;
using RLMServing.Bench;
using RLMServing.IO.ParquetFiles;
using RLMServing.Tests.Cli;
using Xunit;
using static RLMServing.Tests.Bench.FakeOpenAiServer;
using static RLMServing.Tests.Bench.StreamTimingTests;

namespace RLMServing.Tests.Bench;

/// <summary>rlms bench --evaluate against a fake server that answers GSM8K questions right or wrong on purpose.</summary>
public class EvaluateTests
{
    private static readonly Dictionary<string, long> References = File.ReadLines(BenchDatasets.Gsm8kPath)
        .Select(l => JsonNode.Parse(l)!)
        .ToDictionary(n => (string)n["question"]!, n => long.Parse(((string)n["answer"]!).Split("####")[^1].Trim().Replace(",", ""), CultureInfo.InvariantCulture));

    /// <summary>What the fake server does with a question, fixed by the question: 0 right, 1 wrong, 2 right in the reasoning only, 3 fails.</summary>
    private static int Kind(string question) => question.Sum(c => c) % 4;

    private static FakeReply Answer(JsonObject body)
    {
        string question = (string)body["messages"]![0]!["content"]!;
        long n = References[question];
        var steps = new List<FakeStep> { new(0, Role()), new(0, Reasoning("Let me add the numbers: 3 + 4 = 7, then 12 / 2 = 6. ")) };
        switch (Kind(question))
        {
            case 0: steps.Add(new(0, Content($"The total comes to ${n.ToString("N0", CultureInfo.InvariantCulture)}.", "stop"))); break;
            case 1: steps.Add(new(0, Content($"The answer is {n + 1}.", "stop"))); break;
            case 2: steps.Add(new(0, Reasoning($"So the answer is {n}"))); break;
            default: return new FakeReply([], 500, """{"error":{"message":"boom"}}""");
        }
        steps.Add(new(0, Usage(20, 30, 20)));
        steps.Add(new(0, Done));
        return new FakeReply(steps);
    }

    [Fact]
    public async Task AccuracyIsExactlyTheShareOfRightAnswers()
    {
        await using var server = await StartAsync((_, body) => Answer(body));
        var options = Options(server, prompts: 24) with { DatasetName = "gsm8k", Evaluate = true, MaxConcurrency = 4, Seed = 5 };
        using (var runner = new BenchRunner(options)) await runner.RunAllAsync();

        var kinds = server.Bodies.Select(b => Kind((string)b["messages"]![0]!["content"]!)).ToList();
        Assert.Equal(24, kinds.Count);
        Assert.All(new[] { 0, 1, 2, 3 }, k => Assert.Contains(k, kinds));   // the seed's draw covers every case
        int graded = kinds.Count(k => k < 3), correct = kinds.Count(k => k is 0 or 2);

        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(options.ResultDir, "summary.json")))!;
        Assert.Equal("gsm8k", (string)summary["grader"]!);
        Assert.Equal(graded, (int)summary["graded"]!);
        Assert.Equal(kinds.Count(k => k == 2), (int)summary["graded_from_reasoning"]!);
        Assert.Equal((double)correct / graded, (double)summary["accuracy"]!, 12);

        var file = Path.Combine(options.ResultDir, "requests.parquet");
        await using var reader = RLMServing.IO.ParquetFiles.ParquetColumns.Open(file);
        using var g = reader.OpenRowGroupReader(0);
        var status = await g.ReadStrings(reader.Field("status", file));
        var reference = await g.ReadStrings(reader.Field("reference_answer", file));
        var extracted = await g.ReadStrings(reader.Field("answer_extracted", file));
        var right = await g.ReadNullable<bool>(reader.Field("correct", file));
        var channel = await g.ReadStrings(reader.Field("graded_channel", file));
        var rows = status.Select((st, i) => (Status: st, Reference: reference[i], Extracted: extracted[i], Correct: right[i], Channel: channel[i])).ToList();
        Assert.Equal(24, rows.Count);
        foreach (var r in rows)
        {
            if (r.Status != "completed") { Assert.Null(r.Correct); Assert.Null(r.Extracted); continue; }
            long n = long.Parse(r.Reference!.Split("####")[^1].Trim().Replace(",", ""), CultureInfo.InvariantCulture);
            Assert.NotNull(r.Correct);
            Assert.Equal(r.Correct == true ? n : n + 1, long.Parse(r.Extracted!, CultureInfo.InvariantCulture));
            Assert.Contains(r.Channel, new[] { "answer", "reasoning" });
        }
        Assert.Equal(correct, rows.Count(r => r.Correct == true));
    }

    [Fact]
    public async Task TheCommandPrintsAccuracyAndRefusesWhatItCannotGrade()
    {
        await using var server = await StartAsync((_, body) => Answer(body));
        var dir = Path.Combine(RlmsProcess.TempDir(), "bench");
        var bench = RlmsProcess.Run("bench", "--base-url", server.BaseUrl, "--model", "m", "--dataset-name", "gsm8k", "--num-prompts", "8",
            "--seed", "5", "--result-dir", dir, "--ready-check-timeout-sec", "0", "--evaluate", "--quiet");
        Assert.True(bench.ExitCode == 0, bench.Stderr + bench.Stdout);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!;
        double accuracy = (double)summary["accuracy"]!;
        Assert.Contains($"accuracy: {(100 * accuracy).ToString("F1", CultureInfo.InvariantCulture)}% of {(int)summary["graded"]!} graded (gsm8k rule)", bench.Stdout);

        foreach (var (args, message) in new[]
                 {
                     (new[] { "--dataset-name", "random", "--evaluate" }, "--evaluate: --dataset-name random has no reference answers"),
                     (new[] { "--dataset-name", "math500", "--evaluate" }, "synthesised"),
                     (new[] { "--dataset-name", "gsm8k", "--grader", "gsm8k" }, "--grader: only applies with --evaluate"),
                     (new[] { "--dataset-name", "gsm8k", "--evaluate", "--grader", "mmlu" }, "--grader: no grading rule for 'mmlu'"),
                 })
        {
            var bad = RlmsProcess.Run(["bench", "--base-url", server.BaseUrl, "--model", "m", "--ready-check-timeout-sec", "0", .. args]);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains(message, bad.Stderr);
            Assert.Single(bad.Stderr.Trim().Split('\n'));
        }
    }

    [Fact]
    public async Task ACustomDatasetIsGradedByTheNamedRule()
    {
        await using var server = await StartAsync((i, _) => new FakeReply([new(0, Role()), new(0, Content(i == 0 ? "The answer is \\boxed{B}" : "Answer: (A)", "stop")), new(0, Done)]));
        var path = Path.Combine(RlmsProcess.TempDir(), "q.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"Which? (A) x (B) y\", \"answer\": \"B\"}\n{\"prompt\": \"Which? (A) x (B) y\", \"answer\": \"(B)\"}\n{\"prompt\": \"no reference\"}\n");
        var options = Options(server, prompts: 3) with { DatasetName = "custom", DatasetPath = path, Evaluate = true, Grader = "gpqa", MaxConcurrency = 1 };
        using var runner = new BenchRunner(options);
        var result = Assert.Single(await runner.RunAllAsync());
        Assert.Equal([true, false, null], result.Run.Outcomes.Select(o => o.Correct));
        Assert.Equal(0.5, (double)result.Summary.Json["accuracy"]!);
        Assert.Throws<UserInputException>(() => new BenchRunner(options with { Grader = null }));
    }
}
