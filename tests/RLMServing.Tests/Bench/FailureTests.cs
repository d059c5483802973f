using RLMServing.Bench;
using RLMServing.Metrics;
using Xunit;
using static RLMServing.Tests.Bench.FakeOpenAiServer;
using static RLMServing.Tests.Bench.StreamTimingTests;

namespace RLMServing.Tests.Bench;

/// <summary>Failed, timed-out, cut and cancelled requests are rows with a status and an error, never latency samples.</summary>
public class FailureTests
{
    [Fact]
    public async Task HttpErrorsAreFailedRowsWithTheServersMessage()
    {
        await using var server = await StartAsync((i, _) => i == 1
            ? new FakeReply([], 400, """{"error":{"message":"max_tokens is too large","type":"invalid_request_error","param":"max_tokens"}}""")
            : Chat(1, 2, gapMs: 5));
        var options = Options(server, prompts: 3) with { MaxConcurrency = 1 };
        var run = await RunAsync(options);
        var failed = Assert.Single(run.Outcomes, o => o.Status == RequestOutcome.Failed);
        Assert.Equal(400, failed.HttpStatus);
        Assert.Equal("HTTP 400: max_tokens is too large", failed.Error);
        var summary = BenchSummary.Build(run, options);
        Assert.Equal((2, 1, 1), (summary.Summary.Completed, summary.Summary.Failed, summary.Summary.Rejected));
        var row = summary.Records.Single(r => r.Status != RequestStatus.Completed);
        Assert.Null(row.TtftMs);
        Assert.Null(row.E2elMs);
    }

    [Fact]
    public async Task AnErrorInsideTheStreamFailsTheRequest()
    {
        await using var server = await StartAsync((_, _) => new FakeReply(
            [new(0, Role()), new(0, Content("par")), new(0, """{"error":{"message":"engine died","code":500}}""")]));
        var o = Assert.Single((await RunAsync(Options(server))).Outcomes);
        Assert.Equal((RequestOutcome.Failed, "engine died"), (o.Status, o.Error));
    }

    [Fact]
    public async Task AStreamCutBeforeItsEndIsAFailedRow()
    {
        await using var server = await StartAsync((_, _) => new FakeReply([new(0, Role()), new(0, Reasoning("x")), new(0, Content("y"))], Cut: true));
        var o = Assert.Single((await RunAsync(Options(server))).Outcomes);
        Assert.Equal(RequestOutcome.Failed, o.Status);
        Assert.NotNull(o.Error);
        Assert.Equal(2, o.Chunks.Count);
    }

    [Fact]
    public async Task ASlowServerGivesTimeoutRowsAndTheirTimeStaysOutOfTheLatencies()
    {
        // Request 0 stalls for 5 s; the limit is 0.5 s. Request 1 is fast.
        await using var server = await StartAsync((i, _) => i == 0 ? new FakeReply([new(0, Role()), new(5000, Content("late")), new(0, Done)]) : Chat(1, 1));
        var options = Options(server, prompts: 2) with { RequestTimeoutS = 0.5, MaxConcurrency = 1 };
        var run = await RunAsync(options);
        Assert.Equal(RequestOutcome.TimedOut, run.Outcomes[0].Status);
        Assert.Contains("--request-timeout", run.Outcomes[0].Error);
        Assert.InRange(run.Outcomes[0].EndS!.Value - run.Outcomes[0].SendS, 0.45, 3.0);
        var summary = BenchSummary.Build(run, options);
        Assert.Equal((1, 1), (summary.Summary.Completed, summary.Summary.Failed));
        Assert.True(summary.Summary.MeanE2elMs < 450, $"the timed-out request leaked into E2EL: {summary.Summary.MeanE2elMs} ms");
        Assert.Equal(1, summary.Json["timed_out"]!.GetValue<int>());
    }

    [Fact]
    public async Task StoppingCancelsWhatIsInFlightAndSendsNothingMore()
    {
        await using var server = await StartAsync((_, _) => new FakeReply([new(0, Role()), new(10_000, Content("never")), new(0, Done)]));
        var options = Options(server, prompts: 10) with { RequestRate = 20 };
        using var runner = new BenchRunner(options);
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var run = await runner.RunAsync(BenchDatasets.Load(options), stop: stop.Token);
        Assert.True(run.Interrupted);
        Assert.True(run.NotSent > 0);
        Assert.Equal(10, run.Outcomes.Count + run.NotSent);
        Assert.All(run.Outcomes, o => Assert.Equal(RequestOutcome.Cancelled, o.Status));
    }

    [Fact]
    public async Task AStreamWithoutTextIsNotACompletedRequest()
    {
        await using var server = await StartAsync((_, _) => new FakeReply([new(0, Role()), new(0, Usage(3, 0)), new(0, Done)]));
        var o = Assert.Single((await RunAsync(Options(server))).Outcomes);
        Assert.Equal(RequestOutcome.Failed, o.Status);
    }
}
