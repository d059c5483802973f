using System.Globalization;

namespace RLMServing.Reports;

/// <summary>Numbers as the report prints them: invariant culture, a few significant digits.</summary>
internal static class Format
{
    public static string Number(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    public static string Fixed(double v, int decimals) => v.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    public static string Percent(double fraction) => Fixed(fraction * 100, 0) + "%";

    public static string Html(string s) => System.Net.WebUtility.HtmlEncode(s);
}
