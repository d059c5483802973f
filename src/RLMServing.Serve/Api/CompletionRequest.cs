using System.Text.Json;

namespace RLMServing.Serve.Api;

/// <summary>
/// The parts of a chat or text completion request the server acts on, read and checked from the JSON body
/// (OpenAI's fields, plus vLLM's <c>ignore_eos</c>). Anything malformed is an <see cref="ApiErrorException"/> naming the field.
/// </summary>
public sealed record CompletionRequest(string? Model, int PromptTokens, int? MaxTokens, bool Stream, bool IncludeUsage, bool IgnoreEos)
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool", "function"];

    public static CompletionRequest Parse(JsonElement root, bool chat)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad("the request body must be a JSON object", null);
        string? model = OptionalString(root, "model");
        int prompt = chat ? ChatPromptTokens(root) : TextPromptTokens(root);
        int? maxTokens = OptionalPositiveInt(root, "max_completion_tokens") ?? OptionalPositiveInt(root, "max_tokens");
        bool stream = OptionalBool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out var so) && so.ValueKind != JsonValueKind.Null)
        {
            if (so.ValueKind != JsonValueKind.Object) throw Bad("stream_options must be an object", "stream_options");
            if (!stream) throw Bad("stream_options is only allowed when stream is true", "stream_options");
            includeUsage = OptionalBool(so, "include_usage", "stream_options.include_usage") ?? false;
        }
        if (root.TryGetProperty("n", out var n) && n.ValueKind != JsonValueKind.Null && !(n.ValueKind == JsonValueKind.Number && n.TryGetInt32(out int nv) && nv == 1))
            throw Bad("n: only one choice per request is supported (n = 1)", "n");
        CheckNumber(root, "temperature", 0, 2);
        CheckNumber(root, "top_p", 0, 1);
        bool ignoreEos = OptionalBool(root, "ignore_eos") ?? false;
        return new CompletionRequest(model, prompt, maxTokens, stream, includeUsage, ignoreEos);
    }

    private static int ChatPromptTokens(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var messages)) throw Bad("messages: required", "messages");
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw Bad("messages: must be a non-empty array of messages", "messages");
        int tokens = 0, i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw Bad($"{at}: must be an object with a role and content", at);
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String || !Roles.Contains(role.GetString()!))
                throw Bad($"{at}.role: must be one of {string.Join(", ", Roles)}", $"{at}.role");
            if (!m.TryGetProperty("content", out var content)) continue;
            switch (content.ValueKind)
            {
                case JsonValueKind.Null: break;
                case JsonValueKind.String: tokens += FillerText.CountTokens(content.GetString()!); break;
                case JsonValueKind.Array:
                    foreach (var part in content.EnumerateArray())
                    {
                        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                            throw Bad($"{at}.content: each part must be an object with a type", $"{at}.content");
                        if (type.GetString() != "text") throw Bad($"{at}.content: only text parts are supported, got '{type.GetString()}'", $"{at}.content");
                        if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                            throw Bad($"{at}.content: a text part needs a text string", $"{at}.content");
                        tokens += FillerText.CountTokens(text.GetString()!);
                    }
                    break;
                default: throw Bad($"{at}.content: must be a string, an array of parts or null", $"{at}.content");
            }
        }
        return Math.Max(1, tokens);
    }

    private static int TextPromptTokens(JsonElement root)
    {
        if (!root.TryGetProperty("prompt", out var prompt)) throw Bad("prompt: required", "prompt");
        if (prompt.ValueKind == JsonValueKind.String) return Math.Max(1, FillerText.CountTokens(prompt.GetString()!));
        if (prompt.ValueKind != JsonValueKind.Array || prompt.GetArrayLength() == 0)
            throw Bad("prompt: must be a string, an array of token ids, or an array with one of either", "prompt");
        var first = prompt[0];
        if (first.ValueKind == JsonValueKind.Number) return TokenIds(prompt);
        if (prompt.GetArrayLength() > 1) throw Bad("prompt: one prompt per request (batched prompts are not supported)", "prompt");
        if (first.ValueKind == JsonValueKind.String) return Math.Max(1, FillerText.CountTokens(first.GetString()!));
        if (first.ValueKind == JsonValueKind.Array && first.GetArrayLength() > 0) return TokenIds(first);
        throw Bad("prompt: must be a string, an array of token ids, or an array with one of either", "prompt");
    }

    private static int TokenIds(JsonElement ids)
    {
        foreach (var id in ids.EnumerateArray())
            if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt64(out long v) || v < 0)
                throw Bad("prompt: token ids must be non-negative integers", "prompt");
        return ids.GetArrayLength();
    }

    private static string? OptionalString(JsonElement o, string key)
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw Bad($"{key}: must be a string", key);
        return v.GetString();
    }

    private static bool? OptionalBool(JsonElement o, string key, string? name = null)
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Bad($"{name ?? key}: must be true or false", name ?? key);
        return v.GetBoolean();
    }

    private static int? OptionalPositiveInt(JsonElement o, string key)
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int n) || n < 1) throw Bad($"{key}: must be a positive integer", key);
        return n;
    }

    private static void CheckNumber(JsonElement o, string key, double min, double max)
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return;
        if (v.ValueKind != JsonValueKind.Number || v.GetDouble() < min || v.GetDouble() > max)
            throw Bad($"{key}: must be a number from {min} to {max}", key);
    }

    private static ApiErrorException Bad(string message, string? param) => new(ApiError.BadRequest(message, param));
}
