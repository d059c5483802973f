using RLMServing.Reports;

namespace RLMServing.Cli.Commands;

/// <summary>The <c>--report [PATH.html]</c> option shared by <c>simulate</c> and <c>sweep</c>.</summary>
internal static class ReportOption
{
    /// <summary>Checked before any work, so a bad path costs nothing.</summary>
    public static void Check(string? report)
    {
        if (report is { } r && r != SimulateCommand.DefaultReport)
        {
            if (Path.GetDirectoryName(Path.GetFullPath(r)) is { } dir && !Directory.Exists(dir))
                throw new UserInputException($"--report {r}: folder {dir} does not exist");
            RLMServing.IO.Results.OutputPath.CheckFile(r, "--report");
        }
    }

    /// <summary>Writes the report of <paramref name="outDir"/> (default: OUT/report.html) when the option was given.</summary>
    public static void Write(string? report, string outDir)
    {
        if (report is null) return;
        var path = report == SimulateCommand.DefaultReport ? Path.Combine(outDir, ReportBuilder.DefaultFileName) : report;
        ReportBuilder.WriteAsync(outDir, path).GetAwaiter().GetResult();
        Console.WriteLine($"report: {path}");
    }
}
