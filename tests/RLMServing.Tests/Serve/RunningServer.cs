using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Serve;
using RLMServing.Tests.Cli;

namespace RLMServing.Tests.Serve;

/// <summary>An <c>rlms serve</c> host on 127.0.0.1 (a free port) with an HttpClient pointed at it.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    /// <summary>A reasoning model on one H100 (roofline): a decode step takes milliseconds, a request a fraction of a second.</summary>
    public const string Twin = """
        name: twin
        seed: 7
        hardware: { gpu: H100-SXM-80G, replicas: 1, tensor_parallel: 1 }
        model: DeepSeek-R1-Distill-Qwen-7B
        cost_model: { kind: roofline }
        workload:
          requests: 40
          arrival: { process: poisson, rate: 4 }
          prompt_tokens: { dist: constant, value: 64 }
          thinking_tokens: { dist: uniform, min: 8, max: 24 }
          answer_tokens: { dist: uniform, min: 4, max: 12 }
        scheduler: { batching: continuous, max_num_seqs: 64, max_num_batched_tokens: 4096, queue: fcfs, preemption: recompute }
        kv_cache: { block_size: 16, gpu_memory_utilization: 0.9 }
        """;

    private RunningServer(ServeHost host, PreparedRun run)
    {
        Host = host;
        Run = run;
        // No draining of a response disposed half-read: closing the connection is how a client walks away.
        Http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = host.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public ServeHost Host { get; }
    public PreparedRun Run { get; }
    public HttpClient Http { get; }
    public string Model => Host.ModelName;

    public static PreparedRun Prepare(string yaml, params string[] sets)
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "serve.yaml");
        File.WriteAllText(path, yaml);
        return ScenarioRunner.Prepare(ScenarioLoader.Load(path, sets), CatalogLoader.LoadDefault()).Single();
    }

    public static async Task<RunningServer> StartAsync(string yaml = Twin, ServeOptions? options = null, params string[] sets)
    {
        var run = Prepare(yaml, sets);
        var host = ServeHost.Create(run, (options ?? new ServeOptions()) with { Port = 0 });
        await host.StartAsync();
        return new RunningServer(host, run);
    }

    /// <summary>How long a test waits on one response stream, or on the server's shutdown, before failing instead of hanging.</summary>
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    public async ValueTask DisposeAsync()
    {
        // The client first: disposing it cancels whatever it still has in flight, so no open stream of the test's own
        // holds the server's shutdown. The shutdown itself is bounded (a grace period, then connections are cut), and
        // the wait here too, so that a regression fails the test instead of hanging the run.
        Http.Dispose();
        try { await Host.DisposeAsync().AsTask().WaitAsync(Limit); }
        catch (TimeoutException) { throw new TimeoutException($"the server did not stop within {Limit.TotalSeconds} s"); }
    }

    /// <summary>A prompt of exactly <paramref name="tokens"/> tokens (one word each, as the server counts them).</summary>
    public static string Prompt(int tokens) => string.Join(' ', Enumerable.Repeat("word", tokens));

    public static string Chat(int promptTokens, int? maxTokens = null, bool stream = false, bool ignoreEos = false, bool usage = false, string? model = null)
    {
        var body = new Dictionary<string, object?>
        {
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = Prompt(promptTokens) } },
        };
        if (model is not null) body["model"] = model;
        if (maxTokens is not null) body["max_tokens"] = maxTokens;
        if (stream) body["stream"] = true;
        if (usage) body["stream_options"] = new { include_usage = true };
        if (ignoreEos) body["ignore_eos"] = true;
        return JsonSerializer.Serialize(body);
    }

    public Task<HttpResponseMessage> PostAsync(string path, string json, string? apiKey = null, CancellationToken cancel = default,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        var msg = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey is not null) msg.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return Http.SendAsync(msg, completion, cancel);
    }

    /// <summary>Reads an SSE response's data lines (without the <c>data: </c> prefix), [DONE] included.</summary>
    /// <remarks>
    /// The response is disposed afterwards, and the read is bounded by <see cref="Limit"/>: HttpClient's timeout
    /// covers only the headers of a response read as a stream.
    /// </remarks>
    public static async Task<List<string>> DataLines(HttpResponseMessage response)
    {
        using var _ = response;
        using var limit = new CancellationTokenSource(Limit);
        var lines = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(limit.Token));
        while (await reader.ReadLineAsync(limit.Token) is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal)) lines.Add(line[6..]);
        return lines;
    }

    /// <summary>Waits (bounded) until the condition holds; false when it never did.</summary>
    public static async Task<bool> Eventually(Func<bool> condition, double seconds = 10)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            if (condition()) return true;
            await Task.Delay(10);
        }
        return condition();
    }
}
