using System.Net;
using System.Text.Json;
using RLMServing.Serve;
using RLMServing.Serve.Api;
using Xunit;

namespace RLMServing.Tests.Serve;

/// <summary>rlms serve's OpenAI-compatible endpoints against the twin, over real HTTP on 127.0.0.1.</summary>
public class ServeEndpointTests
{
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    private static int Words(string text) => FillerText.CountTokens(text);

    [Fact]
    public async Task ModelsListsTheServedModelNameAndHealthAnswers()
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { ServedModelName = "r1-twin" });
        var models = Json(await s.Http.GetStringAsync("/v1/models"));
        Assert.Equal("list", models.GetProperty("object").GetString());
        Assert.Equal("r1-twin", models.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task NonStreamingChatWithIgnoreEosGeneratesExactlyMaxTokensAndReportsReasoningTokens()
    {
        await using var s = await RunningServer.StartAsync();
        var response = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(12, maxTokens: 30, ignoreEos: true, model: s.Model));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = Json(await response.Content.ReadAsStringAsync());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        int reasoning = Words(message.GetProperty("reasoning").GetString()!), content = Words(message.GetProperty("content").GetString()!);
        var usage = body.GetProperty("usage");
        Assert.Equal(12, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(30, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(42, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(reasoning, usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.Equal(30, reasoning + content);
        Assert.InRange(reasoning, 8, 24);   // the workload's thinking draw
    }

    [Fact]
    public async Task WithoutIgnoreEosTheWorkloadDrawsTheLengthAndMaxTokensCutsIt()
    {
        await using var s = await RunningServer.StartAsync();
        var free = Json(await (await s.PostAsync("/v1/chat/completions", RunningServer.Chat(8))).Content.ReadAsStringAsync());
        Assert.Equal("stop", free.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.InRange(free.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 12, 36);
        var cut = Json(await (await s.PostAsync("/v1/chat/completions", RunningServer.Chat(8, maxTokens: 5))).Content.ReadAsStringAsync());
        Assert.Equal("length", cut.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(5, cut.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task StreamingChatSendsRoleThenReasoningThenContentThenUsageAndDone()
    {
        await using var s = await RunningServer.StartAsync();
        var response = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(10, maxTokens: 40, stream: true, ignoreEos: true, usage: true),
            completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var lines = await RunningServer.DataLines(response);
        Assert.Equal("[DONE]", lines[^1]);
        var chunks = lines.SkipLast(1).Select(Json).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        var first = chunks[0].GetProperty("choices")[0].GetProperty("delta");
        Assert.Equal("assistant", first.GetProperty("role").GetString());
        int reasoning = 0, content = 0;
        bool contentSeen = false;
        foreach (var c in chunks.Skip(1).SkipLast(2))
        {
            var delta = c.GetProperty("choices")[0].GetProperty("delta");
            if (delta.TryGetProperty("reasoning", out var r))
            {
                Assert.False(contentSeen, "reasoning after the answer began");
                reasoning += Words(r.GetString()!);
            }
            if (delta.TryGetProperty("content", out var t))
            {
                contentSeen = true;
                content += Words(t.GetString()!);
            }
            Assert.False(delta.TryGetProperty("reasoning_content", out _));
        }
        Assert.Equal("length", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var usage = chunks[^1].GetProperty("usage");
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(40, reasoning + content);
        Assert.Equal(40, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(reasoning, usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.True(content > 0);
    }

    [Theory]
    [InlineData(ReasoningField.ReasoningContent, false, true)]
    [InlineData(ReasoningField.Both, true, true)]
    public async Task ReasoningFieldChoosesWhereThinkingGoes(ReasoningField field, bool reasoning, bool reasoningContent)
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { ReasoningField = field });
        var body = Json(await (await s.PostAsync("/v1/chat/completions", RunningServer.Chat(4, maxTokens: 6, ignoreEos: true))).Content.ReadAsStringAsync());
        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal(reasoning, message.TryGetProperty("reasoning", out _));
        Assert.Equal(reasoningContent, message.TryGetProperty("reasoning_content", out _));
    }

    [Fact]
    public async Task TextCompletionsTakeAStringOrTokenIdsStreamedOrNot()
    {
        await using var s = await RunningServer.StartAsync();
        var plain = Json(await (await s.PostAsync("/v1/completions", """{"prompt": "one two three", "max_tokens": 7, "ignore_eos": true}""")).Content.ReadAsStringAsync());
        Assert.Equal("text_completion", plain.GetProperty("object").GetString());
        Assert.Equal(7, Words(plain.GetProperty("choices")[0].GetProperty("text").GetString()!));
        Assert.Equal(3, plain.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        var ids = Json(await (await s.PostAsync("/v1/completions", """{"prompt": [1, 2, 3, 4, 5], "max_tokens": 3, "ignore_eos": true}""")).Content.ReadAsStringAsync());
        Assert.Equal(5, ids.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        var lines = await RunningServer.DataLines(await s.PostAsync("/v1/completions",
            """{"prompt": "a b", "max_tokens": 5, "ignore_eos": true, "stream": true}""", completion: HttpCompletionOption.ResponseHeadersRead));
        Assert.Equal("[DONE]", lines[^1]);
        int words = lines.SkipLast(1).Select(Json).Sum(c => Words(c.GetProperty("choices")[0].GetProperty("text").GetString()!));
        Assert.Equal(5, words);
    }

    [Fact]
    public async Task XRequestIdIsEchoedOrMadeUp()
    {
        await using var s = await RunningServer.StartAsync();
        var msg = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(RunningServer.Chat(2, maxTokens: 2), System.Text.Encoding.UTF8, "application/json") };
        msg.Headers.Add("X-Request-Id", "trace-123");
        var echoed = await s.Http.SendAsync(msg);
        Assert.Equal("trace-123", echoed.Headers.GetValues("X-Request-Id").Single());
        Assert.Equal("trace-123", Json(await echoed.Content.ReadAsStringAsync()).GetProperty("id").GetString());
        var made = await s.PostAsync("/v1/chat/completions", RunningServer.Chat(2, maxTokens: 2));
        Assert.StartsWith("chatcmpl-", made.Headers.GetValues("X-Request-Id").Single());
    }
}
