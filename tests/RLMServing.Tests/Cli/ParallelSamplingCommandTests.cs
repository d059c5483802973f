using System.Text.Json;
using RLMServing.IO.Results;
using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>workload.n end to end: the results of n = 1 are those of a run without the key; n &gt; 1 adds the sample columns.</summary>
public class ParallelSamplingCommandTests
{
    private static string Quickstart => Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml");

    [Fact]
    public async Task OneSampleGivesTheSameResultsAsNoKey()
    {
        var a = RlmsProcess.TempDir();
        var b = RlmsProcess.TempDir();
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", a, "--set", "workload.requests=120", "--quiet").ExitCode);
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", b, "--set", "workload.requests=120", "--set", "workload.n=1", "--quiet").ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "reasoning", "summary.json")), File.ReadAllBytes(Path.Combine(b, "reasoning", "summary.json")));
        var ra = await ResultWriter.ReadRequestsAsync(Path.Combine(a, "reasoning", "requests.parquet"));
        var rb = await ResultWriter.ReadRequestsAsync(Path.Combine(b, "reasoning", "requests.parquet"));
        Assert.Equal(ra, rb);
        await using var stream = File.OpenRead(Path.Combine(b, "reasoning", "requests.parquet"));
        await using var reader = await Parquet.ParquetReader.CreateAsync(stream);
        Assert.DoesNotContain(reader.Schema.DataFields, f => f.Name is "prompt_id" or "sample_index");
    }

    [Fact]
    public async Task SamplesAreRowsWithTheirPromptAndIndex()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Quickstart, "--out", dir, "--set", "workload.requests=60", "--set", "workload.n=4", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var rows = await ResultWriter.ReadRequestsAsync(Path.Combine(dir, "reasoning", "requests.parquet"));
        Assert.Equal(240, rows.Count);
        foreach (var g in rows.GroupBy(r => r.PromptId))
        {
            Assert.Equal([0, 1, 2, 3], g.Select(r => r.SampleIndex).Order());
            Assert.Single(g.Select(r => (r.PromptTokens, r.ArrivalTimeS, r.Replica)).Distinct());
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "reasoning", "summary.json")));
        Assert.Equal(4, doc.RootElement.GetProperty("parallel_samples").GetInt32());
        Assert.True(doc.RootElement.GetProperty("shared_prompt_tokens").GetInt64() > 0);
    }

    /// <summary>A trace workload: n = 1 is byte-identical to no key; n = 2 gives two rows per trace row, sharing its prompt.</summary>
    [Fact]
    public async Task TraceRowsBecomeSamplesAndOneSampleChangesNothing()
    {
        var trace = Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "trace-azure-code.yaml");
        string a = RlmsProcess.TempDir(), b = RlmsProcess.TempDir(), c = RlmsProcess.TempDir();
        Assert.Equal(0, RlmsProcess.Run("simulate", trace, "--out", a, "--set", "workload.limit=150", "--quiet").ExitCode);
        Assert.Equal(0, RlmsProcess.Run("simulate", trace, "--out", b, "--set", "workload.limit=150", "--set", "workload.n=1", "--quiet").ExitCode);
        var o = RlmsProcess.Run("simulate", trace, "--out", c, "--set", "workload.limit=150", "--set", "workload.n=2", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "summary.json")), File.ReadAllBytes(Path.Combine(b, "summary.json")));
        // requests.parquet records the command line in its metadata: its rows must be the same.
        Assert.Equal(await ResultWriter.ReadRequestsAsync(Path.Combine(a, "requests.parquet")), await ResultWriter.ReadRequestsAsync(Path.Combine(b, "requests.parquet")));
        var rows = await ResultWriter.ReadRequestsAsync(Path.Combine(c, "requests.parquet"));
        Assert.Equal(300, rows.Count);
        Assert.All(rows.GroupBy(r => r.PromptId), g => Assert.Single(g.Select(r => (r.PromptTokens, r.ArrivalTimeS, r.Replica)).Distinct()));
    }

    /// <summary>What parallel sampling does not support is one line naming workload.n, exit code 2, nothing written.</summary>
    [Theory]
    [InlineData("sessions")]
    [InlineData("disaggregated")]
    public void UnsupportedTraceSamplingExitsWithCodeTwo(string what)
    {
        var dir = RlmsProcess.TempDir();
        string scenario;
        var sets = new List<string>();
        if (what == "sessions")
        {
            File.WriteAllText(Path.Combine(dir, "t.csv"), "arrival_time_s,prompt_tokens,output_tokens,session_id\n0,100,50,a\n1,10,5,a\n");
            scenario = Path.Combine(dir, "s.yaml");
            File.WriteAllText(scenario, "hardware: { gpu: H100-SXM-80G }\nmodel: DeepSeek-R1-Distill-Qwen-7B\nworkload: { trace: t.csv, format: csv, n: 2 }\n");
        }
        else
        {
            scenario = Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "cluster-disaggregated.yaml");
            sets.AddRange(["--set", "workload={trace: ../traces/azure-2023/AzureLLMInferenceTrace_code.csv, format: azure, limit: 20, n: 2}"]);
        }
        var o = RlmsProcess.Run(["simulate", scenario, "--out", Path.Combine(dir, "out"), "--quiet", .. sets]);
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("workload.n", o.Stderr);
        Assert.Single(o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }

    [Fact]
    public void ZeroSamplesIsRejected()
    {
        var o = RlmsProcess.Run("simulate", Quickstart, "--out", RlmsProcess.TempDir(), "--set", "workload.n=0", "--quiet");
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("workload.n", o.Stderr);
    }
}
