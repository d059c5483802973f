using CommandLine;
using RLMServing.Reports;

namespace RLMServing.Cli.Commands;

[Verb("report", HelpText = "Write a self-contained HTML report (works offline) of a simulate output folder, a sweep folder or results.parquet.")]
public sealed class ReportCommand : ICommand
{
    [Value(0, MetaName = "RESULTS", Required = true, HelpText = "A simulate output folder (summary.json, or variants with comparison.json), a sweep folder or its results.parquet.")]
    public string Results { get; set; } = "";

    [Option("out", HelpText = "HTML file to write (default: report.html in the RESULTS folder).")]
    public string? Out { get; set; }

    [Option("quiet", HelpText = "Only errors and the output path.")]
    public bool Quiet { get; set; }

    public int Run()
    {
        using var cancel = CancelScope.Start();
        var folder = Directory.Exists(Results) ? Results : Path.GetDirectoryName(Path.GetFullPath(Results))!;
        var outPath = Out ?? Path.Combine(folder, ReportBuilder.DefaultFileName);
        RLMServing.IO.Results.OutputPath.CheckFile(outPath, Out is null ? "report" : "--out");
        cancel.Kept = $"{outPath} was not written";
        var report = ReportBuilder.WriteAsync(Results, outPath).GetAwaiter().GetResult();
        Console.WriteLine(Quiet ? $"report: {outPath}" : $"report: {outPath} ({report.Charts.Count} charts)");
        return 0;
    }
}
