using System.Globalization;

namespace RLMServing.IO.Traces;

/// <summary>Shared column lookup and field parsing for the CSV request-trace formats.</summary>
internal abstract class CsvTraceSource : IRequestTraceSource
{
    public abstract string Format { get; }

    public abstract string Description { get; }

    public abstract string Example { get; }

    public IEnumerable<RequestTraceRow> Read(string path, SourceContext context)
    {
        using var csv = new CsvLines(path);
        var headerLine = csv.Next() ?? throw new UserInputException($"{path}: the file is empty; expected a header line");
        var header = CsvLines.Header(headerLine);
        var parser = CreateParser(path, header, context);
        var order = new ArrivalOrder();
        var ranges = new Range[Math.Max(header.Count, 1) + 8];
        while (csv.TryNext(out var line))
        {
            int n = CsvLines.Split(line, ranges);
            var fields = new Fields(line, ranges, Math.Min(n, ranges.Length));
            var (row, error) = ParseLine(parser, fields, n, header.Count, order);
            if (error is not null)
            {
                context.Bad.Report(csv.LineNumber, error.Column, error.Message);
                continue;
            }
            order.Accept(row.ArrivalTimeS);
            yield return row;
        }
    }

    // Iterators cannot hold ref structs across yields, so the span-based work happens here.
    private static (RequestTraceRow Row, RowError? Error) ParseLine(Func<Fields, RequestTraceRow> parser, Fields fields, int n, int expected, ArrivalOrder order)
    {
        try
        {
            if (n < expected) throw new RowError(fields.LineLength + 1, $"expected {expected} fields, found {n}");
            var row = parser(fields);
            if (order.Check(row.ArrivalTimeS) is string problem) throw new RowError(1, problem);
            return (row, null);
        }
        catch (RowError e)
        {
            return (default, e);
        }
    }

    /// <summary>Builds the per-line parser once the header is known; throws for missing columns.</summary>
    protected abstract Func<Fields, RequestTraceRow> CreateParser(string path, Dictionary<string, int> header, SourceContext context);

    protected static int Require(string path, Dictionary<string, int> header, string format, params string[] names)
    {
        foreach (var name in names)
            if (header.TryGetValue(CsvLines.Normalize(name), out int i)) return i;
        throw new UserInputException($"{path}:1: {format}: column '{names[0]}' is missing from the header");
    }

    protected static int? Optional(Dictionary<string, int> header, params string[] names)
    {
        foreach (var name in names)
            if (header.TryGetValue(CsvLines.Normalize(name), out int i)) return i;
        return null;
    }

    /// <summary>The fields of one line with their 1-based character columns for error messages.</summary>
    protected internal readonly ref struct Fields(ReadOnlySpan<char> line, Range[] ranges, int count)
    {
        private readonly ReadOnlySpan<char> _line = line;

        public int LineLength => _line.Length;

        public ReadOnlySpan<char> this[int i] => i < count ? _line[ranges[i]] : [];

        public int Column(int i) => i < count ? ranges[i].Start.GetOffset(_line.Length) + 1 : _line.Length + 1;

        public int Count(int i, string name)
        {
            if (CsvLines.TryParseCount(this[i], out int v)) return v;
            throw new RowError(Column(i), $"{name}: '{Files.ErrorText.Clip(this[i])}' is not a non-negative integer");
        }

        public int? OptionalCount(int? i, string name) => i is int k && !this[k].Trim().IsEmpty ? Count(k, name) : null;

        public double Time(int i, string name)
        {
            if (CsvLines.TryParseTime(this[i], out double v)) return v;
            throw new RowError(Column(i), $"{name}: '{Files.ErrorText.Clip(this[i])}' is not a time in seconds >= 0");
        }

        public string? Text(int? i) => i is int k && !this[k].Trim().IsEmpty ? this[k].Trim().ToString() : null;
    }

    protected internal sealed class RowError(int column, string message) : Exception(message)
    {
        public int Column { get; } = column;
    }
}

/// <summary>
/// Our canonical CSV: <c>arrival_time_s,prompt_tokens,output_tokens</c> plus optional <c>thinking_tokens</c>,
/// <c>session_id</c>, <c>model</c>. With session ids, prompt_tokens is each turn's new input and the context grows
/// by earlier turns (unless --session-context as-is).
/// </summary>
internal sealed class CanonicalCsvSource : CsvTraceSource
{
    public override string Format => "csv";

    public override string Description => "canonical CSV: arrival_time_s,prompt_tokens,output_tokens[,thinking_tokens,session_id,model]";

    public override string Example => "arrival_time_s,prompt_tokens,output_tokens,thinking_tokens,session_id\n0.125,812,2304,1980,s1";

    private static readonly string[] Known = ["arrival_time_s", "prompt_tokens", "output_tokens", "thinking_tokens", "session_id", "model"];

    protected override Func<Fields, RequestTraceRow> CreateParser(string path, Dictionary<string, int> header, SourceContext context)
    {
        var known = Known.Select(CsvLines.Normalize).ToHashSet();
        foreach (var name in header.Keys)
            if (!known.Contains(name))
                throw new UserInputException($"{path}:1: csv: unknown column '{name}'; allowed: {string.Join(", ", Known)}");
        int arrival = Require(path, header, Format, "arrival_time_s");
        int prompt = Require(path, header, Format, "prompt_tokens");
        int output = Require(path, header, Format, "output_tokens");
        int? thinking = Optional(header, "thinking_tokens");
        int? session = Optional(header, "session_id");
        int? model = Optional(header, "model");
        var sessions = SessionContext.For(context, session, growByDefault: true);
        return f =>
        {
            int o = f.Count(output, "output_tokens");
            int? t = f.OptionalCount(thinking, "thinking_tokens");
            if (t > o) throw new RowError(f.Column(thinking!.Value), $"thinking_tokens: {t} is more than output_tokens ({o})");
            var row = new RequestTraceRow(f.Time(arrival, "arrival_time_s"), f.Count(prompt, "prompt_tokens"), o, t,
                SessionId: f.Text(session), Model: f.Text(model));
            return session is null ? row : sessions.Apply(row);
        };
    }
}

/// <summary>Azure LLM inference traces (2023 and 2024): <c>TIMESTAMP,ContextTokens,GeneratedTokens</c>.</summary>
internal sealed class AzureSource : CsvTraceSource
{
    public override string Format => "azure";

    public override string Description => "Azure LLM inference trace 2023/2024: TIMESTAMP,ContextTokens,GeneratedTokens";

    public override string Example => "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10";

    protected override Func<Fields, RequestTraceRow> CreateParser(string path, Dictionary<string, int> header, SourceContext context)
    {
        int time = Require(path, header, Format, "TIMESTAMP");
        int prompt = Require(path, header, Format, "ContextTokens");
        int output = Require(path, header, Format, "GeneratedTokens");
        long? origin = null;
        return f =>
        {
            if (!TimestampParser.TryParseTicks(f[time], out long ticks))
                throw new RowError(f.Column(time), $"TIMESTAMP: '{Files.ErrorText.Clip(f[time])}' is not a timestamp like 2023-11-16 18:17:03.9799600");
            if (origin is null)
            {
                origin = ticks;
                context.Metadata["rlms.time_origin"] = new DateTime(ticks, DateTimeKind.Utc).ToString("yyyy-MM-dd HH:mm:ss.fffffff", CultureInfo.InvariantCulture);
            }
            // Ticks are 100 ns: seconds relative to the first request, exact to the 7 fractional digits of the source.
            double arrival = (ticks - origin.Value) / 1e7;
            return new RequestTraceRow(arrival, f.Count(prompt, "ContextTokens"), f.Count(output, "GeneratedTokens"));
        };
    }
}

/// <summary>
/// BurstGPT: <c>Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type</c>, optionally with
/// <c>Session ID,Elapsed time</c>; columns are found by name. Failed requests (Response tokens = 0) are kept with
/// failed = true; the Log Type goes to status. Request tokens are what the API was sent, so by default a session's
/// context is taken as is (pass --session-context grow if a file counts each turn's new input only).
/// </summary>
internal sealed class BurstGptSource : CsvTraceSource
{
    public override string Format => "burstgpt";

    public override string Description => "BurstGPT: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type[,Session ID,Elapsed time]";

    public override string Example => "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,18,490,Conversation log";

    protected override Func<Fields, RequestTraceRow> CreateParser(string path, Dictionary<string, int> header, SourceContext context)
    {
        int time = Require(path, header, Format, "Timestamp");
        int prompt = Require(path, header, Format, "Request tokens");
        int output = Require(path, header, Format, "Response tokens");
        int? model = Optional(header, "Model");
        int? logType = Optional(header, "Log Type");
        int? session = Optional(header, "Session ID", "SessionID");
        var sessions = SessionContext.For(context, session, growByDefault: false);
        return f =>
        {
            int o = f.Count(output, "Response tokens");
            var row = new RequestTraceRow(f.Time(time, "Timestamp"), f.Count(prompt, "Request tokens"), o,
                SessionId: f.Text(session), Model: f.Text(model), Failed: o == 0, Status: f.Text(logType));
            return session is null ? row : sessions.Apply(row);
        };
    }
}

/// <summary>Vidur's processed traces: <c>arrived_at,num_prefill_tokens,num_decode_tokens</c> (extra columns ignored).</summary>
internal sealed class VidurSource : CsvTraceSource
{
    public override string Format => "vidur";

    public override string Description => "Vidur processed trace: arrived_at,num_prefill_tokens,num_decode_tokens";

    public override string Example => "arrived_at,num_prefill_tokens,num_decode_tokens\n0.052,3180,8";

    protected override Func<Fields, RequestTraceRow> CreateParser(string path, Dictionary<string, int> header, SourceContext context)
    {
        if (!header.ContainsKey(CsvLines.Normalize("arrived_at")))
            throw new UserInputException($"{path}:1: vidur: column 'arrived_at' is missing; length-only Vidur traces have no arrival times to replay");
        int time = Require(path, header, Format, "arrived_at");
        int prompt = Require(path, header, Format, "num_prefill_tokens");
        int output = Require(path, header, Format, "num_decode_tokens");
        return f => new RequestTraceRow(f.Time(time, "arrived_at"), f.Count(prompt, "num_prefill_tokens"), f.Count(output, "num_decode_tokens"));
    }
}

/// <summary>Parses trace timestamps such as <c>2023-11-16 18:17:03.9799600</c> (up to 7 fractional digits, optional zone).</summary>
internal static class TimestampParser
{
    public static bool TryParseTicks(ReadOnlySpan<char> s, out long ticks)
    {
        ticks = 0;
        s = s.Trim();
        if (s.Length < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':') return false;
        if (!Digits(s[0..4], out int year) || !Digits(s[5..7], out int month) || !Digits(s[8..10], out int day)
            || !Digits(s[11..13], out int hour) || !Digits(s[14..16], out int minute) || !Digits(s[17..19], out int second)) return false;
        if (month is < 1 or > 12 || day < 1 || year < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return false;
        long fraction = 0;
        int i = 19;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            int digits = 0;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                if (digits < 7) { fraction = fraction * 10 + (s[i] - '0'); digits++; }
                i++;
            }
            if (digits == 0) return false;
            for (; digits < 7; digits++) fraction *= 10;
        }
        long offsetTicks = 0;
        if (i < s.Length)
        {
            if (s[i] == 'Z' && i == s.Length - 1) { }
            else if ((s[i] == '+' || s[i] == '-') && s.Length - i == 6 && s[i + 3] == ':' && Digits(s[(i + 1)..(i + 3)], out int oh) && Digits(s[(i + 4)..(i + 6)], out int om))
                offsetTicks = (s[i] == '+' ? 1 : -1) * (oh * 60L + om) * TimeSpan.TicksPerMinute;
            else return false;
        }
        ticks = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).Ticks + fraction - offsetTicks;
        return true;
    }

    private static bool Digits(ReadOnlySpan<char> s, out int value)
    {
        value = 0;
        foreach (char c in s)
        {
            if (!char.IsAsciiDigit(c)) return false;
            value = value * 10 + (c - '0');
        }
        return true;
    }
}
