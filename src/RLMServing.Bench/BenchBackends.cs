using System.Text.Json;
using System.Text.Json.Nodes;

namespace RLMServing.Bench;

/// <summary>What one server-sent event of a streamed response says, whatever the backend's wire format.</summary>
internal readonly record struct StreamEvent(
    string? Reasoning,
    string? Answer,
    int? PromptTokens = null,
    int? CompletionTokens = null,
    int? ReasoningTokens = null,
    string? FinishReason = null,
    string? Error = null,
    bool Done = false);

/// <summary>One server API: how a request body looks and how its stream's events read.</summary>
internal interface IBenchBackend
{
    string Name { get; }

    string DefaultEndpoint { get; }

    JsonObject Body(BenchPrompt prompt, int maxTokens, BenchOptions options);

    /// <summary>Reads one event's data (UTF-8 JSON); <paramref name="eventType"/> is the SSE event field.</summary>
    StreamEvent Read(string eventType, ReadOnlySpan<byte> data);
}

/// <summary>The registry of backends behind <c>--backend</c>.</summary>
public static class BenchBackends
{
    public const string OpenAiChat = "openai-chat";
    public const string OpenAi = "openai";
    public const string OpenAiResponses = "openai-responses";
    public const string Tgi = "tgi";

    private static readonly IBenchBackend[] All = [new ChatBackend(), new CompletionsBackend(), new ResponsesBackend(), new TgiBackend()];

    public static IReadOnlyList<string> Names { get; } = All.Select(b => b.Name).ToArray();

    internal static IBenchBackend Get(string name) =>
        All.FirstOrDefault(b => b.Name == name)
        ?? throw new UserInputException($"--backend: unknown backend '{name}'; known: {string.Join(", ", Names)}");

    /// <summary>Sampling fields every OpenAI-compatible body shares; --extra-body goes last so it wins.</summary>
    private static JsonObject OpenAiBody(JsonObject body, BenchOptions o)
    {
        // vLLM's client sends temperature 0 (greedy) unless told otherwise.
        body["temperature"] = o.Temperature ?? 0.0;
        if (o.TopP is { } p) body["top_p"] = p;
        if (o.IgnoreEos) body["ignore_eos"] = true;
        Merge(body, o.ExtraBody);
        return body;
    }

    internal static void Merge(JsonObject body, JsonObject? extra)
    {
        if (extra is null) return;
        foreach (var (k, v) in extra) body[k] = v?.DeepClone();
    }

    private static bool IsDone(ReadOnlySpan<byte> data) => data.Trim((byte)' ').SequenceEqual("[DONE]"u8);

    private static string? ErrorOf(JsonElement root) =>
        root.TryGetProperty("error", out var e)
            ? e.ValueKind == JsonValueKind.Object && e.TryGetProperty("message", out var m) ? m.GetString() : e.ToString()
            : null;

    private static int? Int(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;

    private static string? Text(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static JsonDocument Parse(ReadOnlySpan<byte> data)
    {
        var reader = new Utf8JsonReader(data);
        return JsonDocument.ParseValue(ref reader);
    }

    /// <summary>OpenAI usage: completion tokens and, where the server reports them, reasoning tokens.</summary>
    private static StreamEvent WithUsage(StreamEvent e, JsonElement usage, string prompt = "prompt_tokens", string completion = "completion_tokens",
        string details = "completion_tokens_details")
    {
        if (usage.ValueKind != JsonValueKind.Object) return e;
        int? reasoning = usage.TryGetProperty(details, out var d) ? Int(d, "reasoning_tokens") : null;
        return e with { PromptTokens = Int(usage, prompt), CompletionTokens = Int(usage, completion), ReasoningTokens = reasoning };
    }

    /// <summary>POST /v1/chat/completions: deltas on reasoning (vLLM), reasoning_content (SGLang, older vLLM) and content.</summary>
    private sealed class ChatBackend : IBenchBackend
    {
        public string Name => OpenAiChat;
        public string DefaultEndpoint => "/v1/chat/completions";

        public JsonObject Body(BenchPrompt prompt, int maxTokens, BenchOptions o) => OpenAiBody(new JsonObject
        {
            ["model"] = o.RequestModel,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt.Prompt }),
            ["max_completion_tokens"] = maxTokens,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        }, o);

        public StreamEvent Read(string eventType, ReadOnlySpan<byte> data)
        {
            if (IsDone(data)) return new StreamEvent(null, null, Done: true);
            using var doc = Parse(data);
            var root = doc.RootElement;
            if (ErrorOf(root) is { } error) return new StreamEvent(null, null, Error: error);
            var e = new StreamEvent(null, null);
            if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
            {
                var choice = choices[0];
                if (choice.TryGetProperty("delta", out var delta))
                    e = e with { Reasoning = NonEmpty(Text(delta, "reasoning")) ?? NonEmpty(Text(delta, "reasoning_content")), Answer = NonEmpty(Text(delta, "content")) };
                e = e with { FinishReason = Text(choice, "finish_reason") };
            }
            if (root.TryGetProperty("usage", out var usage)) e = WithUsage(e, usage);
            return e;
        }
    }

    /// <summary>POST /v1/completions: text on choices[0].text (no separate reasoning channel).</summary>
    private sealed class CompletionsBackend : IBenchBackend
    {
        public string Name => OpenAi;
        public string DefaultEndpoint => "/v1/completions";

        public JsonObject Body(BenchPrompt prompt, int maxTokens, BenchOptions o) => OpenAiBody(new JsonObject
        {
            ["model"] = o.RequestModel,
            ["prompt"] = prompt.Prompt,
            ["max_tokens"] = maxTokens,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        }, o);

        public StreamEvent Read(string eventType, ReadOnlySpan<byte> data)
        {
            if (IsDone(data)) return new StreamEvent(null, null, Done: true);
            using var doc = Parse(data);
            var root = doc.RootElement;
            if (ErrorOf(root) is { } error) return new StreamEvent(null, null, Error: error);
            var e = new StreamEvent(null, null);
            if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
            {
                var choice = choices[0];
                e = e with { Reasoning = NonEmpty(Text(choice, "reasoning")) ?? NonEmpty(Text(choice, "reasoning_content")), Answer = NonEmpty(Text(choice, "text")), FinishReason = Text(choice, "finish_reason") };
            }
            if (root.TryGetProperty("usage", out var usage)) e = WithUsage(e, usage);
            return e;
        }
    }

    /// <summary>POST /v1/responses: typed events response.reasoning_text.delta / response.output_text.delta / response.completed.</summary>
    private sealed class ResponsesBackend : IBenchBackend
    {
        public string Name => OpenAiResponses;
        public string DefaultEndpoint => "/v1/responses";

        public JsonObject Body(BenchPrompt prompt, int maxTokens, BenchOptions o) => OpenAiBody(new JsonObject
        {
            ["model"] = o.RequestModel,
            ["input"] = prompt.Prompt,
            ["max_output_tokens"] = maxTokens,
            ["stream"] = true,
        }, o);

        public StreamEvent Read(string eventType, ReadOnlySpan<byte> data)
        {
            if (IsDone(data)) return new StreamEvent(null, null, Done: true);
            using var doc = Parse(data);
            var root = doc.RootElement;
            // The type is in the data as well as the event field; servers differ in which they fill.
            string type = Text(root, "type") ?? eventType;
            switch (type)
            {
                case "response.reasoning_text.delta":
                    return new StreamEvent(NonEmpty(Text(root, "delta")), null);
                case "response.output_text.delta":
                    return new StreamEvent(null, NonEmpty(Text(root, "delta")));
                case "response.completed" or "response.incomplete":
                {
                    var e = new StreamEvent(null, null, FinishReason: type == "response.completed" ? "stop" : "length", Done: true);
                    if (root.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.Object
                        && response.TryGetProperty("usage", out var usage))
                        e = WithUsage(e, usage, "input_tokens", "output_tokens", "output_tokens_details");
                    return e;
                }
                case "response.failed" or "error":
                {
                    string? message = ErrorOf(root);
                    if (message is null && root.TryGetProperty("response", out var r)) message = ErrorOf(r);
                    return new StreamEvent(null, null, Error: message ?? Text(root, "message") ?? type);
                }
                default:
                    return ErrorOf(root) is { } error ? new StreamEvent(null, null, Error: error) : new StreamEvent(null, null);
            }
        }
    }

    /// <summary>TGI's POST /generate_stream: one event per token, the last with details.generated_tokens.</summary>
    private sealed class TgiBackend : IBenchBackend
    {
        public string Name => Tgi;
        public string DefaultEndpoint => "/generate_stream";

        public JsonObject Body(BenchPrompt prompt, int maxTokens, BenchOptions o)
        {
            var parameters = new JsonObject { ["max_new_tokens"] = maxTokens, ["details"] = true };
            // TGI refuses temperature 0; greedy is do_sample false.
            if (o.Temperature is { } t && t > 0) { parameters["do_sample"] = true; parameters["temperature"] = t; }
            if (o.TopP is { } p && p < 1) parameters["top_p"] = p;
            var body = new JsonObject { ["inputs"] = prompt.Prompt, ["parameters"] = parameters, ["stream"] = true };
            Merge(body, o.ExtraBody);
            return body;
        }

        public StreamEvent Read(string eventType, ReadOnlySpan<byte> data)
        {
            if (IsDone(data)) return new StreamEvent(null, null, Done: true);
            using var doc = Parse(data);
            var root = doc.RootElement;
            if (ErrorOf(root) is { } error) return new StreamEvent(null, null, Error: error);
            string? text = null;
            if (root.TryGetProperty("token", out var token) && token.ValueKind == JsonValueKind.Object
                && !(token.TryGetProperty("special", out var special) && special.ValueKind == JsonValueKind.True))
                text = NonEmpty(Text(token, "text"));
            var e = new StreamEvent(null, text);
            if (root.TryGetProperty("details", out var details) && details.ValueKind == JsonValueKind.Object)
                e = e with { CompletionTokens = Int(details, "generated_tokens"), FinishReason = Text(details, "finish_reason"), Done = true };
            return e;
        }
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
