using Microsoft.FSharp.Core;
using Newtonsoft.Json;
using Plotly.NET;
using Plotly.NET.CSharp;

namespace RLMServing.Reports;

/// <summary>A titled chart of the report; <see cref="Id"/> is its element id in the page (stable, so tests find it).</summary>
public sealed record ReportChart(string Id, string Section, string Title, GenericChart Chart, string? Note = null);

/// <summary>
/// Small helpers over Plotly.NET for what every chart of the report needs: a title, labelled axes with units (log
/// where latencies span decades), hover text, and the figure as plotly.js JSON.
/// </summary>
internal static class ChartKit
{
    public const int HeightPx = 430;

    /// <summary>Plotly's default colour sequence (plotly.py and Plotly.NET templates), so variants keep their colours.</summary>
    private static readonly string[] Colorway = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52"];

    public static GenericChart Axes(this GenericChart chart, string title, string xTitle, string yTitle, bool logX = false, bool logY = false,
        bool categoryX = false, bool categoryY = false)
    {
        static StyleParam.AxisType Type(bool log, bool category) =>
            log ? StyleParam.AxisType.Log : category ? StyleParam.AxisType.Category : StyleParam.AxisType.Auto;
        chart = chart
            .WithXAxisStyle<double, double, string>(TitleText: xTitle, AxisType: Type(logX, categoryX))
            .WithYAxisStyle<double, double, string>(TitleText: yTitle, AxisType: Type(logY, categoryY));
        return Plotly.NET.Chart.withTitle(title, FSharpOption<Font>.None).Invoke(chart);
    }

    /// <summary>Sets a plotly.js attribute on every trace of the chart (hovertemplate, line shape, fill, ...).</summary>
    public static GenericChart TraceStyle(this GenericChart chart, string key, object value) =>
        GenericChart.mapTrace(FuncConvert.FromFunc<Trace, Trace>(t => { t.SetProperty(key, value); return t; }), chart);

    public static GenericChart Hover(this GenericChart chart, string template) => chart.TraceStyle("hovertemplate", template);

    /// <summary>The charts overlaid on one set of axes; an empty "no data" series when there is nothing to draw.</summary>
    public static GenericChart Combine(IEnumerable<GenericChart> charts)
    {
        var list = charts.ToList();
        return list.Count > 0
            ? Plotly.NET.CSharp.Chart.Combine(list)
            : Plotly.NET.CSharp.Chart.Scatter<double, double, string>(Array.Empty<double>(), Array.Empty<double>(), StyleParam.Mode.Markers, Name: "no data");
    }

    /// <summary>The figure's traces and layout as JSON for <c>Plotly.newPlot</c>, safe to inline in a script element.</summary>
    public static (string Data, string Layout) ToJson(GenericChart chart)
    {
        var layout = GenericChart.getLayout(chart);
        // Plotly.NET's default template is a deep object that costs about a second per chart to serialize and adds
        // 6 kB to each; plotly.js's own defaults with the same colour sequence read as well.
        layout.RemoveProperty("template");
        layout.SetProperty("colorway", Colorway);
        layout.SetProperty("hovermode", "closest");
        foreach (var axis in new[] { "xaxis", "yaxis" })
            if (layout.TryGetPropertyValue(axis) is { } a && a.Value is DynamicObj.DynamicObj axisObj)
                axisObj.SetProperty("automargin", true);      // long category labels get room instead of being cut
        if (layout.TryGetPropertyValue("title") is { } t && t.Value is DynamicObj.DynamicObj titleObj)
        {
            titleObj.SetProperty("x", 0.01);                // left, clear of the mode bar at the top right
            titleObj.SetProperty("xanchor", "left");
        }
        layout.RemoveProperty("width");        // the page sizes charts (responsive); height is fixed for a steady grid
        layout.SetProperty("height", HeightPx);
        layout.SetProperty("autosize", true);
        layout.SetProperty("margin", new Dictionary<string, int> { ["l"] = 70, ["r"] = 30, ["t"] = 60, ["b"] = 60 });
        var data = JsonConvert.SerializeObject(GenericChart.getTraces(chart), Globals.JSON_CONFIG);
        var layoutJson = JsonConvert.SerializeObject(layout, Globals.JSON_CONFIG);
        return (ScriptSafe(data), ScriptSafe(layoutJson));
    }

    /// <summary>"&lt;/" cannot appear inside an inline script (a name like "&lt;/script&gt;" would end it).</summary>
    public static string ScriptSafe(string json) => json.Replace("</", "<\\/");
}
