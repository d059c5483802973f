using System.Net;
using System.Text.Json;
using RLMServing.Serve;
using Xunit;

namespace RLMServing.Tests.Serve;

/// <summary>Bad requests get OpenAI-style JSON errors with the right status, never a stack trace.</summary>
public class ServeErrorTests
{
    private static async Task<JsonElement> Error(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("   at ", text);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrEmpty(error.GetProperty("type").GetString()));
        Assert.True(error.TryGetProperty("param", out _));
        return error.Clone();
    }

    [Theory]
    [InlineData("{not json", null)]
    [InlineData("[1, 2]", null)]
    [InlineData("""{"model": "DeepSeek-R1-Distill-Qwen-7B"}""", "messages")]
    [InlineData("""{"messages": []}""", "messages")]
    [InlineData("""{"messages": [{"role": "wizard", "content": "hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages": [{"role": "user", "content": 5}]}""", "messages[0].content")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}""", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}""", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}""", "stream")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": true}}""", "stream_options")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "n": 3}""", "n")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "temperature": 9}""", "temperature")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "ignore_eos": true}""", "ignore_eos")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000000}""", "max_tokens")]
    public async Task MalformedChatRequestsAre400WithTheParam(string body, string? param)
    {
        await using var s = await RunningServer.StartAsync();
        var error = await Error(await s.PostAsync("/v1/chat/completions", body), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        if (param is null) Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        else Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task MalformedTextCompletionsAre400()
    {
        await using var s = await RunningServer.StartAsync();
        Assert.Equal("prompt", (await Error(await s.PostAsync("/v1/completions", "{}"), HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        Assert.Equal("prompt", (await Error(await s.PostAsync("/v1/completions", """{"prompt": ["a", "b"]}"""), HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        Assert.Equal("prompt", (await Error(await s.PostAsync("/v1/completions", """{"prompt": [1, -2]}"""), HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task WithAnApiKeyRequestsWithoutItAre401()
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { ApiKey = "sekrit" });
        string body = RunningServer.Chat(3, maxTokens: 2);
        var missing = await Error(await s.PostAsync("/v1/chat/completions", body), HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_api_key", missing.GetProperty("code").GetString());
        await Error(await s.PostAsync("/v1/chat/completions", body, apiKey: "wrong"), HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Http.GetAsync("/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.PostAsync("/v1/chat/completions", body, apiKey: "sekrit")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/health")).StatusCode);   // probes need no key, as vLLM's
    }

    [Fact]
    public async Task AnUnknownModelOrRouteIs404()
    {
        await using var s = await RunningServer.StartAsync();
        var model = await Error(await s.PostAsync("/v1/chat/completions", RunningServer.Chat(3, model: "gpt-9")), HttpStatusCode.NotFound);
        Assert.Equal("model_not_found", model.GetProperty("code").GetString());
        Assert.Equal("model", model.GetProperty("param").GetString());
        await Error(await s.Http.GetAsync("/v1/nothing-here"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task AFullWaitingQueueIs429()
    {
        // One sequence at a time and room for one waiting request: of five long requests sent at once, two are
        // taken (one running, one waiting) and the rest are turned away. The twin runs ten times slower than real
        // time, so the running request outlasts the test however slowly a loaded machine runs the test's own steps.
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { MaxWaiting = 1, TimeScale = 0.1 }, sets: ["scheduler.max_num_seqs=1"]);
        using var cancel = new CancellationTokenSource();
        HttpResponseMessage? first = null, second = null;
        try
        {
            first = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(8, maxTokens: 2000, stream: true, ignoreEos: true),
                cancel: cancel.Token, completion: HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.True(await RunningServer.Eventually(() => s.Host.Replica.Gauges.Running == 1));
            second = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(8, maxTokens: 2000, stream: true, ignoreEos: true),
                cancel: cancel.Token, completion: HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.True(await RunningServer.Eventually(() => s.Host.Replica.Gauges.Waiting == 1));
            var third = await Error(await s.PostAsync("/v1/chat/completions", RunningServer.Chat(8, maxTokens: 10)), HttpStatusCode.TooManyRequests);
            Assert.Equal("queue_full", third.GetProperty("code").GetString());
        }
        finally
        {
            // The two streams are never read: drop them before the server stops, whatever the asserts said, or its
            // shutdown would wait on streams whose client is gone.
            cancel.Cancel();
            first?.Dispose();
            second?.Dispose();
        }
    }

    [Fact]
    public async Task AStalledStreamDoesNotHoldTheServersShutdown()
    {
        // A client that opens a long stream and stops reading (its response never disposed): stopping the server
        // must still end, within its grace period and some slack, not wait on the stream.
        var s = await RunningServer.StartAsync(sets: ["scheduler.max_num_seqs=1"]);
        var stalled = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(8, maxTokens: 2000, stream: true, ignoreEos: true),
            completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, stalled.StatusCode);
        var stop = s.Host.StopAsync();
        Assert.Same(stop, await Task.WhenAny(stop, Task.Delay(TimeSpan.FromSeconds(30))));
        await s.DisposeAsync();
        stalled.Dispose();
    }

    [Fact]
    public async Task StoppingDoesNotWaitOutALongIteration()
    {
        // At a time scale of 1/5000 the twin's prefill of 2,000 tokens lasts minutes of wall time: stopping the server
        // while it runs ends the wait at once, and the client gets its stream's end instead of a hang.
        var s = await RunningServer.StartAsync(options: new ServeOptions { TimeScale = 0.0002 });
        var response = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(2000, maxTokens: 10, stream: true, ignoreEos: true),
            completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Taken in by the engine (the gauges of a turn come after its iteration, so Running stays 0 until then).
        Assert.True(await RunningServer.Eventually(() => s.Host.Replica.Gauges.Waiting == 0), $"{s.Host.Replica.Gauges}");
        await Task.Delay(200);
        var stop = s.Host.StopAsync();
        Assert.Same(stop, await Task.WhenAny(stop, Task.Delay(TimeSpan.FromSeconds(30))));
        await stop;
        var lines = await RunningServer.DataLines(response);
        Assert.Contains(lines, l => l.Contains("\"error\"", StringComparison.Ordinal));   // the 503 error event, never a token
        Assert.Equal("[DONE]", lines[^1]);
        await s.DisposeAsync();
    }

    [Theory]
    [InlineData(FailureType.ServerError, HttpStatusCode.InternalServerError)]
    [InlineData(FailureType.RateLimit, HttpStatusCode.TooManyRequests)]
    public async Task InjectedFailuresAnswerWithJsonErrors(FailureType type, HttpStatusCode status)
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { FailureInjectionRate = 1, FailureTypes = [type] });
        var error = await Error(await s.PostAsync("/v1/chat/completions", RunningServer.Chat(3, maxTokens: 3)), status);
        Assert.Contains("injected failure", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task AnInjectedAbortCutsTheStreamAndFreesTheRequest()
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { FailureInjectionRate = 1, FailureTypes = [FailureType.Abort] });
        var response = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(3, maxTokens: 50, stream: true, ignoreEos: true),
            completion: HttpCompletionOption.ResponseHeadersRead);
        List<string>? lines = null;
        try { lines = await RunningServer.DataLines(response); }
        catch (Exception e) when (e is IOException or HttpRequestException) { }
        Assert.NotEqual("[DONE]", lines?.LastOrDefault());   // a cut stream never says it is done
        Assert.True(await RunningServer.Eventually(() => s.Host.Replica.Gauges is { Running: 0, Waiting: 0 }));
    }

    [Fact]
    public async Task ARateOfFailuresIsReproducibleFromTheSeed()
    {
        async Task<List<HttpStatusCode>> Statuses()
        {
            await using var s = await RunningServer.StartAsync(options: new ServeOptions { FailureInjectionRate = 0.5, FailureTypes = [FailureType.ServerError] });
            var list = new List<HttpStatusCode>();
            for (int i = 0; i < 12; i++) list.Add((await s.PostAsync("/v1/chat/completions", RunningServer.Chat(2, maxTokens: 1))).StatusCode);
            return list;
        }
        var a = await Statuses();
        Assert.Equal(a, await Statuses());
        Assert.Contains(HttpStatusCode.OK, a);
        Assert.Contains(HttpStatusCode.InternalServerError, a);
    }
}
