using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace RLMServing.Serve.Api;

/// <summary>
/// An OpenAI-style error: <c>{"error": {"message", "type", "param", "code"}}</c> with its HTTP status. Clients
/// (the openai SDKs among them) read <c>error.message</c>; no stack trace ever reaches the body.
/// </summary>
public sealed record ApiError(int Status, string Message, string Type, string? Param = null, string? Code = null)
{
    public static ApiError BadRequest(string message, string? param = null) => new(400, message, "invalid_request_error", param);

    public static ApiError Unauthorized() => new(401, "Incorrect API key provided: send it as 'Authorization: Bearer KEY'.", "invalid_request_error", null, "invalid_api_key");

    public static ApiError ModelNotFound(string model, string served) =>
        new(404, $"The model '{model}' does not exist; this server serves '{served}'.", "invalid_request_error", "model", "model_not_found");

    public static ApiError QueueFull(int waiting) =>
        new(429, $"The server's waiting queue is full ({waiting} requests waiting); retry later.", "rate_limit_error", null, "queue_full");

    public static ApiError Internal(string message) => new(500, message, "server_error");

    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", Message);
        w.WriteString("type", Type);
        if (Param is null) w.WriteNull("param"); else w.WriteString("param", Param);
        if (Code is null) w.WriteNull("code"); else w.WriteString("code", Code);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(response.Body);
        Write(w);
    }
}

/// <summary>A request that cannot be served as sent; the handler answers with <see cref="Error"/>.</summary>
public sealed class ApiErrorException(ApiError error) : Exception(error.Message)
{
    public ApiError Error { get; } = error;
}
