using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>User mistakes: one line naming the file and key (or line), exit code 2, no stack trace, no output written.</summary>
public class BadInputTests
{
    private const string Valid = SmallScenario.Yaml;

    private static (RlmsProcess.Outcome Outcome, string File, string Out) Simulate(string yaml, params string[] extra)
    {
        var dir = RlmsProcess.TempDir();
        var file = Path.Combine(dir, "scenario.yaml");
        File.WriteAllText(file, yaml);
        var outDir = Path.Combine(dir, "out");
        var o = RlmsProcess.Run(["simulate", file, "--out", outDir, "--quiet", .. extra]);
        return (o, file, outDir);
    }

    private static void AssertUserError((RlmsProcess.Outcome Outcome, string File, string Out) r, params string[] mentions)
    {
        Assert.Equal(2, r.Outcome.ExitCode);
        var lines = r.Outcome.Stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Outcome.Stderr);
        foreach (var m in mentions) Assert.Contains(m, lines[0]);
        Assert.False(Directory.Exists(r.Out), "nothing may be written on bad input");
    }

    [Fact]
    public void ValidScenarioRuns()
    {
        var r = Simulate(Valid);
        Assert.True(r.Outcome.ExitCode == 0, r.Outcome.Stderr);
    }

    [Fact]
    public void MalformedYamlNamesFileAndLine()
    {
        var r = Simulate(Valid.Replace("model: DeepSeek-R1-Distill-Qwen-7B", "model: [unclosed"));
        AssertUserError(r, "scenario.yaml", "line");
    }

    [Fact]
    public void UnknownKeyIsAnErrorWithSuggestion()
    {
        var r = Simulate(Valid.Replace("max_num_seqs: 16", "max_num_seq: 16"));
        AssertUserError(r, "scenario.yaml", "scheduler.max_num_seq", "unknown key", "max_num_seqs", "line 10");
    }

    [Fact]
    public void WrongTypeNamesTheKey()
    {
        var r = Simulate(Valid.Replace("requests: 20", "requests: many"));
        AssertUserError(r, "workload.requests", "whole number", "line 6");
    }

    [Theory]
    [InlineData("rate: 4.0", "rate: -1", "workload.arrival.rate")]
    [InlineData("rate: 4.0", "rate: 0", "workload.arrival.rate")]
    [InlineData("requests: 20", "requests: 0", "workload.requests")]
    [InlineData("max_num_seqs: 16", "max_num_seqs: -3", "scheduler.max_num_seqs")]
    [InlineData("replicas: 1", "replicas: 0", "hardware.replicas")]
    [InlineData("value: 100", "value: -5", "workload.prompt_tokens.value")]
    public void NegativeOrZeroSizesAndRatesAreRejected(string from, string to, string key)
    {
        AssertUserError(Simulate(Valid.Replace(from, to)), key);
    }

    [Fact]
    public void UnknownGpuSuggestsNearest()
    {
        AssertUserError(Simulate(Valid.Replace("H100-SXM-80G", "H100-SXM-8G")), "hardware.gpu", "H100-SXM-80G");
    }

    [Fact]
    public void UnknownModelSuggestsNearest()
    {
        AssertUserError(Simulate(Valid.Replace("DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distil-Qwen-7B")), "model", "DeepSeek-R1-Distill-Qwen-7B");
    }

    [Fact]
    public void ModelThatDoesNotFitIsAnError()
    {
        var r = Simulate(Valid.Replace("DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Llama-70B"));
        AssertUserError(r, "does not fit", "tensor_parallel");
    }

    [Fact]
    public void SeventyBFitsWithTensorParallelFour()
    {
        var r = Simulate(Valid.Replace("DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Llama-70B").Replace("tensor_parallel: 1", "tensor_parallel: 4"));
        Assert.True(r.Outcome.ExitCode == 0, r.Outcome.Stderr);
    }

    [Fact]
    public void MissingFileIsAnError()
    {
        var o = RlmsProcess.Run("simulate", "/nonexistent/scenario.yaml");
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("/nonexistent/scenario.yaml", o.Stderr);
        Assert.Contains("not found", o.Stderr);
    }

    [Fact]
    public void BadSetOverrideNamesTheKey()
    {
        AssertUserError(Simulate(Valid, "--set", "workload.arrival.rate=fast"), "workload.arrival.rate", "number");
        AssertUserError(Simulate(Valid, "--set", "workload.arival.rate=2"), "workload.arival", "unknown key");
        AssertUserError(Simulate(Valid, "--set", "novalue"), "--set novalue");
    }

    [Fact]
    public void BadVariantIsReportedBeforeAnythingRuns()
    {
        var yaml = Valid + "\nvariants:\n  - { name: a }\n  - { name: b, set: { model: NoSuchModel } }\n";
        AssertUserError(Simulate(yaml), "model", "NoSuchModel");
    }

    [Fact]
    public void UnknownEnumValueListsChoices()
    {
        AssertUserError(Simulate(Valid.Replace("batching: continuous", "batching: dynamic")), "scheduler.batching", "static, continuous, chunked_prefill");
    }

    [Fact]
    public void UnknownVerbOrOptionExitsWithTwo()
    {
        Assert.Equal(2, RlmsProcess.Run("simulat").ExitCode);
        Assert.Equal(2, RlmsProcess.Run("simulate", "x.yaml", "--no-such-option").ExitCode);
    }
}
