using System.Globalization;

namespace RLMServing.Reports;

/// <summary>Numbers as the report prints them: invariant culture, a few significant digits.</summary>
internal static class Format
{
    public static string Number(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    public static string Fixed(double v, int decimals) => v.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    public static string Percent(double fraction) => Fixed(fraction * 100, 0) + "%";

    /// <summary>Dollars with cents ("$0.37"), or three significant digits below a cent.</summary>
    public static string Usd(double v) => "$" + (Math.Abs(v) >= 0.01 ? Fixed(v, 2) : v.ToString("G3", CultureInfo.InvariantCulture));

    /// <summary>A cost per million output tokens as people write it: "$0.37 / M tokens".</summary>
    public static string UsdPerMillionTokens(double v) => Usd(v) + " / M tokens";

    /// <summary>A rate with the precision a planner reads (three significant digits): "2.93 req/s".</summary>
    public static string Rate(double v) => v.ToString(Math.Abs(v) >= 100 ? "F0" : "G3", CultureInfo.InvariantCulture) + " req/s";

    public static string Html(string s) => System.Net.WebUtility.HtmlEncode(s);
}
