using System.Diagnostics;
using RLMServing.IO.Calibration;
using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>
/// Inputs a careless or hostile user gives: every one ends in one line naming what is wrong, exit code 2, nothing
/// written where it must not be, memory and time bounded by the work asked for.
/// </summary>
public class RobustnessTests
{
    private const string Valid = SmallScenario.Yaml;

    private static string Write(string dir, string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static void AssertOneLine(RlmsProcess.Outcome o, params string[] mentions)
    {
        Assert.True(o.ExitCode == 2, $"exit {o.ExitCode}: {o.Stderr}");
        var lines = o.Stderr.Trim().Split('\n');
        Assert.True(lines.Length == 1, o.Stderr);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", o.Stderr);
        foreach (var m in mentions) Assert.Contains(m, lines[0]);
    }

    private static string MakeFifo(string dir)
    {
        var fifo = Path.Combine(dir, "fifo");
        using var p = Process.Start("mkfifo", [fifo])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return fifo;
    }

    private static string Sweep(string dir, string body) =>
        Write(dir, "sweep.yaml", $"base: {Write(dir, "base.yaml", Valid)}\n{body}");

    // 1. Writes where it must not.

    [Theory]
    [InlineData("/dev/null")]
    [InlineData("FIFO")]
    public void OutputOntoADeviceOrFifoIsRefusedByEveryVerbThatWrites(string target)
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Write(dir, "s.yaml", Valid);
        var csv = Write(dir, "t.csv", "arrival_time_s,prompt_tokens,output_tokens\n0,10,10\n");
        var out_ = target == "FIFO" ? MakeFifo(dir) : target;
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, RlmsProcess.Run("simulate", scenario, "--out", run, "--quiet").ExitCode);
        var trace = Path.Combine(RlmsProcess.RepoRoot(), "traces", "cpu", "tiny-serving-rounds-2026-11-28", "profile", "iterations.parquet");
        AssertOneLine(RlmsProcess.Run("trace", "import", csv, "--format", "csv", "--out", out_), "--out", out_);
        AssertOneLine(RlmsProcess.Run("calibrate", trace, "--out", out_), "--out", out_);
        AssertOneLine(RlmsProcess.Run("report", run, "--out", out_), "--out", out_);
        AssertOneLine(RlmsProcess.Run("simulate", scenario, "--out", out_, "--quiet"), "--out", out_);
        Assert.Equal(target == "FIFO" ? RLMServing.IO.Files.FileKind.Fifo : RLMServing.IO.Files.FileKind.CharacterDevice, RLMServing.IO.Files.FileProbe.Kind(out_));
    }

    [Theory]
    [InlineData("/tmp/x/pwned")]
    [InlineData("../../escaped")]
    [InlineData("..")]
    public void AScenarioOrSweepNameIsANameNeverAPath(string name)
    {
        var dir = RlmsProcess.TempDir();
        var work = Directory.CreateDirectory(Path.Combine(dir, "a", "b")).FullName;
        var scenario = Write(work, "s.yaml", Valid.Replace("name: t", $"name: '{name}'"));
        AssertOneLine(RlmsProcess.RunIn(work, "simulate", scenario, "--quiet"), "name", "line 1");
        var sweep = Write(work, "sw.yaml", $"name: '{name}'\nbase: {Write(work, "base.yaml", Valid)}\naxes: {{ scheduler.max_num_seqs: [8, 16] }}\n");
        AssertOneLine(RlmsProcess.RunIn(work, "sweep", sweep, "--quiet"), "name");
        Assert.False(Directory.Exists("/tmp/x/pwned"));
        Assert.False(Directory.Exists(Path.Combine(dir, "escaped")));
        Assert.False(Directory.Exists(Path.Combine(work, "results")));
    }

    // 2. Unbounded parsing.

    private const string BillionLaughs = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """;

    [Theory]
    [InlineData("simulate")]
    [InlineData("sweep")]
    public void ABillionLaughsIsRefusedBeforeItGrows(string verb)
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run(verb, Write(dir, "laughs.yaml", BillionLaughs), "--out", Path.Combine(dir, "o"));
        AssertOneLine(o, "laughs.yaml", "aliases expanded");
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Theory]
    [InlineData("simulate")]
    [InlineData("sweep")]
    public void FiftyThousandOpenBracketsAreRefusedNotAStackOverflow(string verb)
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run(verb, Write(dir, "deep.yaml", "a: " + new string('[', 50_000)), "--out", Path.Combine(dir, "o"));
        AssertOneLine(o, "deep.yaml", "nested deeper than 64");
    }

    [Fact]
    public void ACatalogWithABillionLaughsIsRefused()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Write(dir, "s.yaml", Valid), "--catalog", Write(dir, "cat.yaml", BillionLaughs), "--out", Path.Combine(dir, "o"));
        AssertOneLine(o, "cat.yaml", "aliases expanded");
    }

    // 3. Absurd values: refused with the key and the bound.

    [Theory]
    [InlineData("rate: 4.0", "rate: 1e-7", "workload.arrival", "one year")]
    [InlineData("requests: 20", "requests: 2000000000", "workload.requests", "20,000,000")]
    [InlineData("scheduler:", "cost_model: { slowdown: 1e300 }\nscheduler:", "cost_model.slowdown", "1,000")]
    public void AbsurdScenarioValuesAreRefusedWithKeyAndBound(string from, string to, string key, string bound)
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Write(dir, "s.yaml", Valid.Replace(from, to)), "--out", Path.Combine(dir, "o"), "--quiet");
        AssertOneLine(o, key, bound);
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Fact]
    public void FiftyRequestsAtOnePerMillionSecondsAreRefused()
    {
        var dir = RlmsProcess.TempDir();
        var yaml = Valid.Replace("requests: 20", "requests: 50").Replace("rate: 4.0", "rate: 1e-6");
        AssertOneLine(RlmsProcess.Run("simulate", Write(dir, "s.yaml", yaml), "--out", Path.Combine(dir, "o"), "--quiet"),
            "workload.arrival", "50,000,000 s", "31,536,000 s");
    }

    [Theory]
    [InlineData("0,100,50\n1e308,100,50\n", "after time_scale")]
    [InlineData("0,100,50\n1,100000000,50\n", "row 1")]
    public void ATraceWithAbsurdTimesOrLengthsIsRefused(string rows, string mention)
    {
        var dir = RlmsProcess.TempDir();
        Write(dir, "t.csv", "arrival_time_s,prompt_tokens,output_tokens\n" + rows);
        var yaml = Valid.Replace("""
              requests: 20
              arrival: { process: poisson, rate: 4.0 }
              prompt_tokens: { dist: constant, value: 100 }
              output_tokens: { dist: constant, value: 50 }
            """, "  trace: t.csv\n  format: csv");
        var o = RlmsProcess.Run("simulate", Write(dir, "s.yaml", yaml), "--out", Path.Combine(dir, "o"), "--quiet");
        AssertOneLine(o, "workload.trace", mention, "docs/limits.md");
    }

    [Theory]
    [InlineData("0001-01-01 00:00:00.0000000", "9999-12-31 23:59:59.0000000")]
    public void AnAzureTraceDatedYearOneToYear9999IsRefused(string first, string last)
    {
        var dir = RlmsProcess.TempDir();
        Write(dir, "azure.csv", $"TIMESTAMP,ContextTokens,GeneratedTokens\n{first},100,50\n{last},100,50\n");
        var yaml = Valid.Replace("""
              requests: 20
              arrival: { process: poisson, rate: 4.0 }
              prompt_tokens: { dist: constant, value: 100 }
              output_tokens: { dist: constant, value: 50 }
            """, "  trace: azure.csv\n  format: azure");
        AssertOneLine(RlmsProcess.Run("simulate", Write(dir, "s.yaml", yaml), "--out", Path.Combine(dir, "o"), "--quiet"), "workload.trace", "one year");
    }

    [Fact]
    public void CalibrationCoefficientsOf1e308AreRefused()
    {
        var root = RlmsProcess.RepoRoot();
        var shipped = Directory.EnumerateFiles(Path.Combine(root, "calibration"), "*.json").Order().First();
        var dir = RlmsProcess.TempDir();
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(shipped))!;
        json["coefficients"]!["per_token_us"] = 1e308;
        var path = Write(dir, "cal.json", json.ToJsonString());
        var e = Assert.Throws<UserInputException>(() => CalibrationStore.Read(path));
        Assert.Contains("coefficients.per_token_us", e.Message);
        Assert.Contains("1E+09", e.Message);
    }

    [Fact]
    public void AModelTooBigForACpuReplayIsRefusedBeforeAllocation()
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Write(dir, "s.yaml", Valid.Replace("DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Llama-70B").Replace("gpu: H100-SXM-80G", "gpu: CPU"));
        AssertOneLine(RlmsProcess.Run("replay", scenario, "--out", Path.Combine(dir, "o"), "--device", "cpu"), "DeepSeek-R1-Distill-Llama-70B", "does not fit");
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));

        // The machine itself may hold less than the catalog's CPU entry: weights and KV slots are counted against it.
        var tiny = Write(dir, "tiny.yaml", Valid.Replace("DeepSeek-R1-Distill-Qwen-7B", "tiny").Replace("gpu: H100-SXM-80G", "gpu: CPU"));
        var run = RLMServing.IO.Runs.ScenarioRunner.Prepare(RLMServing.IO.Scenarios.ScenarioLoader.Load(tiny), RLMServing.IO.Catalog.CatalogLoader.LoadDefault())[0];
        var e = Assert.Throws<UserInputException>(() => RLMServing.Profiling.Replay.ReplayRunner.CheckMemory(run, tiny, RLMServing.Profiling.Onnx.OnnxType.Float, 1L << 20));
        Assert.Contains("GiB are available", e.Message);
        RLMServing.Profiling.Replay.ReplayRunner.CheckMemory(run, tiny, RLMServing.Profiling.Onnx.OnnxType.Float, 1L << 40);
    }

    // 4. Unbounded work requested: counted first, refused with the count.

    [Theory]
    [InlineData("axes: { scheduler.max_num_seqs: { from: 1, to: 1000000000, step: 1 } }", "1,000,000,000 runs")]
    [InlineData("axes: { scheduler.max_num_seqs: [8, 16] }\nseeds: 1000000000", "seeds")]
    [InlineData("axes: { scheduler.max_num_seqs: { from: 1, to: 64 } }\nsampling: { method: latin_hypercube, samples: 1000000000 }", "1,000,000,000 runs")]
    public void AHugeSweepIsCountedAndRefusedBeforeAnythingRuns(string body, string mention)
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("sweep", Sweep(dir, body), "--out", Path.Combine(dir, "o"), "--quiet");
        AssertOneLine(o, mention);
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Fact]
    public void MaxConfigsRaisesOrLowersTheSweepBound()
    {
        var dir = RlmsProcess.TempDir();
        var sweep = Sweep(dir, "axes: { scheduler.max_num_seqs: [8, 16, 32] }\nseeds: 2");
        AssertOneLine(RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "o"), "--max-configs", "5", "--quiet"), "6 runs", "--max-configs");
        AssertOneLine(RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "o"), "--max-configs", "-1", "--quiet"), "--max-configs");
    }

    [Fact]
    public void AServeGenDurationOf1e308IsRefused()
    {
        var dir = RlmsProcess.TempDir();
        var servegen = Path.Combine(RlmsProcess.RepoRoot(), "traces", "servegen-deepseek-r1");
        AssertOneLine(RlmsProcess.Run("trace", "import", servegen, "--format", "servegen", "--duration", "1e308", "--out", Path.Combine(dir, "o.parquet")),
            "--duration", "604,800");
        Assert.False(File.Exists(Path.Combine(dir, "o.parquet")));
    }

    // 5. Files that are not what they claim.

    public static TheoryData<string, byte[]> BadParquet => new()
    {
        { "footer-2gib", [.. "PAR1"u8, .. new byte[16], .. BitConverter.GetBytes(int.MaxValue), .. "PAR1"u8] },
        { "par1-only", [.. "PAR1"u8, 0, 0, 0, 0, .. "PAR1"u8] },
        { "empty", [] },
        { "corrupt-footer", [.. "PAR1"u8, .. Enumerable.Range(0, 100).Select(i => (byte)(i * 37 + 11)), .. BitConverter.GetBytes(50), .. "PAR1"u8] },
    };

    [Theory]
    [MemberData(nameof(BadParquet))]
    public void AParquetFileThatIsNotOneIsOneLineInEveryVerbThatReadsIt(string name, byte[] bytes)
    {
        var dir = RlmsProcess.TempDir();
        var file = Path.Combine(dir, name + ".parquet");
        File.WriteAllBytes(file, bytes);
        AssertOneLine(RlmsProcess.Run("trace", "import", file, "--format", "parquet", "--out", Path.Combine(dir, "o.parquet")), file);
        AssertOneLine(RlmsProcess.Run("trace", "stats", file), file);
        AssertOneLine(RlmsProcess.Run("validate", "--measured", file, "--predicted", file), file);
        AssertOneLine(RlmsProcess.Run("calibrate", file, "--out", Path.Combine(dir, "c.json")), file);
        AssertOneLine(RlmsProcess.Run("report", file, "--out", Path.Combine(dir, "r.html")));
        Assert.Equal([file], Directory.EnumerateFiles(dir));
    }

    [Fact]
    public void DevZeroAndFifosAsInputsAreRefusedNotReadForEver()
    {
        var dir = RlmsProcess.TempDir();
        var fifo = MakeFifo(dir);
        foreach (var input in new[] { "/dev/zero", fifo })
        {
            AssertOneLine(RlmsProcess.Run("simulate", input, "--out", Path.Combine(dir, "o")), input, "not a regular file");
            AssertOneLine(RlmsProcess.Run("sweep", input, "--out", Path.Combine(dir, "o")), input, "not a regular file");
            AssertOneLine(RlmsProcess.Run("trace", "stats", input, "--format", "csv"), input, "not a regular file");
            AssertOneLine(RlmsProcess.Run("trace", "import", input, "--format", "csv", "--out", Path.Combine(dir, "o.parquet")), input, "not a regular file");
            AssertOneLine(RlmsProcess.Run("validate", "--measured", input, "--predicted", input), input);
            AssertOneLine(RlmsProcess.Run("calibrate", input, "--out", Path.Combine(dir, "c.json")), input);
        }
    }

    [Fact]
    public void AHugeCsvFieldIsQuotedInAFewDozenCharacters()
    {
        var dir = RlmsProcess.TempDir();
        var csv = Write(dir, "t.csv", "arrival_time_s,prompt_tokens,output_tokens\n0," + new string('9', 1) + new string('x', 500_000) + ",10\n");
        var o = RlmsProcess.Run("trace", "import", csv, "--format", "csv", "--out", Path.Combine(dir, "o.parquet"));
        AssertOneLine(o, "t.csv:2", "500,001 characters");
        Assert.True(o.Stderr.Length < 300, $"{o.Stderr.Length} characters on stderr");
    }

    [Fact]
    public void AnEndlessCsvLineIsRefusedAtTheLineBound()
    {
        var dir = RlmsProcess.TempDir();
        var csv = Write(dir, "t.csv", "arrival_time_s,prompt_tokens,output_tokens\n0,10," + new string('1', 3_000_000) + "\n");
        var o = RlmsProcess.Run("trace", "stats", csv, "--format", "csv");
        AssertOneLine(o, "t.csv:2", "1,048,576");
    }

    // 6. Output paths that fail late.

    [Fact]
    public void BadOutputPathsAreRefusedBeforeTheWork()
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Write(dir, "s.yaml", Valid.Replace("requests: 20", "requests: 5000"));
        var file = Write(dir, "existing-file", "keep me");
        var dangling = Path.Combine(dir, "dangling");
        File.CreateSymbolicLink(dangling, Path.Combine(dir, "nowhere"));
        var longName = Path.Combine(dir, new string('n', 300));
        foreach (var (out_, mention) in new[] { (file, "is a regular file"), (dangling, "symbolic link to nothing"), (longName, "at most 255"),
                     (Path.Combine(file, "sub"), "not a folder") })
        {
            AssertOneLine(RlmsProcess.Run("simulate", scenario, "--out", out_, "--quiet"), mention);
        }
        Assert.Equal("keep me", File.ReadAllText(file));
        Assert.False(File.Exists(Path.Combine(dir, "nowhere")));
    }

    // 7. Two runs at once.

    [Fact]
    public void AFolderInUseByAnotherProcessIsRefusedWithItsPid()
    {
        var dir = RlmsProcess.TempDir();
        var out_ = Directory.CreateDirectory(Path.Combine(dir, "o")).FullName;
        File.WriteAllText(Path.Combine(out_, ".rlms.lock"), $"{Environment.ProcessId} simulate\n");
        var scenario = Write(dir, "s.yaml", Valid);
        AssertOneLine(RlmsProcess.Run("simulate", scenario, "--out", out_, "--quiet"), $"in use by pid {Environment.ProcessId}");
        AssertOneLine(RlmsProcess.Run("sweep", Sweep(dir, "axes: { scheduler.max_num_seqs: [8, 16] }"), "--out", out_, "--quiet"), $"in use by pid {Environment.ProcessId}");
        Assert.False(File.Exists(Path.Combine(out_, "summary.json")));
    }

    [Fact]
    public void ALockLeftByADeadProcessIsTakenOverAndItsTemporariesSwept()
    {
        var dir = RlmsProcess.TempDir();
        var out_ = Directory.CreateDirectory(Path.Combine(dir, "o")).FullName;
        int dead = DeadPid();
        File.WriteAllText(Path.Combine(out_, ".rlms.lock"), $"{dead} simulate\n");
        var stale = Write(out_, $".requests.parquet.rlms-{RLMServing.IO.Results.TempFiles.Host}-{dead}-1.tmp", "half");
        var o = RlmsProcess.Run("simulate", Write(dir, "s.yaml", Valid), "--out", out_, "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.True(File.Exists(Path.Combine(out_, "summary.json")));
        Assert.False(File.Exists(stale));
        Assert.False(File.Exists(Path.Combine(out_, ".rlms.lock")));
    }

    private static int DeadPid()
    {
        using var p = Process.Start("true")!;
        p.WaitForExit();
        return p.Id;
    }

    [Fact]
    public async Task TwoSimulationsIntoOneFolderOneRunsTheOtherIsRefusedOrFollows()
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Write(dir, "s.yaml", Valid.Replace("requests: 20", "requests: 3000"));
        var out_ = Path.Combine(dir, "o");
        var runs = Enumerable.Range(0, 2).Select(_ => Task.Run(() => RlmsProcess.Run("simulate", scenario, "--out", out_, "--quiet"))).ToArray();
        var outcomes = await Task.WhenAll(runs);
        Assert.Contains(outcomes, o => o.ExitCode == 0);
        foreach (var o in outcomes.Where(o => o.ExitCode != 0)) AssertOneLine(o, "in use by pid");
        Assert.True(File.Exists(Path.Combine(out_, "summary.json")));
        Assert.Empty(Directory.EnumerateFiles(out_, "*.tmp"));
    }

    // 8. Leftovers.

    /// <summary>
    /// Runs <c>rlms ARGS</c>, sends it SIGTERM once <paramref name="working"/> holds, and returns its stderr after it
    /// exited with 130 (the interrupted exit code).
    /// </summary>
    private static async Task<string> InterruptedAsync(string[] args, Func<bool> working)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlms.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var sw = Stopwatch.StartNew();
        while (!working() && sw.Elapsed < TimeSpan.FromSeconds(60) && !p.HasExited) Thread.Sleep(20);
        Assert.False(p.HasExited, $"rlms {args[0]} finished before it could be interrupted");
        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) kill.WaitForExit();
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(130, p.ExitCode);
        return await stderr;
    }

    [Fact]
    public async Task SigtermDuringASimulationRemovesWhatItStartedAndExits130()
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Write(dir, "s.yaml", Valid.Replace("requests: 20", "requests: 1000000").Replace("rate: 4.0", "rate: 400"));
        var out_ = Path.Combine(dir, "o");
        // Interrupted once the run holds its folder (it is working).
        var said = await InterruptedAsync(["simulate", scenario, "--out", out_, "--quiet"], () => File.Exists(Path.Combine(out_, ".rlms.lock")));
        Assert.Contains("interrupted", said);
        Assert.Contains("nothing was written", said);
        Assert.False(Directory.Exists(out_), "the folder this run created is removed");
    }

    [Fact]
    public async Task SigtermDuringATraceImportRemovesItsTemporaryAndExits130()
    {
        // A week of ServeGen traffic is millions of rows: the import is still writing its temporary when interrupted.
        var dir = RlmsProcess.TempDir();
        var out_ = Path.Combine(dir, "t.parquet");
        var servegen = Path.Combine(RlmsProcess.RepoRoot(), "traces", "servegen-deepseek-r1");
        var said = await InterruptedAsync(["trace", "import", servegen, "--format", "servegen", "--duration", "600000", "--out", out_, "--quiet"],
            () => Directory.EnumerateFiles(dir, "*.tmp").Any());
        Assert.Contains("interrupted", said);
        Assert.Contains("was not written", said);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    // 9. Small contract slips.

    [Fact]
    public void AnOutOfRangeSeedIsOneLineNotTheHelp()
    {
        var dir = RlmsProcess.TempDir();
        AssertOneLine(RlmsProcess.Run("simulate", Write(dir, "s.yaml", Valid), "--seed", "99999999999"), "--seed 99999999999", "whole number");
    }

    [Theory]
    [InlineData("replay")]
    [InlineData("profile")]
    public void NegativeThreadsAreRefused(string verb)
    {
        var dir = RlmsProcess.TempDir();
        var o = verb == "replay"
            ? RlmsProcess.Run("replay", Write(dir, "s.yaml", Valid), "--out", Path.Combine(dir, "o"), "--threads", "-5")
            : RlmsProcess.Run("profile", "--model", "tiny", "--out", Path.Combine(dir, "o"), "--threads", "-5");
        AssertOneLine(o, "--threads", "-5");
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Fact]
    public void ProfilingAGarbageOnnxFileWritesNothing()
    {
        var dir = RlmsProcess.TempDir();
        var model = Path.Combine(dir, "garbage.onnx");
        File.WriteAllBytes(model, Enumerable.Range(0, 4096).Select(i => (byte)(i * 31 + 7)).ToArray());
        AssertOneLine(RlmsProcess.Run("profile", "--model", model, "--out", Path.Combine(dir, "o")), "garbage.onnx");
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Fact]
    public void ValidateWarnsWhenRequestIdsBarelyOverlap()
    {
        var dir = RlmsProcess.TempDir();
        var big = Path.Combine(dir, "big");
        var small = Path.Combine(dir, "small");
        Assert.Equal(0, RlmsProcess.Run("simulate", Write(dir, "big.yaml", Valid.Replace("requests: 20", "requests: 2000")), "--out", big, "--quiet").ExitCode);
        Assert.Equal(0, RlmsProcess.Run("simulate", Write(dir, "small.yaml", Valid.Replace("requests: 20", "requests: 50")), "--out", small, "--quiet").ExitCode);
        var o = RlmsProcess.Run("validate", "--measured", Path.Combine(big, "requests.parquet"), "--predicted", Path.Combine(small, "requests.parquet"));
        Assert.Contains("warning:", o.Stderr);
        Assert.Contains("only 50 request ids are in both", o.Stderr);
        var same = RlmsProcess.Run("validate", "--measured", Path.Combine(small, "requests.parquet"), "--predicted", Path.Combine(small, "requests.parquet"));
        Assert.DoesNotContain("warning:", same.Stderr);
    }
}
