namespace RLMServing.Reports;

/// <summary>`rlms report` and `--report`: read RESULTS (a run, variants or a sweep), build the report, write the page.</summary>
public static class ReportBuilder
{
    public const string DefaultFileName = "report.html";

    public static async Task<Report> BuildAsync(string results) => await ReportInputLoader.LoadAsync(results) switch
    {
        RunsInput runs => RunReport.Build(runs),
        SweepInput sweep => SweepReport.Build(sweep),
        var other => throw new InvalidOperationException($"no report for {other.GetType().Name}"),
    };

    /// <summary>Builds the report of RESULTS and writes it to <paramref name="outPath"/>; returns the report.</summary>
    public static async Task<Report> WriteAsync(string results, string outPath)
    {
        var report = await BuildAsync(results);
        ReportPage.Write(report, outPath);
        return report;
    }
}
