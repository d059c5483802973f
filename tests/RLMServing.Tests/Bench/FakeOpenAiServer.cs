using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace RLMServing.Tests.Bench;

/// <summary>One event the fake server writes after waiting <see cref="DelayMs"/>: its SSE data (and event type).</summary>
public sealed record FakeStep(double DelayMs, string Data, string? Event = null);

/// <summary>How the fake server answers one request: a stream of steps, or an error status and body; optionally cut after the steps.</summary>
public sealed record FakeReply(IReadOnlyList<FakeStep> Steps, int Status = 200, string? Body = null, bool Cut = false);

/// <summary>
/// An OpenAI-compatible server on 127.0.0.1 (Kestrel, an ephemeral port) that streams scripted chunks with known
/// timings. It notes, on the same monotonic clock the client uses, when it began writing each event, so tests can check
/// the client's timestamps against the moments the server actually sent.
/// </summary>
public sealed class FakeOpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _inFlight, _peakInFlight, _count;

    public string BaseUrl { get; }
    public ConcurrentQueue<JsonObject> Bodies { get; } = new();
    public ConcurrentQueue<(long Timestamp, int RequestIndex, int Step)> Sent { get; } = new();
    public ConcurrentQueue<(long Start, long End)> Spans { get; } = new();
    public int PeakInFlight => Volatile.Read(ref _peakInFlight);
    public int Count => Volatile.Read(ref _count);

    /// <summary>The Prometheus text /metrics serves; a function so a test can change it over time.</summary>
    public Func<string> Metrics { get; set; } = () => "";

    private FakeOpenAiServer(WebApplication app, string baseUrl) { _app = app; BaseUrl = baseUrl; }

    public static async Task<FakeOpenAiServer> StartAsync(Func<int, JsonObject, FakeReply> script)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        FakeOpenAiServer? self = null;
        app.MapGet("/metrics", () => Results.Text(self!.Metrics(), "text/plain; version=0.0.4"));
        app.MapPost("/{**path}", async (HttpContext ctx) =>
        {
            var body = (JsonObject)(await JsonNode.ParseAsync(ctx.Request.Body))!;
            int index = Interlocked.Increment(ref self!._count) - 1;
            self.Bodies.Enqueue(body);
            int now = Interlocked.Increment(ref self._inFlight);
            for (int peak = self._peakInFlight; now > peak; peak = self._peakInFlight)
                Interlocked.CompareExchange(ref self._peakInFlight, now, peak);
            long start = Stopwatch.GetTimestamp();
            try
            {
                var reply = script(index, body);
                if (reply.Status != 200)
                {
                    ctx.Response.StatusCode = reply.Status;
                    ctx.Response.ContentType = "application/json";
                    await ctx.Response.WriteAsync(reply.Body ?? "");
                    return;
                }
                ctx.Response.ContentType = "text/event-stream";
                await ctx.Response.StartAsync();
                for (int i = 0; i < reply.Steps.Count; i++)
                {
                    var step = reply.Steps[i];
                    if (step.DelayMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(step.DelayMs), ctx.RequestAborted);
                    var text = (step.Event is { } e ? $"event: {e}\n" : "") + $"data: {step.Data}\n\n";
                    // Noted before the write: the client cannot have read the event before this moment.
                    long sent = Stopwatch.GetTimestamp();
                    await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), ctx.RequestAborted);
                    await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                    self.Sent.Enqueue((sent, index, i));
                }
                if (reply.Cut)
                {
                    // Let the client read what was flushed: a reset discards data still unread in its socket buffer.
                    await Task.Delay(100);
                    ctx.Abort();
                }
            }
            catch (OperationCanceledException) { }
            finally
            {
                Interlocked.Decrement(ref self._inFlight);
                self.Spans.Enqueue((start, Stopwatch.GetTimestamp()));
            }
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new FakeOpenAiServer(app, address.Replace("[::]", "127.0.0.1").TrimEnd('/'));
        return self;
    }

    /// <summary>When the server began writing a request's step, in seconds from <paramref name="startTimestamp"/>.</summary>
    public double SentAtS(int requestIndex, int step, long startTimestamp) =>
        Stopwatch.GetElapsedTime(startTimestamp, Sent.Single(s => s.RequestIndex == requestIndex && s.Step == step).Timestamp).TotalSeconds;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    // Chunks as vLLM and SGLang write them.
    public static string Role() => """{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}""";

    public static string Reasoning(string text, string field = "reasoning") =>
        new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = new JsonObject { [field] = text }, ["finish_reason"] = null }) }.ToJsonString();

    public static string Content(string text, string? finish = null) =>
        new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = new JsonObject { ["content"] = text }, ["finish_reason"] = finish }) }.ToJsonString();

    public static string Usage(int prompt, int completion, int? reasoning = null)
    {
        var usage = new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion };
        if (reasoning is { } r) usage["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = r };
        return new JsonObject { ["choices"] = new JsonArray(), ["usage"] = usage }.ToJsonString();
    }

    public const string Done = "[DONE]";

    /// <summary>A plain reasoning reply: role, <paramref name="thinking"/> reasoning chunks, <paramref name="answer"/> answer chunks, usage, [DONE].</summary>
    public static FakeReply Chat(int thinking, int answer, double gapMs = 0, bool usage = true, string field = "reasoning")
    {
        var steps = new List<FakeStep> { new(0, Role()) };
        for (int i = 0; i < thinking; i++) steps.Add(new(gapMs, Reasoning("t ", field)));
        for (int i = 0; i < answer; i++) steps.Add(new(gapMs, Content("a ", i == answer - 1 ? "stop" : null)));
        if (usage) steps.Add(new(0, Usage(10, thinking + answer, thinking)));
        steps.Add(new(0, Done));
        return new FakeReply(steps);
    }
}
