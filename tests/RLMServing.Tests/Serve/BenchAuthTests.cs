using RLMServing.Bench;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using RLMServing.Serve;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Serve;

/// <summary>rlms bench's credentials against rlms serve --api-key: OPENAI_API_KEY as a bearer token, or --header.</summary>
public class BenchAuthTests
{
    private const string Key = "bench-key";

    private static BenchOptions Options(RunningServer s, string? apiKey) => new()
    {
        BaseUrl = s.Host.BaseAddress.ToString().TrimEnd('/'), Model = s.Model, NumPrompts = 3, InputLen = 8, OutputLen = 4,
        ReadyCheckTimeoutSec = 0, RequestTimeoutS = 60, ResultDir = RlmsProcess.TempDir(), ApiKey = apiKey,
    };

    private static async Task<BenchRun> Run(BenchOptions options)
    {
        using var runner = new BenchRunner(options);
        return await runner.RunAsync(BenchDatasets.Load(options));
    }

    [Fact]
    public async Task TheApiKeyOrAnAuthorizationHeaderIsSentAndAWrongOneFailsEveryRequest()
    {
        await using var s = await RunningServer.StartAsync(options: new ServeOptions { ApiKey = Key });
        // OPENAI_API_KEY (BenchCommand reads it into ApiKey).
        Assert.All((await Run(Options(s, Key))).Outcomes, o => Assert.Equal(RequestOutcome.Completed, o.Status));
        // No key: every request is a failed row carrying the server's 401 message, none a latency sample.
        var refused = await Run(Options(s, null));
        Assert.Equal(3, refused.Outcomes.Count);
        Assert.All(refused.Outcomes, o =>
        {
            Assert.Equal((RequestOutcome.Failed, 401), (o.Status, o.HttpStatus));
            Assert.Contains("API key", o.Error, StringComparison.OrdinalIgnoreCase);
        });
        // The CLI: --header overrides whatever key the environment holds.
        string dir = RlmsProcess.TempDir();
        var cli = await Task.Run(() => RlmsProcess.Run("bench", "--base-url", s.Host.BaseAddress.ToString().TrimEnd('/'), "--model", s.Model,
            "--num-prompts", "2", "--input-len", "8", "--output-len", "4", "--ready-check-timeout-sec", "0",
            "--header", $"Authorization=Bearer {Key}", "--result-dir", dir, "--quiet"));
        Assert.True(cli.ExitCode == 0, cli.Stderr);
        var rows = await ResultWriter.ReadRequestsAsync(Path.Combine(dir, "requests.parquet"));
        Assert.Equal(2, rows.Count(r => r.Status == RequestStatus.Completed));
    }
}
