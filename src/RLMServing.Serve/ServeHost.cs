using System.Buffers;
using System.Globalization;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Serve.Api;
using RLMServing.Serve.Engine;
using RLMServing.Simulation;
using RLMServing.Workloads;

namespace RLMServing.Serve;

/// <summary>
/// <c>rlms serve</c>: an OpenAI-compatible server (chat and text completions, streamed as Server-Sent Events or
/// not; /v1/models, /health, /metrics) in front of a live replica of the scenario, the digital twin or the ONNX
/// Runtime engine. Start, serve, stop; with a record folder the server-side results are written at stop.
/// </summary>
public sealed class ServeHost : IAsyncDisposable
{
    private readonly PreparedRun _run;
    private readonly ServeOptions _o;
    private readonly string? _variant;
    private readonly string _command;
    private readonly string _model;
    private readonly long _maxModelLen;
    private readonly LiveReplica _replica;
    private readonly ServeMetrics _metrics;
    private readonly OutputSampler _sampler;
    private readonly FailureInjector _failures;
    private readonly WebApplication _app;
    private readonly List<IDisposable> _resources = new();
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private long _nextId;
    private bool _stopped;
    private readonly TwinExecutor? _twin;

    private ServeHost(PreparedRun run, ServeOptions o, string? variant, string command)
    {
        o.Check();
        _run = run;
        _o = o;
        _variant = variant;
        _command = command;
        var s = run.Scenario;
        if (s.Hardware.Replicas != 1 || run.Groups.Count != 1 || run.Groups[0].Replicas != 1)
            throw new UserInputException($"{s.Name}: hardware.replicas: rlms serve runs one replica, got {run.Groups.Sum(g => g.Replicas)}");
        _model = o.ServedModelName ?? run.Model.Name;
        _metrics = new ServeMetrics(_model);
        _sampler = new OutputSampler(s);
        _failures = new FailureInjector(o.FailureInjectionRate, o.FailureTypes, SyntheticWorkload.Mix(s.Seed, 41));
        bool keep = o.RecordDir is not null;
        if (o.Engine == ServeEngineKind.Twin)
        {
            var priced = new PricedCostModel(run.Cost);
            var twin = new TwinExecutor(priced, o.TimeScale, s.CostModel.Slowdown);
            _twin = twin;
            _replica = new LiveReplica(run, priced, twin, twin, null, _metrics, keep);
            _maxModelLen = Math.Min(o.MaxModelLen ?? long.MaxValue, _replica.KvCapacityTokens);
        }
        else
        {
            ReplayRunner.Check(run, s.Name);
            int maxLen = o.MaxModelLen ?? 2048;
            var spec = DeviceSpec.Parse(o.Device);
            var device = new DeviceContext(spec, o.Threads);
            _resources.Add(device);
            var stopEngine = new CancellationTokenSource();
            _resources.Add(stopEngine);
            var engine = new OrtServingEngine(device, run.Model, TransformerGraphs.ParseDtype(spec.Cuda ? "fp16" : "fp32"),
                s.Scheduler.MaxNumSeqs, maxLen, stopEngine.Token);
            _resources.Add(engine);
            var onnx = new OnnxExecutor(engine, stopEngine);
            _replica = new LiveReplica(run, run.Cost, onnx, onnx, onnx, _metrics, keep, () =>
            {
                engine.WarmUp(Math.Min(s.Scheduler.MaxNumBatchedTokens, maxLen));
                engine.StartClock();
            });
            _maxModelLen = Math.Min(maxLen, _replica.KvCapacityTokens);
        }
        _app = Build();
    }

    /// <summary>Binds the server; nothing listens until <see cref="StartAsync"/>.</summary>
    public static ServeHost Create(PreparedRun run, ServeOptions options, string? variant = null, string command = "rlms serve") =>
        new(run, options, variant, command);

    /// <summary>The name clients send as <c>model</c>.</summary>
    public string ModelName => _model;

    /// <summary>
    /// The twin: the most an iteration's tokens came out after their simulated time, in wall seconds (a host too slow
    /// for real time); null for the ONNX Runtime engine.
    /// </summary>
    public double? TwinMaxLateWallS => _twin is null ? null : _twin.MaxLateS / _o.TimeScale;

    /// <summary>The live replica (tests read its gauges).</summary>
    public LiveReplica Replica => _replica;

    /// <summary>Where the server listens, once started (the port is the real one when 0 was asked for).</summary>
    public Uri BaseAddress
    {
        get
        {
            var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
            return new Uri(addresses.First());
        }
    }

    public async Task StartAsync(CancellationToken cancel = default)
    {
        _replica.Start();
        await _app.StartAsync(cancel);
    }

    /// <summary>Stops listening, ends what is running and, with --record-dir, writes the server-side results.</summary>
    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        // The engine first: requests in flight end with a 503 error event, and their streams close, so the server's
        // own stop finds nothing to wait for. A client that does not read its stream is cut after the grace period.
        _replica.Dispose();
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            try { await _app.StopAsync(grace.Token); }
            catch (OperationCanceledException) { }
        }
        if (_o.RecordDir is { } dir)
        {
            var result = _replica.Result();
            result = result with { Summary = result.Summary with { Variant = _variant } };
            var meta = ScenarioRunner.IdentityMetadata(_run, _variant, _command);
            meta["rlms.source"] = "serve";
            meta["rlms.serve_engine"] = _o.Engine == ServeEngineKind.Twin ? "twin" : "onnx";   // rlms.engine is the scenario's engine model
            meta["rlms.time_scale"] = _o.TimeScale.ToString("R", CultureInfo.InvariantCulture);
            await ResultWriter.WriteRunAsync(dir, result, meta);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        foreach (var r in Enumerable.Reverse(_resources)) r.Dispose();
        _resources.Clear();
    }

    /// <summary>The results so far in the simulator's schema (after <see cref="StopAsync"/>).</summary>
    public SimulationResult Result() => _replica.Result();

    // ---- HTTP --------------------------------------------------------------------------------------

    private WebApplication Build()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        string host = _o.Host.Contains(':') ? $"[{_o.Host}]" : _o.Host;
        builder.WebHost.UseUrls($"http://{host}:{_o.Port.ToString(CultureInfo.InvariantCulture)}");
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        var app = builder.Build();
        app.UseExceptionHandler(e => e.Run(ctx => ApiError.Internal("internal server error").WriteAsync(ctx.Response)));
        app.MapPost("/v1/chat/completions", ctx => Completion(ctx, chat: true));
        app.MapPost("/v1/completions", ctx => Completion(ctx, chat: false));
        app.MapGet("/v1/models", Models);
        app.MapGet("/health", ctx =>
        {
            ctx.Response.StatusCode = _replica.Failure is null ? 200 : 503;
            return Task.CompletedTask;
        });
        app.MapGet("/metrics", async ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await ctx.Response.WriteAsync(_metrics.Text(), ctx.RequestAborted);
        });
        app.MapFallback(ctx => new ApiError(404, $"no route {ctx.Request.Method} {ctx.Request.Path}", "invalid_request_error").WriteAsync(ctx.Response));
        return app;
    }

    private async Task Models(HttpContext ctx)
    {
        if (!Authorized(ctx))
        {
            await ApiError.Unauthorized().WriteAsync(ctx.Response);
            return;
        }
        ctx.Response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        w.WriteStartObject();
        w.WriteString("id", _model);
        w.WriteString("object", "model");
        w.WriteNumber("created", _created);
        w.WriteString("owned_by", "rlms");
        w.WriteString("root", _run.Model.Name);
        w.WriteNumber("max_model_len", _maxModelLen);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private bool Authorized(HttpContext ctx)
    {
        if (_o.ApiKey is null) return true;
        string? auth = ctx.Request.Headers.Authorization;
        return auth is not null && auth.StartsWith("Bearer ", StringComparison.Ordinal) && auth.AsSpan(7).Trim().SequenceEqual(_o.ApiKey);
    }

    private async Task Completion(HttpContext ctx, bool chat)
    {
        long n = Interlocked.Increment(ref _nextId) - 1;
        string given = ctx.Request.Headers["X-Request-Id"].ToString();
        string id = given.Length > 0 ? given : $"{(chat ? "chatcmpl" : "cmpl")}-{n.ToString(CultureInfo.InvariantCulture)}";
        ctx.Response.Headers["X-Request-Id"] = id;
        try
        {
            if (!Authorized(ctx)) throw new ApiErrorException(ApiError.Unauthorized());
            CompletionRequest req;
            try
            {
                using var doc = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted);
                req = CompletionRequest.Parse(doc.RootElement, chat);
            }
            catch (JsonException e)
            {
                throw new ApiErrorException(ApiError.BadRequest($"the request body is not valid JSON: {e.Message}"));
            }
            if (req.Model is { } m && m != _model) throw new ApiErrorException(ApiError.ModelNotFound(m, _model));
            var failure = _failures.Next();
            if (failure?.Type == FailureType.ServerError)
                throw new ApiErrorException(ApiError.Internal("injected failure (--failure-injection-rate): server_error"));
            if (failure?.Type == FailureType.RateLimit)
                throw new ApiErrorException(new ApiError(429, "injected failure (--failure-injection-rate): rate_limit", "rate_limit_error", null, "rate_limit_exceeded"));
            int waiting = _replica.Gauges.Waiting;
            if (waiting >= _o.MaxWaiting) throw new ApiErrorException(ApiError.QueueFull(waiting));
            var (spec, capped) = Draw(n, req);
            var live = _replica.Submit(spec, capped);
            using var onGone = ctx.RequestAborted.Register(() => _replica.Cancel(live));
            double? abortAt = failure?.Type == FailureType.Abort ? failure.Value.AbortAt : null;
            var reply = new Reply(this, live, req, chat, id, abortAt);
            try
            {
                if (req.Stream) await reply.StreamAsync(ctx);
                else await reply.RespondAsync(ctx);
            }
            finally
            {
                // However the answer ended before its outcome — RequestAborted, or a write that failed on a reset
                // connection (an IOException, which RequestAborted need not have preceded) — the engine frees its
                // slot and KV now. A finished request makes this a no-op.
                _replica.Cancel(live);
            }
        }
        catch (ApiErrorException e)
        {
            if (!ctx.Response.HasStarted) await e.Error.WriteAsync(ctx.Response);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its request was cut where it was.
        }
    }

    /// <summary>
    /// The request's output: the workload's next thinking and answer lengths, cut at max_tokens (finish reason
    /// length); with ignore_eos exactly max_tokens, thinking as drawn and the answer filling the rest.
    /// </summary>
    private (RequestSpec Spec, bool Capped) Draw(long id, CompletionRequest req)
    {
        var (thinking, answer, priority) = _sampler.Next();
        bool capped = false;
        if (req.IgnoreEos)
        {
            if (req.MaxTokens is not { } exact) throw new ApiErrorException(ApiError.BadRequest("ignore_eos: needs max_tokens (the exact number of tokens to generate)", "ignore_eos"));
            thinking = Math.Min(thinking, exact);
            answer = exact - thinking;
            capped = true;
        }
        else if (req.MaxTokens is { } max && thinking + answer > max)
        {
            thinking = Math.Min(thinking, max);
            answer = max - thinking;
            capped = true;
        }
        long asked = req.PromptTokens + (req.MaxTokens ?? thinking + answer);
        if (asked > _maxModelLen)
            throw new ApiErrorException(ApiError.BadRequest(
                $"This model's maximum context length is {_maxModelLen} tokens. However, you requested {asked} tokens ({req.PromptTokens} in the prompt, {asked - req.PromptTokens} for the completion).",
                req.MaxTokens is null ? "messages" : "max_tokens"));
        return (new RequestSpec(id, 0, req.PromptTokens, thinking, answer, priority), capped);
    }

    /// <summary>One request's answer: its tokens as SSE chunks, or one JSON body.</summary>
    private sealed class Reply(ServeHost host, LiveRequest live, CompletionRequest req, bool chat, string id, double? abortAt)
    {
        private readonly StringBuilder _reasoning = new();
        private readonly StringBuilder _content = new();

        private enum Kind { Role, Delta, Finish, Usage, Error, Done }

        private readonly record struct Event(Kind Kind, string? Reasoning = null, string? Content = null, LiveOutcome? Outcome = null, ApiError? Error = null);

        private int AbortAfterTokens => abortAt is { } share ? (int)Math.Ceiling(share * live.Spec.OutputTokens) : int.MaxValue;

        public async Task StreamAsync(HttpContext ctx)
        {
            ctx.Response.ContentType = "text/event-stream";
            ctx.Response.Headers.CacheControl = "no-cache";
            await ctx.Response.StartAsync(ctx.RequestAborted);
            await SseFormatter.WriteAsync(Events(ctx), ctx.Response.Body, Format, ctx.RequestAborted);
        }

        private async IAsyncEnumerable<SseItem<Event>> Events(HttpContext ctx)
        {
            if (chat) yield return new SseItem<Event>(new Event(Kind.Role));
            var tokens = live.Tokens.Reader;
            while (await tokens.WaitToReadAsync(ctx.RequestAborted))
            {
                if (!tokens.TryRead(out var batch)) continue;
                // What is ready goes out as one delta, as vLLM V1 coalesces a stream's pending outputs when the engine
                // gets ahead of the consumer (RequestOutputCollector.put, vllm/v1/engine/output_processor.py): a
                // stream that fell behind catches up in one write instead of one event per iteration it missed.
                while (tokens.TryPeek(out var next) && next.Start < AbortAfterTokens && tokens.TryRead(out next)) batch = batch.Then(next);
                if (batch.Start >= AbortAfterTokens)
                {
                    ctx.Abort();
                    yield break;
                }
                var (reasoning, content) = Text(batch);
                if (chat && reasoning is not null) yield return new SseItem<Event>(new Event(Kind.Delta, Reasoning: reasoning));
                if (chat && content is not null) yield return new SseItem<Event>(new Event(Kind.Delta, Content: content));
                if (!chat) yield return new SseItem<Event>(new Event(Kind.Delta, Content: reasoning + content));
            }
            var outcome = await live.Outcome;
            if (outcome.Finish == LiveFinish.Cancelled) yield break;
            if (abortAt is not null)
            {
                ctx.Abort();
                yield break;
            }
            if (Failed(outcome) is { } error)
            {
                yield return new SseItem<Event>(new Event(Kind.Error, Error: error));
                yield return new SseItem<Event>(new Event(Kind.Done));
                yield break;
            }
            yield return new SseItem<Event>(new Event(Kind.Finish, Outcome: outcome));
            if (req.IncludeUsage) yield return new SseItem<Event>(new Event(Kind.Usage, Outcome: outcome));
            yield return new SseItem<Event>(new Event(Kind.Done));
        }

        public async Task RespondAsync(HttpContext ctx)
        {
            await foreach (var batch in live.Tokens.Reader.ReadAllAsync(ctx.RequestAborted))
            {
                var (reasoning, content) = Text(batch);
                _reasoning.Append(reasoning);
                _content.Append(content);
            }
            var outcome = await live.Outcome;
            if (outcome.Finish == LiveFinish.Cancelled) return;
            if (abortAt is not null)
            {
                ctx.Abort();
                return;
            }
            if (Failed(outcome) is { } error) throw new ApiErrorException(error);
            ctx.Response.ContentType = "application/json";
            await using var w = new Utf8JsonWriter(ctx.Response.Body);
            w.WriteStartObject();
            Head(w, chat ? "chat.completion" : "text_completion");
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            if (chat)
            {
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                w.WriteString("content", _content.ToString());
                WriteReasoning(w, _reasoning.Length > 0 ? _reasoning.ToString() : null);
                w.WriteEndObject();
            }
            else w.WriteString("text", _reasoning.ToString() + _content);
            w.WriteNull("logprobs");
            w.WriteString("finish_reason", FinishReason(outcome));
            w.WriteEndObject();
            w.WriteEndArray();
            Usage(w, outcome);
            w.WriteEndObject();
        }

        private static ApiError? Failed(LiveOutcome o) => o.Finish switch
        {
            LiveFinish.Rejected => ApiError.BadRequest($"the request cannot be served: {o.Reason}"),
            LiveFinish.Shutdown => new ApiError(503, o.Reason ?? "the server is shutting down", "server_error"),
            _ => null,
        };

        private static string FinishReason(LiveOutcome o) => o.Finish == LiveFinish.Length ? "length" : "stop";

        private (string? Reasoning, string? Content) Text(TokenBatch b)
        {
            string? reasoning = null, content = null;
            if (b.ReasoningTokens > 0)
            {
                var sb = new StringBuilder();
                for (int i = 0; i < b.ReasoningTokens; i++) sb.Append(FillerText.Token(live.Id, b.Start + i, b.TokenIds?[i]));
                reasoning = sb.ToString();
            }
            if (b.AnswerTokens > 0)
            {
                var sb = new StringBuilder();
                for (int i = b.ReasoningTokens; i < b.Count; i++) sb.Append(FillerText.Token(live.Id, b.Start + i, b.TokenIds?[i]));
                content = sb.ToString();
            }
            return (reasoning, content);
        }

        private void Format(SseItem<Event> item, IBufferWriter<byte> output)
        {
            var e = item.Data;
            if (e.Kind == Kind.Done)
            {
                output.Write("[DONE]"u8);
                return;
            }
            using var w = new Utf8JsonWriter(output);
            if (e.Kind == Kind.Error)
            {
                e.Error!.Write(w);
                return;
            }
            w.WriteStartObject();
            Head(w, chat ? "chat.completion.chunk" : "text_completion");
            w.WriteStartArray("choices");
            if (e.Kind != Kind.Usage)
            {
                w.WriteStartObject();
                w.WriteNumber("index", 0);
                if (chat)
                {
                    w.WriteStartObject("delta");
                    if (e.Kind == Kind.Role)
                    {
                        w.WriteString("role", "assistant");
                        w.WriteString("content", "");
                    }
                    if (e.Content is not null) w.WriteString("content", e.Content);
                    WriteReasoning(w, e.Reasoning);
                    w.WriteEndObject();
                }
                else w.WriteString("text", e.Content ?? "");
                w.WriteNull("logprobs");
                if (e.Kind == Kind.Finish) w.WriteString("finish_reason", FinishReason(e.Outcome!)); else w.WriteNull("finish_reason");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (e.Kind == Kind.Usage) Usage(w, e.Outcome!);
            else if (req.IncludeUsage) w.WriteNull("usage");
            w.WriteEndObject();
        }

        private void WriteReasoning(Utf8JsonWriter w, string? text)
        {
            if (text is null) return;
            var field = host._o.ReasoningField;
            if (field != ReasoningField.ReasoningContent) w.WriteString("reasoning", text);
            if (field != ReasoningField.Reasoning) w.WriteString("reasoning_content", text);
        }

        private void Head(Utf8JsonWriter w, string type)
        {
            w.WriteString("id", id);
            w.WriteString("object", type);
            w.WriteNumber("created", host._created);
            w.WriteString("model", host._model);
        }

        private void Usage(Utf8JsonWriter w, LiveOutcome o)
        {
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", live.Spec.PromptTokens);
            w.WriteNumber("completion_tokens", o.CompletionTokens);
            w.WriteNumber("total_tokens", live.Spec.PromptTokens + o.CompletionTokens);
            w.WriteStartObject("completion_tokens_details");
            w.WriteNumber("reasoning_tokens", o.ReasoningTokens);
            w.WriteEndObject();
            w.WriteEndObject();
        }
    }
}
