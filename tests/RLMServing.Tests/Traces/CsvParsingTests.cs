using System.Globalization;
using FsCheck;
using FsCheck.Xunit;
using RLMServing.IO.Traces;

namespace RLMServing.Tests.Traces;

/// <summary>The fast number parsers give exactly what the framework parsers give.</summary>
public class CsvParsingTests
{
    [Property(MaxTest = 2000)]
    public bool FastTimeParseEqualsDoubleParse(NonNegativeInt whole, NonNegativeInt fraction, byte digits)
    {
        int k = digits % 8;
        string text = k == 0 ? whole.Get.ToString(CultureInfo.InvariantCulture)
            : $"{whole.Get}.{(fraction.Get % (int)Math.Pow(10, k)).ToString(CultureInfo.InvariantCulture).PadLeft(k, '0')}";
        return CsvLines.TryParseTime(text, out double fast) && fast == double.Parse(text, CultureInfo.InvariantCulture);
    }

    [Property(MaxTest = 2000)]
    public bool FastCountParseEqualsIntParse(int value)
    {
        string text = value.ToString(CultureInfo.InvariantCulture);
        bool ok = CsvLines.TryParseCount(text, out int parsed);
        return value >= 0 ? ok && parsed == value : !ok;
    }
}
