using System.Diagnostics;
using RLMServing.IO.Sweeps;
using RLMServing.Metrics;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Sweeps;

/// <summary>A small sweep (3 x 3 points x 2 variants = 18 configurations, 2 seeds) and its uninterrupted run, shared by the shard and resume tests.</summary>
public sealed class SmallSweep
{
    public SmallSweep()
    {
        Dir = RlmsProcess.TempDir();
        File = Path.Combine(Dir, "small.yaml");
        System.IO.File.WriteAllText(File, $"""
            base: {Path.GetRelativePath(Dir, Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml"))}
            set: {"{"} workload.requests: 100 {"}"}
            axes:
              scheduler.batching: [static, continuous, chunked_prefill]
              scheduler.max_num_seqs: {"{"} from: 16, to: 64, points: 3, scale: log {"}"}
            seeds: [1, 2]
            """);
        var o = RlmsProcess.Run("sweep", File, "--out", Path.Combine(Dir, "full"), "--jobs", "2", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Results = System.IO.File.ReadAllBytes(Path.Combine(Dir, "full", "results.parquet"));
    }

    public string Dir { get; }
    public string File { get; }
    public byte[] Results { get; }
    public const int Configurations = 18;
}

public class SweepCommandTests(SmallSweep small) : IClassFixture<SmallSweep>
{
    private static ResultsTable Read(string path) => ResultsTable.ReadAsync(path).GetAwaiter().GetResult().Table;

    [Fact]
    public void SweepReportIsWrittenBesideTheResultsAndShardsRefuseIt()
    {
        var dir = RlmsProcess.TempDir();
        var sweep = Path.Combine(dir, "two.yaml");
        System.IO.File.WriteAllText(sweep, $"""
            base: {Path.GetRelativePath(dir, Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml"))}
            set: {"{"} workload.requests: 60 {"}"}
            axes:
              scheduler.max_num_seqs: [16, 64]
            seeds: 1
            """);
        var refused = RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "shard"), "--shard", "0/2", "--report");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--report", refused.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "shard", "parts")) && Directory.EnumerateFiles(Path.Combine(dir, "shard", "parts")).Any());

        var o = RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "out"), "--report", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var html = System.IO.File.ReadAllText(Path.Combine(dir, "out", "report.html"));
        Assert.Contains("scheduler.max_num_seqs", html);
        Assert.DoesNotContain("src=\"http", html);

        // merge takes --report too, with an explicit path
        var merged = Path.Combine(dir, "merged.html");
        var m = RlmsProcess.Run("sweep", "merge", Path.Combine(dir, "out"), "--report", merged);
        Assert.True(m.ExitCode == 0, m.Stderr);
        Assert.True(System.IO.File.Exists(merged));
    }

    [Fact]
    public void MinimalSweepFromTheIssueWritesOneRowPerConfigurationAndSeed()
    {
        var dir = RlmsProcess.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "sweeps"));
        var sweep = Path.Combine(dir, "sweeps", "minimal.yaml");
        // The issue's minimal form, with the scenario beside it as ../scenarios/quickstart.yaml (fewer requests, so the test is quick).
        Directory.CreateDirectory(Path.Combine(dir, "scenarios"));
        var quickstart = System.IO.File.ReadAllText(Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml")).Replace("requests: 2000", "requests: 100");
        System.IO.File.WriteAllText(Path.Combine(dir, "scenarios", "quickstart.yaml"), quickstart);
        System.IO.File.WriteAllText(sweep, """
            base: ../scenarios/quickstart.yaml      # relative to the sweep file
            axes:
              scheduler.batching: [static, continuous, chunked_prefill]
              scheduler.max_num_seqs: [32, 64, 128]
            seeds: 1
            """);
        var o = RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "out"));
        Assert.True(o.ExitCode == 0, o.Stderr);
        var t = Read(Path.Combine(dir, "out", "results.parquet"));
        // 3 x 3 points, each with the base scenario's two variants.
        Assert.Equal(18, t.Rows.Count);
        Assert.Equal(new ResultColumn("config_id", ColumnKind.Int32), t.Columns[0]);
        Assert.Equal(new ResultColumn("seed", ColumnKind.Int64), t.Columns[1]);
        Assert.Equal(new ResultColumn("scheduler.batching", ColumnKind.String), t.Columns[2]);
        Assert.Equal(new ResultColumn("scheduler.max_num_seqs", ColumnKind.Double), t.Columns[3]);
        // Every summary.json key is a column; the steady_state object's keys are flattened with dots.
        var summaryKeys = typeof(RunSummary).GetProperties().SelectMany(p => p.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonPropertyNameAttribute), false)
            .Cast<System.Text.Json.Serialization.JsonPropertyNameAttribute>()).Select(a => a.Name).Where(k => k != "steady_state");
        foreach (var k in summaryKeys) Assert.True(t.IndexOf(k) >= 0, k);
        foreach (var k in new[] { "steady_state.warmup_s", "steady_state.drain_s", "p95_ttft_ms", "steady_state.p95_ttft_ms", "steady_state.p99_e2el_ms" })
            Assert.True(t.IndexOf(k) >= 0, k);
        Assert.Equal(Enumerable.Range(0, 18), t.Rows.Select(r => (int)r[0]!));
        Assert.All(t.Rows, r => Assert.Equal(42L, r[1]));
        Assert.Equal(["reasoning", "standard"], t.Rows.Select(r => (string)r[t.IndexOf("variant")]!).Distinct().Order());
        Assert.Equal(["chunked_prefill", "continuous", "static"], t.Rows.Select(r => (string)r[2]!).Distinct().Order());
        // The axis value reached the simulator: static batching reports Static.
        Assert.All(t.Rows.Where(r => (string)r[2]! == "static"), r => Assert.Equal("Static", r[t.IndexOf("batching")]));
        Assert.All(t.Rows, r => Assert.Equal(100, r[t.IndexOf("completed")]));
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "out"), "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void UnionOfShardsEqualsTheUnshardedRunRowForRow()
    {
        var dir = RlmsProcess.TempDir();
        // The reference ran with --jobs 2, the shards with --jobs 1: results do not depend on the parallelism either.
        // Each shard writes its own folder (as on separate machines); merge joins them.
        foreach (var (shard, outDir) in new[] { ("0/2", "a"), ("1/2", "b") })
        {
            var o = RlmsProcess.Run("sweep", small.File, "--out", Path.Combine(dir, outDir), "--shard", shard, "--jobs", "1", "--quiet");
            Assert.True(o.ExitCode == 0, o.Stderr);
            Assert.False(System.IO.File.Exists(Path.Combine(dir, outDir, "results.parquet")));
        }
        var partial = RlmsProcess.Run("sweep", "merge", Path.Combine(dir, "a"));
        Assert.Equal(2, partial.ExitCode);
        Assert.Contains("9 of 18 configurations have no results", partial.Stderr);
        var m = RlmsProcess.Run("sweep", "merge", Path.Combine(dir, "a"), Path.Combine(dir, "b"), "--out", Path.Combine(dir, "merged"));
        Assert.True(m.ExitCode == 0, m.Stderr);
        Assert.Equal(small.Results, System.IO.File.ReadAllBytes(Path.Combine(dir, "merged", "results.parquet")));
        var t = Read(Path.Combine(dir, "merged", "results.parquet"));
        Assert.Equal(SmallSweep.Configurations * 2, t.Rows.Count);
        Assert.Equal([16.0, 32.0, 64.0], t.Rows.Select(r => (double)r[t.IndexOf("scheduler.max_num_seqs")]!).Distinct().Order());
        Assert.Equal([1L, 2L], t.Rows.Select(r => (long)r[1]!).Distinct().Order());
    }

    [Fact]
    public void ResumeAfterAKilledRunGivesTheFullSetWithoutDuplicates()
    {
        var dir = RlmsProcess.TempDir();
        var parts = Path.Combine(dir, "parts");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "rlms.dll"), "sweep", small.File, "--out", dir, "--jobs", "1", "--quiet" }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            var sw = Stopwatch.StartNew();
            while (!(Directory.Exists(parts) && Directory.GetFiles(parts, "config-*.parquet").Length >= 3) && !p.HasExited && sw.Elapsed.TotalSeconds < 60) Thread.Sleep(5);
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        int committed = Directory.GetFiles(parts, "config-*.parquet").Length;
        Assert.InRange(committed, 3, SmallSweep.Configurations - 1);
        Assert.False(System.IO.File.Exists(Path.Combine(dir, "results.parquet")));

        var again = RlmsProcess.Run("sweep", small.File, "--out", dir, "--quiet");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("--resume", again.Stderr);

        var resumed = RlmsProcess.Run("sweep", small.File, "--out", dir, "--resume");
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains($"{committed} already done, {SmallSweep.Configurations - committed} to run", resumed.Stderr);
        Assert.Equal(small.Results, System.IO.File.ReadAllBytes(Path.Combine(dir, "results.parquet")));
        var t = Read(Path.Combine(dir, "results.parquet"));
        Assert.Equal(SmallSweep.Configurations * 2, t.Rows.Select(r => ((int)r[0]!, (long)r[1]!)).Distinct().Count());
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("scheduler.max_num_seq: [32, 64]", "scheduler.max_num_seq: unknown key")]
    [InlineData("scheduler.batching: [static, fastest]", "unknown value 'fastest'")]
    [InlineData("hardware.gpu: [H100-SXM-80G, H9000]", "hardware.gpu")]
    [InlineData("hardware.tensor_parallel: [1, 3]", "hardware.tensor_parallel=3")]
    [InlineData("scheduler.max_num_seqs: { from: 8, to: 64 }", "axes.scheduler.max_num_seqs: a grid needs 'step' or 'points'")]
    [InlineData("scheduler.max_num_seqs: { from: 8, to: 64, step: 8, points: 3 }", "axes.scheduler.max_num_seqs.points: give step or points")]
    [InlineData("seed: [1, 2]", "axes.seed: seeds are not an axis")]
    [InlineData("scheduler.batching: static", "axes.scheduler.batching: expected a list of values or a range")]
    public void BadAxisNamesTheSweepFileAndKey(string axis, string expected)
    {
        var sweep = BadSweep(axis);
        var e = Assert.Throws<UserInputException>(() => new SweepRunner(SweepLoader.Load(sweep), IO.Catalog.CatalogLoader.LoadDefault()).Validate());
        Assert.Contains(sweep, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void BadAxisIsOneLineAndExitCode2WithNothingWritten()
    {
        var sweep = BadSweep("scheduler.batching: [static, fastest]");
        var outDir = Path.Combine(Path.GetDirectoryName(sweep)!, "out");
        var o = RlmsProcess.Run("sweep", sweep, "--out", outDir);
        Assert.Equal(2, o.ExitCode);
        var lines = o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(sweep, lines[0]);
        Assert.Contains("scheduler.batching", lines[0]);
        Assert.False(Directory.Exists(outDir));
    }

    private static string BadSweep(string axis)
    {
        var sweep = Path.Combine(RlmsProcess.TempDir(), "bad.yaml");
        System.IO.File.WriteAllText(sweep, $"base: {Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml")}\naxes:\n  {axis}\n");
        return sweep;
    }

    [Fact]
    public void CapacitySearchWritesCapacityCostAndParetoColumns()
    {
        var dir = RlmsProcess.TempDir();
        var sweep = Path.Combine(dir, "capacity.yaml");
        System.IO.File.WriteAllText(sweep, $"""
            base: {Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "capacity-r1-32b.yaml")}
            set: {"{"} workload.requests: 200, model: DeepSeek-R1-Distill-Qwen-7B {"}"}
            axes:
              hardware.gpu: [H100-SXM-80G, A100-SXM-80G]
              hardware.tensor_parallel: [1, 2]
            capacity: {"{"} start_rate: 2, tolerance: 0.2, target_rate: 10, slo: {"{"} goodput_fraction: 0.9, p99_ttft_ms: 4000 {"}"} {"}"}
            cost: {"{"} usd_per_gpu_hour: {"{"} H100-SXM-80G: 3.0, A100-SXM-80G: 1.5 {"}"} {"}"}
            """);
        var o = RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "out"), "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var t = Read(Path.Combine(dir, "out", "results.parquet"));
        Assert.Equal(4, t.Rows.Count);
        int rate = t.IndexOf("capacity.max_rate"), gpr = t.IndexOf("capacity.gpus_per_replica"), gft = t.IndexOf("capacity.gpus_for_target"),
            cost = t.IndexOf("cost.usd_per_million_tokens"), pareto = t.IndexOf("pareto");
        Assert.Equal(ColumnKind.Bool, t.Columns[pareto].Kind);
        foreach (var r in t.Rows)
        {
            double max = (double)r[rate]!;
            int tp = (int)(double)r[t.IndexOf("hardware.tensor_parallel")]!;
            Assert.True(max > 0);
            Assert.Equal(tp, r[gpr]);
            Assert.Equal((int)Math.Ceiling(10 / max) * tp, r[gft]);
            // The row's metrics are the run at the capacity, at the horizon that decided it: it meets the objective
            // over its steady window.
            Assert.False((bool)r[t.IndexOf("unstable")]!);
            Assert.True((double)r[t.IndexOf("steady_state.p99_ttft_ms")]! <= 4000);
            Assert.True((double)r[t.IndexOf("steady_state.goodput_fraction")]! >= 0.9 - 1e-9);
            Assert.True((int)r[t.IndexOf("capacity.requests_used")]! >= 200);
            Assert.Equal((int)r[t.IndexOf("capacity.requests_used")]!, (int)r[t.IndexOf("completed")]! + (int)r[t.IndexOf("rejected")]!);
            Assert.Null(r[t.IndexOf("capacity.ci_low")]);   // one seed: no interval
            double price = (string)r[t.IndexOf("hardware.gpu")]! == "H100-SXM-80G" ? 3.0 : 1.5;
            Assert.Equal(tp * price / 3600 / (double)r[t.IndexOf("steady_state.output_throughput")]! * 1e6, (double)r[cost]!, 9);
        }
        Assert.Contains(t.Rows, r => (bool)r[pareto]!);
        var frontier = t.Rows.Where(r => (bool)r[pareto]!).ToList();
        Assert.All(t.Rows.Except(frontier), r => Assert.Contains(frontier, f => (double)f[cost]! <= (double)r[cost]! && (double)f[t.IndexOf("p99_e2el_ms")]! <= (double)r[t.IndexOf("p99_e2el_ms")]!));
    }
}
