using System.Text;
using Plotly.NET;

namespace RLMServing.Reports;

/// <summary>A report: a header (HTML, already escaped) and titled charts in sections.</summary>
public sealed record Report(string Title, string HeaderHtml, IReadOnlyList<ReportChart> Charts);

/// <summary>
/// Renders a report as one self-contained HTML file: plotly.js (the copy Plotly.NET ships) inlined once, each chart
/// a div with a stable id and a Plotly.newPlot call, no external URL, nothing that depends on time or host.
/// </summary>
public static class ReportPage
{
    /// <summary>The plotly.js that Plotly.NET embeds (its version is <see cref="Globals.PLOTLYJS_VERSION"/>).</summary>
    public static string PlotlyJs()
    {
        var asm = typeof(GenericChart).Assembly;
        var name = $"Plotly.NET.plotly-{Globals.PLOTLYJS_VERSION}.min.js";
        using var stream = asm.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Plotly.NET does not embed {name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    public static string Render(Report report)
    {
        var html = new StringBuilder(4 << 20);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<title>").Append(Format.Html(report.Title)).Append("</title>\n")
            .Append("<style>").Append(Css).Append("</style>\n")
            .Append("<script>/* plotly.js ").Append(Globals.PLOTLYJS_VERSION).Append(" (MIT), inlined so the report works offline */\n")
            .Append(PlotlyJs().Replace("</script", "<\\/script")).Append("\n</script>\n</head>\n<body>\n");
        html.Append("<header>\n<h1>").Append(Format.Html(report.Title)).Append("</h1>\n").Append(report.HeaderHtml).Append("</header>\n");
        html.Append("<nav><b>Charts:</b> ");
        html.AppendJoin(" · ", report.Charts.Select(c => $"<a href=\"#{c.Id}-box\">{Format.Html(c.Title)}</a>"));
        html.Append("</nav>\n");
        foreach (var section in report.Charts.GroupBy(c => c.Section))
        {
            html.Append("<section>\n<h2>").Append(Format.Html(section.Key)).Append("</h2>\n<div class=\"grid\">\n");
            foreach (var chart in section)
            {
                var (data, layout) = ChartKit.ToJson(chart.Chart);
                html.Append("<figure id=\"").Append(chart.Id).Append("-box\">\n")
                    .Append("<div class=\"chart\" id=\"").Append(chart.Id).Append("\" data-chart=\"").Append(chart.Id).Append("\"></div>\n");
                if (chart.Note is { } note) html.Append("<figcaption>").Append(Format.Html(note)).Append("</figcaption>\n");
                html.Append("<script>Plotly.newPlot(\"").Append(chart.Id).Append("\", ").Append(data).Append(", ").Append(layout)
                    .Append(", {\"responsive\": true, \"displaylogo\": false, \"showLink\": false});</script>\n</figure>\n");
            }
            html.Append("</div>\n</section>\n");
        }
        html.Append("<footer>Made by rlms report. Hover a chart for exact values; drag to zoom, double-click to reset.</footer>\n</body>\n</html>\n");
        return html.ToString();
    }

    /// <summary>Writes the page under a temporary name and moves it into place, so a failed write leaves nothing half-written.</summary>
    public static void Write(Report report, string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new UserInputException($"{path}: folder {dir} does not exist");
        var tmp = RLMServing.IO.Results.TempFiles.For(full);
        try
        {
            File.WriteAllText(tmp, Render(report), new UTF8Encoding(false));
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            RLMServing.IO.Results.TempFiles.Delete(tmp);
        }
    }

    private const string Css = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1500px; padding: 0 24px 24px; color: #1f2a3a; }
        h1 { font-size: 1.6em; margin: 18px 0 6px; }
        h2 { font-size: 1.2em; margin: 26px 0 8px; border-bottom: 1px solid #d5dbe5; padding-bottom: 4px; }
        header p { margin: 4px 0; }
        table.key { border-collapse: collapse; margin: 10px 0; font-size: 0.92em; }
        table.key th, table.key td { border: 1px solid #d5dbe5; padding: 3px 10px; text-align: right; }
        table.key th:first-child, table.key td:first-child { text-align: left; }
        table.key thead th { background: #eef2f8; }
        .warn { color: #b3261e; font-weight: 600; }
        nav { font-size: 0.85em; margin: 10px 0; line-height: 1.7; }
        nav a { color: #2f5fb3; text-decoration: none; }
        .grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
        @media (max-width: 1100px) { .grid { grid-template-columns: minmax(0, 1fr); } }
        figure { margin: 0; min-width: 0; border: 1px solid #e3e7ee; border-radius: 6px; padding: 4px; }
        figcaption { font-size: 0.82em; color: #4a5668; padding: 2px 8px 6px; }
        .chart { width: 100%; min-height: 430px; }
        footer { margin-top: 24px; font-size: 0.8em; color: #6b7686; }
        """;
}
