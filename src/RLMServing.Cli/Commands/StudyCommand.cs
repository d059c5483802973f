using System.Diagnostics;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Scenarios;
using RLMServing.Study;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("study", HelpText = "Reproduce the serving study of reasoning models: 'study STUDY.yaml [--out DIR] [--jobs N] [--live BASE_URL [--evaluate]] [--report]' writes DIR/findings.json and DIR/report.html.")]
public sealed class StudyCommand : ICommand
{
    [Value(0, MetaName = "STUDY", Required = true, HelpText = "Study YAML file (docs/study.md).")]
    public string File { get; set; } = "";

    [Option("out", HelpText = "Results folder (default: results/study-<name>).")]
    public string? Out { get; set; }

    [Option("jobs", HelpText = "Simulated runs in parallel (default: all cores). Results are the same whatever N is.")]
    public int? Jobs { get; set; }

    [Option("live", HelpText = "Run every experiment a server can run against this OpenAI-compatible server (BASE_URL, e.g. http://127.0.0.1:8000) instead of simulating.")]
    public string? Live { get; set; }

    [Option("evaluate", HelpText = "With --live: grade the answers (accuracy per model, dataset and budget).")]
    public bool Evaluate { get; set; }

    [Option("report", HelpText = "Write DIR/report.html (always written; the flag is accepted so the command reads like simulate and sweep).")]
    public bool Report { get; set; }

    [Option("catalog", HelpText = "Extra catalog folders or files (GPUs, models) added to the bundled catalog.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("quiet", HelpText = "No progress bar; only errors and the output paths.")]
    public bool Quiet { get; set; }

    public int Run()
    {
        if (Jobs is <= 0) throw new UserInputException($"--jobs: must be at least 1, got {Jobs}");
        if (Evaluate && Live is null) throw new UserInputException("--evaluate: grades live answers; give --live BASE_URL too");
        if (Live is not null && !(Uri.TryCreate(Live, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            throw new UserInputException($"--live {Live}: expected a server root URL like http://127.0.0.1:8000");
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var study = StudyLoader.Load(File, catalog);
        var outDir = Out ?? Path.Combine("results", $"study-{study.Name}");
        string command = Live is null ? $"rlms study {File} --out {outDir}" : $"rlms study {File} --out {outDir} --live {Live}{(Evaluate ? " --evaluate" : "")}";
        var scenarios = Live is null ? StudyPlan.Build(study) : [];
        var inputs = new ScenarioInputs(catalog, Catalog);
        var bound = StudyRunner.Bind(study, scenarios, inputs, outDir);   // every run binds before anything runs or is written
        using var cancel = CancelScope.Start();
        using var folder = OutputFolder.Open(outDir, Out is null ? "results folder" : "--out", "study");
        var clock = Stopwatch.StartNew();
        StudyResults results;
        if (Live is null)
        {
            int jobs = Jobs ?? Environment.ProcessorCount;
            int runs = bound.Sum(b => b.Runs.Count);
            if (!Quiet) Console.Error.WriteLine($"study {study.Name}: {scenarios.Count} experiments, {runs} simulated runs on {jobs} job(s)");
            results = ProgressDisplay.Run($"simulating {runs} runs", Quiet, p =>
                StudyRunner.Simulate(bound, jobs, (done, total) => p?.Report((double)done / total), outDir));
        }
        else
        {
            if (!Quiet) Console.Error.WriteLine($"study {study.Name}: live against {Live}");
            results = StudyLive.RunAsync(study, Live, Evaluate, outDir, Quiet ? null : line => Console.Error.WriteLine(line), cancel.Token).GetAwaiter().GetResult();
        }
        var analysis = FindingsBuilder.Build(study, results);
        StudyOutput.WriteAsync(outDir, study, results, analysis, command, scenarios).GetAwaiter().GetResult();
        folder.Commit();
        if (!Quiet)
        {
            var table = new Table().Title(Markup.Escape($"study {study.Name} ({results.Source}, {clock.Elapsed.TotalSeconds:F0} s)"));
            table.AddColumn("finding").AddColumn("verdict").AddColumn("ours");
            foreach (var f in analysis.Findings)
                table.AddRow(Markup.Escape(f.Id), Markup.Escape(f.Verdict), Markup.Escape(f.Ours.Length > 160 ? f.Ours[..157] + "..." : f.Ours));
            AnsiConsole.Write(table);
        }
        Console.WriteLine($"findings: {Path.Combine(outDir, StudyOutput.FindingsFile)}");
        Console.WriteLine($"report: {Path.Combine(outDir, StudyOutput.ReportFile)}");
        return 0;
    }
}
