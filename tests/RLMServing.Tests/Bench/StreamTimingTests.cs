using RLMServing.Bench;
using Xunit;
using static RLMServing.Tests.Bench.FakeOpenAiServer;

namespace RLMServing.Tests.Bench;

/// <summary>Reasoning-aware timing: which chunk starts TTFT and TTFAT, what ITL measures, where token counts come from.</summary>
public class StreamTimingTests
{
    internal static BenchOptions Options(FakeOpenAiServer server, int prompts = 1) => new()
    {
        BaseUrl = server.BaseUrl,
        Model = "fake-model",
        NumPrompts = prompts,
        InputLen = 8,
        OutputLen = 4,
        ReadyCheckTimeoutSec = 0,
        RequestTimeoutS = 30,
        ResultDir = Cli.RlmsProcess.TempDir(),
    };

    /// <summary>One request against the server; its outcome (completed) and the run's start timestamp.</summary>
    private static async Task<(RequestOutcome Outcome, long T0)> RunOneAsync(FakeOpenAiServer server)
    {
        var options = Options(server);
        using var runner = new BenchRunner(options);
        var run = await runner.RunAsync(BenchDatasets.Load(options));
        var o = Assert.Single(run.Outcomes);
        Assert.Equal(RequestOutcome.Completed, o.Status);
        return (o, runner.Counters.StartTimestamp);
    }

    internal static async Task<BenchRun> RunAsync(BenchOptions options)
    {
        using var runner = new BenchRunner(options);
        return await runner.RunAsync(BenchDatasets.Load(options));
    }

    [Theory]
    [InlineData("reasoning")]
    [InlineData("reasoning_content")]
    public async Task TtftIsTheFirstTextOnEitherChannelAndTtfatTheFirstAnswerChunk(string field)
    {
        // The role chunk comes at once; the first reasoning text 150 ms later; the first answer 150 ms after that.
        await using var server = await StartAsync((_, _) => new FakeReply(
        [
            new(0, Role()),
            new(150, Reasoning("let me think", field)),
            new(20, Reasoning(" more", field)),
            new(150, Content("42")),
            new(20, Content(".", "stop")),
            new(0, Usage(12, 4, 2)),
            new(0, Done),
        ]));
        var (o, t0) = await RunOneAsync(server);
        double roleSent = server.SentAtS(0, 0, t0), firstReasoningSent = server.SentAtS(0, 1, t0);
        double firstAnswerSent = server.SentAtS(0, 3, t0);
        // Not the role chunk: the first text was flushed 150 ms after it, and the client cannot have seen it earlier.
        Assert.True(o.FirstTokenS >= firstReasoningSent, $"TTFT at {o.FirstTokenS} before the first reasoning chunk was sent at {firstReasoningSent}");
        Assert.True(o.FirstTokenS >= roleSent + 0.1);
        Assert.True(o.FirstTokenS < firstAnswerSent, "the first text is the reasoning, seen before any answer was sent");
        Assert.True(o.FirstAnswerS >= firstAnswerSent);
        Assert.Equal(4, o.Chunks.Count);
        Assert.Equal([Channel.Reasoning, Channel.Reasoning, Channel.Answer, Channel.Answer], o.Chunks.Select(c => c.Channel));
        Assert.Equal("42.", o.OutputText);
    }

    [Fact]
    public async Task DeltasAreStampedWhenTheirBytesArriveNotAfterParsing()
    {
        // Two deltas in one write reach the client in one read: both were in hand at that read's return, so they share
        // its time exactly. Stamped after parsing, the second would be later by the first one's JSON parse.
        string twoInOne = Reasoning("a") + "\n\ndata: " + Content("b");
        await using var server = await StartAsync((_, _) => new FakeReply(
            [new(0, Role()), new(30, twoInOne), new(30, Content("c", "stop")), new(0, Usage(4, 3, 1)), new(0, Done)]));
        var (o, t0) = await RunOneAsync(server);
        Assert.Equal([Channel.Reasoning, Channel.Answer, Channel.Answer], o.Chunks.Select(c => c.Channel));
        Assert.Equal(o.Chunks[0].TimeS, o.Chunks[1].TimeS);
        Assert.True(o.Chunks[0].TimeS >= server.SentAtS(0, 1, t0), "stamped before the server began writing the deltas");
        Assert.True(o.Chunks[2].TimeS >= server.SentAtS(0, 2, t0));
        Assert.Equal(o.Chunks[0].TimeS, o.FirstTokenS);
        Assert.Equal(o.Chunks[1].TimeS, o.FirstAnswerS);
        Assert.Equal("bc", o.OutputText);
    }

    [Fact]
    public async Task ItlIsTheGapBetweenSuccessiveTextChunks()
    {
        await using var server = await StartAsync((_, _) => Chat(thinking: 3, answer: 3, gapMs: 40));
        var run = await RunAsync(Options(server));
        var o = Assert.Single(run.Outcomes);
        var itl = o.ItlMs().ToList();
        Assert.Equal(5, itl.Count);
        // Gaps between the client's chunk times; a late read shortens the next gap, so only their sum is exact.
        Assert.Equal((o.Chunks[^1].TimeS - o.Chunks[0].TimeS) * 1000, itl.Sum(), 6);
        Assert.True(itl.Average() >= 20, $"mean gap {itl.Average()} ms is far below the server's 40 ms pacing");
        var summary = BenchSummary.Build(run, Options(server));
        Assert.Equal(itl.Average(), summary.Summary.MeanItlMs, 1);
    }

    [Fact]
    public async Task TokensComeFromUsageWhenTheServerReportsThem()
    {
        // Usage says 50 output tokens of which 30 thinking, though only 5 chunks arrived (several tokens per chunk).
        await using var server = await StartAsync((_, _) => new FakeReply(
            [new(0, Role()), new(0, Reasoning("abc")), new(0, Reasoning("def")), new(0, Content("x")), new(0, Content("y")), new(0, Content("z", "stop")),
             new(0, Usage(7, 50, 30)), new(0, Done)]));
        var o = Assert.Single((await RunAsync(Options(server))).Outcomes);
        Assert.Equal(("usage", 50, 30, 7), (o.TokenCountSource, o.OutputTokens, o.ThinkingTokens, o.PromptTokens));
    }

    [Fact]
    public async Task UsageWithoutReasoningDetailsTakesThinkingFromChunks()
    {
        await using var server = await StartAsync((_, _) => new FakeReply(
            [new(0, Reasoning("a")), new(0, Reasoning("b")), new(0, Content("c", "stop")), new(0, Usage(7, 3)), new(0, Done)]));
        var o = Assert.Single((await RunAsync(Options(server))).Outcomes);
        Assert.Equal(("usage+chunks", 3, 2), (o.TokenCountSource, o.OutputTokens, o.ThinkingTokens));
    }

    [Fact]
    public async Task WithoutUsageTokensAreCountedChunks()
    {
        await using var server = await StartAsync((_, _) => Chat(thinking: 4, answer: 2, usage: false));
        var options = Options(server);
        var o = Assert.Single((await RunAsync(options)).Outcomes);
        Assert.Equal(("chunks", 6, 4), (o.TokenCountSource, o.OutputTokens, o.ThinkingTokens));
        Assert.Equal(options.InputLen, o.PromptTokens);
    }

    [Fact]
    public async Task ChatRequestsAskForUsageAndCarryTheFlags()
    {
        await using var server = await StartAsync((_, _) => Chat(1, 1));
        var options = Options(server) with { ServedModelName = "served", IgnoreEos = true, TopP = 0.5, ExtraBody = new() { ["chat_template_kwargs"] = new System.Text.Json.Nodes.JsonObject { ["enable_thinking"] = false } } };
        await RunAsync(options);
        var body = Assert.Single(server.Bodies);
        Assert.Equal("served", (string?)body["model"]);
        Assert.True((bool)body["stream_options"]!["include_usage"]!);
        Assert.Equal(4, (int)body["max_completion_tokens"]!);
        Assert.True((bool)body["ignore_eos"]!);
        Assert.Equal(0.5, (double)body["top_p"]!);
        Assert.Equal(0.0, (double)body["temperature"]!);
        Assert.False((bool)body["chat_template_kwargs"]!["enable_thinking"]!);
    }

    [Fact]
    public async Task ResponsesEventsAreReadOnBothChannels()
    {
        await using var server = await StartAsync((_, _) => new FakeReply(
        [
            new(0, """{"type":"response.created","response":{}}""", "response.created"),
            new(30, """{"type":"response.reasoning_text.delta","delta":"hmm"}""", "response.reasoning_text.delta"),
            new(30, """{"type":"response.output_text.delta","delta":"4"}""", "response.output_text.delta"),
            new(0, """{"type":"response.completed","response":{"usage":{"input_tokens":9,"output_tokens":6,"output_tokens_details":{"reasoning_tokens":5}}}}""", "response.completed"),
        ]));
        var options = Options(server) with { Backend = BenchBackends.OpenAiResponses };
        var o = Assert.Single((await RunAsync(options)).Outcomes);
        Assert.Equal(RequestOutcome.Completed, o.Status);
        Assert.Equal([Channel.Reasoning, Channel.Answer], o.Chunks.Select(c => c.Channel));
        Assert.Equal(("usage", 6, 5, 9), (o.TokenCountSource, o.OutputTokens, o.ThinkingTokens, o.PromptTokens));
        Assert.True(o.FirstAnswerS > o.FirstTokenS);
        Assert.Equal(4, (int)Assert.Single(server.Bodies)["max_output_tokens"]!);
    }

    [Fact]
    public async Task CompletionsAndTgiStreamsAreRead()
    {
        await using var completions = await StartAsync((_, _) => new FakeReply(
            [new(0, """{"choices":[{"text":"a"}]}"""), new(0, """{"choices":[{"text":"b","finish_reason":"length"}]}"""),
             new(0, """{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"""), new(0, Done)]));
        var o = Assert.Single((await RunAsync(Options(completions) with { Backend = BenchBackends.OpenAi })).Outcomes);
        Assert.Equal(("usage", 2, "ab", "length"), (o.TokenCountSource, o.OutputTokens, o.OutputText, o.FinishReason));
        Assert.Equal(4, (int)Assert.Single(completions.Bodies)["max_tokens"]!);

        await using var tgi = await StartAsync((_, _) => new FakeReply(
            [new(0, """{"token":{"id":1,"text":"x","special":false}}"""), new(0, """{"token":{"id":2,"text":"</s>","special":true},"generated_text":"x","details":{"finish_reason":"eos_token","generated_tokens":2}}""")]));
        var t = Assert.Single((await RunAsync(Options(tgi) with { Backend = BenchBackends.Tgi })).Outcomes);
        Assert.Equal((RequestOutcome.Completed, 2, "x"), (t.Status, t.OutputTokens, t.OutputText));
        Assert.Equal(4, (int)Assert.Single(tgi.Bodies)["parameters"]!["max_new_tokens"]!);
    }
}
