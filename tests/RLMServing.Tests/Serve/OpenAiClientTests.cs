using System.ClientModel;
using System.Diagnostics;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using RLMServing.Serve;
using RLMServing.Tests.Cli;
using Xunit;
using Xunit.Abstractions;

namespace RLMServing.Tests.Serve;

/// <summary>Real third-party clients against rlms serve: the official openai npm package and the OpenAI .NET SDK.</summary>
public class OpenAiClientTests(ITestOutputHelper output)
{
    private const string Key = "test-key";

    private static string? Node()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (File.Exists(Path.Combine(dir, "node"))) return Path.Combine(dir, "node");
        return null;
    }

    [Fact]
    public async Task TheOpenAiNpmPackageStreamsReasoningReadsUsageAndTypedErrors()
    {
        string? node = Node();
        string folder = Path.Combine(RlmsProcess.RepoRoot(), "tests", "openai-node");
        if (node is null)
        {
            // Skipped: the machine has no Node.js (.ci/run installs the package with npm where node is present).
            output.WriteLine("SKIPPED: node is not on PATH; the openai npm client test needs Node.js 18+");
            return;
        }
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "openai"))) NpmCi(folder);
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "openai")),
            "tests/openai-node/node_modules/openai is missing and `npm ci` in tests/openai-node did not install it");
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { ApiKey = Key });
        var psi = new ProcessStartInfo(node) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder };
        foreach (var a in new[] { "client.mjs", s.Host.BaseAddress.ToString().TrimEnd('/'), s.Model, Key }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            p.Kill(entireProcessTree: true);   // a stuck client must not keep a connection to the server open past the test
            Assert.Fail("node client did not finish within 60 s");
        }
        Assert.True(p.ExitCode == 0, await stderr);
        var r = JsonDocument.Parse(await stdout).RootElement;

        var stream = r.GetProperty("stream");
        int reasoning = RLMServing.Serve.Api.FillerText.CountTokens(stream.GetProperty("reasoning").GetString()!);
        int content = RLMServing.Serve.Api.FillerText.CountTokens(stream.GetProperty("content").GetString()!);
        Assert.True(reasoning > 0);
        Assert.True(stream.GetProperty("reasoningFirst").GetBoolean());
        Assert.Equal(40, reasoning + content);
        Assert.Equal("length", stream.GetProperty("finish").GetString());
        Assert.Equal(40, stream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(reasoning, stream.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.Equal(5, stream.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        var nonStream = r.GetProperty("nonStream");
        Assert.Equal("chat.completion", nonStream.GetProperty("object").GetString());
        Assert.Equal(10, nonStream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(5, RLMServing.Serve.Api.FillerText.CountTokens(r.GetProperty("completion").GetProperty("text").GetString()!));

        Assert.Equal(400, r.GetProperty("badRequest").GetProperty("status").GetInt32());
        Assert.Equal("BadRequestError", r.GetProperty("badRequest").GetProperty("name").GetString());
        Assert.Equal("max_tokens", r.GetProperty("badRequest").GetProperty("param").GetString());
        Assert.Equal(404, r.GetProperty("notFound").GetProperty("status").GetInt32());
        Assert.Equal("NotFoundError", r.GetProperty("notFound").GetProperty("name").GetString());
        Assert.Equal(401, r.GetProperty("unauthorized").GetProperty("status").GetInt32());
        Assert.Equal("AuthenticationError", r.GetProperty("unauthorized").GetProperty("name").GetString());
        Assert.Equal(s.Model, r.GetProperty("models")[0].GetString());
    }

    [Fact]
    public async Task TheOpenAiDotNetSdkChatsStreamsAndSeesErrors()
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { ApiKey = Key });
        using var limit = new CancellationTokenSource(RunningServer.Limit);
        var options = new OpenAIClientOptions { Endpoint = new Uri(s.Host.BaseAddress, "v1"), NetworkTimeout = RunningServer.Limit };
        var chat = new ChatClient(s.Model, new ApiKeyCredential(Key), options);
        ChatMessage[] messages = [new UserChatMessage("hello there model")];

        ChatCompletion done = await chat.CompleteChatAsync(messages, new ChatCompletionOptions { MaxOutputTokenCount = 6 });
        Assert.Equal(ChatFinishReason.Length, done.FinishReason);
        Assert.Equal(3, done.Usage.InputTokenCount);
        Assert.Equal(6, done.Usage.OutputTokenCount);

        int updates = 0;
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, new ChatCompletionOptions { MaxOutputTokenCount = 8 }, limit.Token))
        {
            updates++;
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }
        // A role chunk, at least one delta, the finish and the usage: deltas that were ready together come as one
        // (as vLLM V1 coalesces them), so the count of updates is not the count of tokens.
        Assert.True(updates >= 3, $"{updates} updates");
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.Equal(8, usage?.OutputTokenCount);   // the SDK asks for include_usage itself

        var unknown = new ChatClient("no-such-model", new ApiKeyCredential(Key), options);
        var notFound = await Assert.ThrowsAsync<ClientResultException>(() => unknown.CompleteChatAsync(messages));
        Assert.Equal(404, notFound.Status);
        Assert.Contains("does not exist", notFound.Message);
        var wrongKey = new ChatClient(s.Model, new ApiKeyCredential("wrong"), options);
        Assert.Equal(401, (await Assert.ThrowsAsync<ClientResultException>(() => wrongKey.CompleteChatAsync(messages))).Status);
    }

    /// <summary>Installs the pinned client (package-lock.json) the way .ci/run does, so a plain `dotnet test` runs it too.</summary>
    private static void NpmCi(string folder)
    {
        var psi = new ProcessStartInfo("npm") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "ci", "--no-audit", "--no-fund" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000)) p.Kill(entireProcessTree: true);
    }
}
