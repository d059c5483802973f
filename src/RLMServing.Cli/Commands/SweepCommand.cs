using System.Diagnostics;
using System.Globalization;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Sweeps;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("sweep", HelpText = "Run a sweep file (grid, random or Latin hypercube over scenario keys; capacity search): 'sweep SWEEP.yaml [--out DIR] [--jobs N] [--shard i/N] [--resume]', or join shard folders: 'sweep merge DIR... [--out DIR]'.")]
public sealed class SweepCommand : ICommand
{
    [Value(0, MetaName = "SWEEP", Required = true, HelpText = "Sweep YAML file, or 'merge'.")]
    public string File { get; set; } = "";

    [Value(1, MetaName = "DIR", HelpText = "merge: results folders whose parts to join.")]
    public IEnumerable<string> Dirs { get; set; } = [];

    [Option("out", HelpText = "Results folder (default: results/<sweep name>; merge: the first DIR).")]
    public string? Out { get; set; }

    [Option("jobs", HelpText = "Configurations simulated in parallel (default: all cores).")]
    public int? Jobs { get; set; }

    [Option("shard", HelpText = "Run only slice i of N (0-based: configurations with config_id mod N == i), e.g. --shard 3/8.")]
    public string? Shard { get; set; }

    [Option("resume", HelpText = "Keep the configurations already committed in --out and run the rest.")]
    public bool Resume { get; set; }

    [Option("catalog", HelpText = "Extra catalog folders or files (GPUs, models) added to the bundled catalog.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("report", HelpText = "Also write the HTML report of the results: --report (OUT/report.html) or --report PATH.html.")]
    public string? Report { get; set; }

    [Option("metric-percentiles", HelpText = MetricPercentilesOption.HelpText)]
    public string? MetricPercentiles { get; set; }

    [Option("quiet", HelpText = "No progress bar; only errors and the output path.")]
    public bool Quiet { get; set; }

    [Option("max-configs", Default = SweepLoader.DefaultMaxRuns, HelpText = "Most runs (configurations x seeds) the sweep may hold; counted before anything runs (docs/limits.md).")]
    public int MaxConfigs { get; set; } = SweepLoader.DefaultMaxRuns;

    public int Run() => File == "merge" ? Merge() : Sweep();

    private int Merge()
    {
        var dirs = Dirs.ToList();
        if (dirs.Count == 0) throw new UserInputException("sweep merge: give at least one results folder");
        CheckReportPath();
        using var cancel = CancelScope.Start();
        var stores = dirs.Select(SweepStore.Open).ToList();
        using var folder = OutputFolder.Open(Out ?? dirs[0], "--out", "sweep merge");
        cancel.Kept = $"{folder.Path}: results.parquet was not written";
        var path = SweepStore.Compact(stores, Out ?? dirs[0]);
        folder.Commit();
        Console.WriteLine($"results: {path}");
        WriteReport(Out ?? dirs[0]);
        return 0;
    }

    private int Sweep()
    {
        if (Dirs.Any()) throw new UserInputException($"sweep: unexpected argument '{Dirs.First()}' (only 'sweep merge' takes folders)");
        if (Jobs is <= 0) throw new UserInputException($"--jobs: must be at least 1, got {Jobs}");
        if (MaxConfigs <= 0) throw new UserInputException($"--max-configs: must be at least 1, got {MaxConfigs}");
        var (shard, shards) = ParseShard(Shard);
        if (shards > 1 && Report is not null)
            throw new UserInputException("--report: a shard holds part of the sweep; write the report after 'rlms sweep merge ... --report'");
        CheckReportPath();
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var sweep = SweepLoader.Load(File, MetricPercentilesOption.Parse(MetricPercentiles), MaxConfigs);
        var runner = new SweepRunner(sweep, new RLMServing.IO.Scenarios.ScenarioInputs(catalog, Catalog));
        runner.Validate();   // every configuration binds before anything runs or is written
        var outDir = Out ?? Path.Combine("results", sweep.Name);
        using var cancel = CancelScope.Start();
        // Shards of one sweep may share the folder (a shared file system): each locks its own slice.
        using var folder = OutputFolder.Open(outDir, Out is null ? "results folder" : "--out", shards > 1 ? $"sweep --shard {shard}/{shards}" : "sweep",
            shards > 1 ? $".rlms-shard-{shard}-of-{shards}.lock" : FolderLock.FileName);
        var store = SweepStore.Create(outDir, runner);
        folder.Commit();   // the manifest is there: a later --resume continues from whatever gets committed
        cancel.Kept = $"the configurations committed so far are kept in {Path.Combine(outDir, "parts")}; 'rlms sweep {File} --out {outDir} --resume' runs the rest";
        var mine = runner.Configurations.Where(c => c.Id % shards == shard).ToList();
        var committed = store.Committed();
        int done = mine.Count(c => committed.Contains(c.Id));
        if (done > 0 && !Resume)
            throw new UserInputException($"{outDir}: already holds {done} of the {mine.Count} configurations of this {(shards > 1 ? "shard" : "sweep")}; pass --resume to finish the rest, or choose another --out");
        store.RemoveStaleTemporaries(mine.Select(c => c.Id));
        var pending = mine.Where(c => !committed.Contains(c.Id)).ToList();
        int jobs = Jobs ?? Environment.ProcessorCount;
        if (!Quiet)
            Console.Error.WriteLine($"sweep {sweep.Name}: {runner.Configurations.Count} configurations x {sweep.Seeds.Count} seed(s){(shards > 1 ? $", shard {shard}/{shards}: {mine.Count}" : "")}, {done} already done, {pending.Count} to run on {jobs} job(s)");

        RunAll(runner, store, pending, jobs);

        if (shards > 1)
        {
            Console.WriteLine($"shard {shard}/{shards} done: {Path.Combine(outDir, "parts")} (join the shards with 'rlms sweep merge {outDir}')");
            return 0;
        }
        var path = SweepStore.Compact([store], outDir);
        if (!Quiet)
        {
            AnsiConsole.Write(ResultsOverview(path, sweep));
        }
        Console.WriteLine($"results: {path}");
        WriteReport(outDir);
        return 0;
    }

    private void CheckReportPath() => ReportOption.Check(Report);

    private void WriteReport(string outDir) => ReportOption.Write(Report, outDir);

    /// <summary>
    /// The first rows a planner reads: axes and the headline metrics, cheapest first when there are costs (Pareto
    /// rows starred), at most 20 rows; everything else is in results.parquet.
    /// </summary>
    private static Table ResultsOverview(string path, SweepFile sweep)
    {
        var (t, _) = ResultsTable.ReadAsync(path).GetAwaiter().GetResult();
        string[] wanted = [.. sweep.Axes.Select(a => a.Key), "variant", "seed", SweepColumns.MaxRate, SweepColumns.GpusForTarget,
            SweepColumns.UsdPerMillionTokens, "request_throughput", "output_throughput", "p99_ttft_ms", "p99_tpot_ms", sweep.ParetoLatency, SweepColumns.Pareto];
        var cols = wanted.Distinct().Select(n => (Name: n, I: t.IndexOf(n))).Where(c => c.I >= 0 && t.Rows.Any(r => r[c.I] is not null)).ToList();
        int costI = t.IndexOf(SweepColumns.UsdPerMillionTokens);
        var rows = costI < 0 ? t.Rows : t.Rows.OrderBy(r => r[costI] as double? ?? double.PositiveInfinity).ToList();
        var table = new Table().Title(Markup.Escape($"{sweep.Name}: {t.Rows.Count} rows{(rows.Count > 20 ? " (first 20)" : "")}"));
        foreach (var c in cols) table.AddColumn(new TableColumn(Markup.Escape(c.Name)).RightAligned());
        int convergedI = t.IndexOf(SweepColumns.Converged);
        foreach (var r in rows.Take(20))
            table.AddRow(cols.Select(c => Markup.Escape(r[c.I] switch
            {
                null => "-",
                double d => d.ToString(Math.Abs(d) >= 100 ? "F0" : "G4", CultureInfo.InvariantCulture),
                bool b => b ? "*" : "",
                var v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
            } + (c.Name == SweepColumns.MaxRate && convergedI >= 0 && r[convergedI] is false ? " (not converged)" : ""))).ToArray());
        if (convergedI >= 0 && rows.Any(r => r[convergedI] is false))
            table.Caption(Markup.Escape($"(not converged): the answer still moved at the largest horizon ({SweepColumns.RequestsUsed} in results.parquet); raise capacity.convergence.max_requests"));
        return table;
    }

    private void RunAll(SweepRunner runner, SweepStore store, List<SweepConfiguration> pending, int jobs)
    {
        if (pending.Count == 0) return;
        ProgressDisplay.Run($"sweeping {pending.Count} configurations", Quiet, p =>
        {
            int finished = 0;
            runner.RunAll(store, pending, jobs, () => p?.Report((double)Interlocked.Increment(ref finished) / pending.Count));
            return finished;
        });
    }

    private static (int Shard, int Shards) ParseShard(string? text)
    {
        if (text is null) return (0, 1);
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var i)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || i >= n)
            throw new UserInputException($"--shard {text}: expected i/N with 0 <= i < N (e.g. 0/4 ... 3/4)");
        return (i, n);
    }
}
