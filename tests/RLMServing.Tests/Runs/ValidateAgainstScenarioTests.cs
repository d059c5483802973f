using System.Text.Json;
using RLMServing.Tests.Cli;
using RLMServing.Tests.Profiling;
using Xunit;

namespace RLMServing.Tests.Runs;

/// <summary>rlms validate --measured RUN --scenario S: the RTX PRO 6000 vLLM 0.19 run, end to end through the CLI.</summary>
public sealed class ValidateAgainstScenarioTests
{
    [SharedDataFact]
    public void RtxPro6000Run_ImportedThenValidated_PredictsEachMeanWithinTenPercent()
    {
        var root = RlmsProcess.RepoRoot();
        var dir = RlmsProcess.TempDir();
        try
        {
            var run = Path.Combine(SharedData.Root!, "validation", "llmservingsim", "RTXPRO6000", "Llama-3.1-8B");
            var imported = RlmsProcess.RunIn(root, "trace", "import", run, "--format", "llmservingsim-run", "--out", Path.Combine(dir, "run"));
            Assert.Equal(0, imported.ExitCode);
            var outcome = RlmsProcess.RunIn(root, "validate", "--measured", Path.Combine(dir, "run"),
                "--scenario", "scenarios/validation/rtxpro6000-llama-3.1-8b-vllm019.yaml", "--json", "--out", Path.Combine(dir, "predicted"));
            Assert.True(outcome.ExitCode is 0 or 1, outcome.Stderr);
            using var doc = JsonDocument.Parse(outcome.Stdout);
            foreach (var metric in new[] { "ttft", "tpot", "e2el" })
            {
                var m = doc.RootElement.GetProperty(metric);
                Assert.Equal(300, m.GetProperty("requests_matched").GetInt32());
                Assert.InRange(m.GetProperty("mean_error").GetDouble(), -0.10, 0.10);
            }
            Assert.True(File.Exists(Path.Combine(dir, "predicted", "requests.parquet")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Validate_WithNeitherPredictedNorScenario_IsOneLineExitTwo()
    {
        var outcome = RlmsProcess.Run("validate", "--measured", "nowhere/requests.parquet");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("give --predicted FILE", outcome.Stderr);
    }
}
