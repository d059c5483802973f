using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>What rlms replay cannot run is refused with one line naming the file and key, exit 2, nothing written.</summary>
public class ReplayCommandTests
{
    private const string Valid = """
        name: r
        hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
        model: tiny
        workload:
          requests: 3
          arrival: { process: poisson, rate: 50 }
          prompt_tokens: { dist: constant, value: 16 }
          output_tokens: { dist: constant, value: 8 }
        scheduler: { batching: continuous, max_num_seqs: 2, max_num_batched_tokens: 64 }
        kv_cache: { activation_reserve_gib: 0.01 }
        """;

    private static (RlmsProcess.Outcome Outcome, string Out) Replay(params string[] extra)
    {
        var dir = RlmsProcess.TempDir();
        var file = Path.Combine(dir, "scenario.yaml");
        File.WriteAllText(file, Valid);
        var outDir = Path.Combine(dir, "out");
        return (RlmsProcess.Run(["replay", file, "--out", outDir, "--quiet", .. extra]), outDir);
    }

    [Theory]
    [InlineData("hardware.replicas=2", "hardware.replicas")]
    [InlineData("hardware.tensor_parallel=2", "hardware.tensor_parallel")]
    public void RefusesWhatOneRealEngineCannotRun(string set, string key)
    {
        var (o, outDir) = Replay("--set", set);
        Assert.Equal(2, o.ExitCode);
        var lines = o.Stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains("scenario.yaml", lines[0]);
        Assert.Contains(key, lines[0]);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void ReplaysAScenarioFromTheCommandLine()
    {
        var (o, outDir) = Replay("--threads", "1");
        Assert.True(o.ExitCode == 0, o.Stderr);
        foreach (var f in new[] { "summary.json", "requests.parquet", "timeseries.parquet", "iterations.parquet" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
    }
}
