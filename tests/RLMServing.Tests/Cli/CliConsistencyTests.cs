using System.Reflection;
using CommandLine;
using RLMServing.Cli.Commands;
using RLMServing.IO.Calibration;
using RLMServing.IO.Traces;
using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>One CLI: the same option means the same on every verb, tables fit where they go, help says what is accepted.</summary>
public class CliConsistencyTests
{
    private static readonly string Valid = SmallScenario.Yaml.Replace("requests: 20", "requests: 40");

    private static readonly Type[] Verbs =
        [typeof(SimulateCommand), typeof(TraceCommand), typeof(ProfileCommand), typeof(ValidateCommand), typeof(CalibrateCommand),
         typeof(SweepCommand), typeof(ReplayCommand), typeof(ReportCommand)];

    private static IEnumerable<(Type Verb, OptionAttribute Option, Type Type)> Options() =>
        Verbs.SelectMany(v => v.GetProperties().Select(p => (v, p.GetCustomAttribute<OptionAttribute>(), p.PropertyType)))
            .Where(x => x.Item2 is not null).Select(x => (x.v, x.Item2!, x.PropertyType));

    [Fact]
    public void EveryVerbTakesQuiet()
    {
        foreach (var verb in Verbs)
            Assert.True(Options().Any(o => o.Verb == verb && o.Option.LongName == "quiet" && !o.Option.Hidden), $"{verb.Name} has no --quiet");
        Assert.DoesNotContain(Options(), o => o.Option.LongName == "no-progress" && !o.Option.Hidden);
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("out")]
    [InlineData("set")]
    [InlineData("catalog")]
    [InlineData("quiet")]
    public void ASharedOptionHasOneTypeOnEveryVerb(string name)
    {
        var types = Options().Where(o => o.Option.LongName == name).Select(o => Nullable.GetUnderlyingType(o.Type) ?? o.Type).Distinct().ToList();
        Assert.True(types.Count == 1, $"--{name} is {string.Join(", ", types.Select(t => t.Name))}");
    }

    [Fact]
    public void ScenarioVerbsTakeSeedSetAndCatalog()
    {
        foreach (var verb in new[] { typeof(SimulateCommand), typeof(ReplayCommand) })
            foreach (var name in new[] { "seed", "set", "catalog", "out", "quiet" })
                Assert.True(Options().Any(o => o.Verb == verb && o.Option.LongName == name), $"{verb.Name} lacks --{name}");
    }

    [Fact]
    public void TraceHelpListsEveryFormatTheImporterAccepts()
    {
        var importers = RLMServing.Cli.CliImporters.Create();
        var help = RlmsProcess.Run("trace", "--help");
        Assert.Equal(0, help.ExitCode);
        var text = help.Stderr + help.Stdout;
        foreach (var importer in importers.All) Assert.Contains(importer.Format, text);
    }

    [Fact]
    public async Task TensorParallelSizeIsVllmsNameForTensorParallel()
    {
        var dir = RlmsProcess.TempDir();
        var a = Path.Combine(dir, "a.yaml");
        var b = Path.Combine(dir, "b.yaml");
        File.WriteAllText(a, Valid.Replace("tensor_parallel: 1", "tensor_parallel: 2"));
        File.WriteAllText(b, Valid.Replace("tensor_parallel: 1", "tensor_parallel_size: 2"));
        Assert.Equal(0, RlmsProcess.Run("simulate", a, "--out", Path.Combine(dir, "a"), "--quiet").ExitCode);
        Assert.Equal(0, RlmsProcess.Run("simulate", b, "--out", Path.Combine(dir, "b"), "--quiet").ExitCode);
        // The same requests, timed alike (the files differ only in the command line in their metadata).
        Assert.Equal(await RLMServing.IO.Results.ResultWriter.ReadRequestsAsync(Path.Combine(dir, "a", "requests.parquet")),
            await RLMServing.IO.Results.ResultWriter.ReadRequestsAsync(Path.Combine(dir, "b", "requests.parquet")));
        Assert.Contains("\"tensor_parallel\": 2", File.ReadAllText(Path.Combine(dir, "b", "summary.json")));

        File.WriteAllText(b, Valid.Replace("tensor_parallel: 1", "tensor_parallel: 2, tensor_parallel_size: 2"));
        var both = RlmsProcess.Run("simulate", b, "--out", Path.Combine(dir, "c"), "--quiet");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("not both", both.Stderr);
        var set = RlmsProcess.Run("simulate", a, "--set", "hardware.tensor_parallel=null", "--set", "hardware.tensor_parallel_size=4", "--out", Path.Combine(dir, "d"), "--quiet");
        Assert.True(set.ExitCode == 0, set.Stderr);
        Assert.Contains("\"tensor_parallel\": 4", File.ReadAllText(Path.Combine(dir, "d", "summary.json")));
    }

    [Fact]
    public void CalibratingACpuProfileNeedsNoGpu()
    {
        var trace = Path.Combine(RlmsProcess.RepoRoot(), "traces", "cpu", "tiny-serving-rounds-2026-11-28", "profile", "iterations.parquet");
        var dir = RlmsProcess.TempDir();
        var cal = Path.Combine(dir, "cpu.json");
        var o = RlmsProcess.Run("calibrate", trace, "--out", cal, "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Equal("CPU", CalibrationStore.Read(cal).Gpu);
    }

    [Fact]
    public void APassGpuMessageListsTheNamesThatWouldDo()
    {
        var trace = Path.Combine(RlmsProcess.RepoRoot(), "traces", "cpu", "tiny-serving-rounds-2026-11-28", "profile", "iterations.parquet");
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("calibrate", trace, "--gpu", "H100-SXM-8G", "--out", Path.Combine(dir, "x.json"));
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("pass --gpu NAME, one of:", o.Stderr);
        Assert.Contains("H100-SXM-80G", o.Stderr);
        Assert.Contains("CPU", o.Stderr);
    }

    [Fact]
    public void ATablePipedToAFileIsNotWrappedAt80Columns()
    {
        var dir = RlmsProcess.TempDir();
        var yaml = Path.Combine(dir, "s.yaml");
        File.WriteAllText(yaml, Valid + "\nvariants:\n  - { name: a-long-variant-name-one }\n  - { name: a-long-variant-name-two }\n  - { name: a-long-variant-name-three }\n");
        var o = RlmsProcess.Run("simulate", yaml, "--out", Path.Combine(dir, "o"));
        Assert.True(o.ExitCode == 0, o.Stderr);
        var lines = o.Stdout.Split('\n');
        Assert.Contains(lines, l => l.Length > 80);
        // One row per metric: the model row holds every variant's model name on one line.
        Assert.Single(lines, l => l.Contains("│ model "));
        Assert.Equal(3, lines.Single(l => l.Contains("│ model ")).Split("DeepSeek-R1-Distill-Qwen-7B").Length - 1);
    }

    [Fact]
    public void TheTerminalSummaryAndTheReportShowTheSameStatisticsInTheSameUnits()
    {
        var dir = RlmsProcess.TempDir();
        var yaml = Path.Combine(dir, "s.yaml");
        File.WriteAllText(yaml, Valid);
        var o = RlmsProcess.Run("simulate", yaml, "--out", Path.Combine(dir, "o"), "--report");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var html = File.ReadAllText(Path.Combine(dir, "o", "report.html"));
        foreach (var label in new[] { "request throughput (req/s)", "TTFT median / p99 (s)", "TPOT median / p99 (ms)", "E2EL median / p99 (s)", "peak / mean KV usage" })
        {
            var line = o.Stdout.Split('\n').Single(l => l.Contains(label));
            var value = line.Split('│', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[1];
            Assert.Contains(label, html);
            Assert.Contains(value, html);
        }
    }
}
