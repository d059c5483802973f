using System.Diagnostics;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;

namespace RLMServing.Bench;

/// <summary>
/// Sends one streamed request and times every delta on the client's monotonic clock. No retries: whatever happens is
/// the request's outcome (HTTP errors, errors inside the stream, a stream cut before its end marker, the timeout).
/// </summary>
internal sealed class StreamingClient(HttpClient http, IBenchBackend backend, BenchOptions options, long startTimestamp)
{
    private const int MaxErrorBodyChars = 2000;

    public double NowS => Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds;

    private double SecondsAt(long timestamp) => (timestamp - startTimestamp) / (double)Stopwatch.Frequency;

    public async Task SendAsync(RequestOutcome outcome, CancellationToken stop)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(TimeSpan.FromSeconds(Math.Min(options.RequestTimeoutS, int.MaxValue / 1000.0)));
        var ct = timeout.Token;
        bool done = false;
        try
        {
            using var request = Build(outcome);
            outcome.SendS = NowS;
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            outcome.HttpStatus = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                outcome.Error = $"HTTP {(int)response.StatusCode}: {await ErrorMessage(response, ct).ConfigureAwait(false)}";
                outcome.EndS = NowS;
                outcome.Status = RequestOutcome.Failed;
                return;
            }
            await using var stream = new ReadTimedStream(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
            int reasoningChunks = 0, answerChunks = 0, sequence = 0;
            int? completionTokens = null, reasoningTokens = null;
            var parser = SseParser.Create(stream, backend.Read);
            await foreach (var item in parser.EnumerateAsync(ct).ConfigureAwait(false))
            {
                // When the read that completed this event returned, not after the parsing (see ReadTimedStream).
                double now = SecondsAt(stream.LastReadTimestamp);
                var e = item.Data;
                if (e.Error is { } error)
                {
                    outcome.Error = error;
                    outcome.EndS = now;
                    outcome.Status = RequestOutcome.Failed;
                    return;
                }
                if (e.Reasoning is { } r)
                {
                    outcome.FirstTokenS ??= now;
                    outcome.Chunks.Add(new ChunkRow(sequence++, now, Channel.Reasoning, r.Length));
                    outcome.ReasoningCharacters += r.Length;
                    if (options.Evaluate) outcome.KeepReasoning(r);
                    reasoningChunks++;
                }
                if (e.Answer is { } a)
                {
                    outcome.FirstTokenS ??= now;
                    outcome.FirstAnswerS ??= now;
                    outcome.Chunks.Add(new ChunkRow(sequence++, now, Channel.Answer, a.Length));
                    outcome.AnswerText.Append(a);
                    answerChunks++;
                }
                if (e.FinishReason is { } f) outcome.FinishReason = f;
                if (e.PromptTokens is { } p) outcome.PromptTokens = p;
                if (e.CompletionTokens is { } c) completionTokens = c;
                if (e.ReasoningTokens is { } rt) reasoningTokens = rt;
                if (e.Done) { done = true; break; }
            }
            outcome.EndS = NowS;
            if (!done)
            {
                outcome.Status = RequestOutcome.Failed;
                outcome.Error = "the stream ended before the server's end marker (cut)";
                return;
            }
            // Each delta is one token in vLLM's and SGLang's streams; usage, where sent, is the server's own count.
            if (completionTokens is { } total)
            {
                outcome.OutputTokens = total;
                outcome.ThinkingTokens = reasoningTokens ?? Math.Min(reasoningChunks, total);
                outcome.TokenCountSource = reasoningTokens is not null || reasoningChunks == 0 ? "usage" : "usage+chunks";
            }
            else
            {
                outcome.OutputTokens = reasoningChunks + answerChunks;
                outcome.ThinkingTokens = reasoningChunks;
                outcome.TokenCountSource = "chunks";
            }
            if (outcome.FirstTokenS is null)
            {
                outcome.Status = RequestOutcome.Failed;
                outcome.Error = "the stream finished without any text";
                return;
            }
            outcome.Status = RequestOutcome.Completed;
        }
        catch (OperationCanceledException)
        {
            outcome.EndS = NowS;
            outcome.Status = stop.IsCancellationRequested ? RequestOutcome.Cancelled : RequestOutcome.TimedOut;
            outcome.Error = stop.IsCancellationRequested ? "interrupted before it finished" : $"no end of stream within --request-timeout {options.RequestTimeoutS:0.###} s";
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException)
        {
            outcome.EndS = NowS;
            outcome.Status = RequestOutcome.Failed;
            outcome.Error = e is JsonException ? $"malformed event in the stream: {e.Message}" : Flatten(e);
        }
    }

    private HttpRequestMessage Build(RequestOutcome outcome)
    {
        var body = backend.Body(outcome.Prompt, outcome.MaxTokens, options);
        var request = new HttpRequestMessage(HttpMethod.Post, options.RequestUri)
        {
            Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body)),
            Version = HttpVersion.Version11,
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (options.ApiKey is { Length: > 0 } key) request.Headers.TryAddWithoutValidation("Authorization", $"Bearer {key}");
        foreach (var (k, v) in options.Headers)
        {
            request.Headers.Remove(k);
            request.Headers.TryAddWithoutValidation(k, v);
        }
        return request;
    }

    private static async Task<string> ErrorMessage(HttpResponseMessage response, CancellationToken ct)
    {
        string body;
        try { body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false); }
        catch (Exception e) when (e is HttpRequestException or IOException) { return response.ReasonPhrase ?? "no body"; }
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error))
                return error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) ? m.ToString() : error.ToString();
        }
        catch (JsonException) { }
        body = body.ReplaceLineEndings(" ").Trim();
        return body.Length == 0 ? response.ReasonPhrase ?? "no body" : body.Length > MaxErrorBodyChars ? body[..MaxErrorBodyChars] + "…" : body;
    }

    private static string Flatten(Exception e)
    {
        var sb = new StringBuilder(e.Message);
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException) sb.Append(": ").Append(inner.Message);
        return sb.ToString();
    }
}
