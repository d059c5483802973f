using System.Globalization;
using System.Text.Json;
using RLMServing.IO.Traces;

namespace RLMServing.IO.Runs;

/// <summary>The measured-run formats of <c>rlms trace import RUN --format F --out DIR</c>.</summary>
public static class MeasuredRunFormats
{
    public static IReadOnlyList<ITraceImporter> Importers { get; } =
        [new LlmServingSimRunImporter(), new DistServeRunImporter(), new VllmBenchRunImporter()];
}

/// <summary>
/// A measured run's files turned into DIR/trace.parquet and DIR/requests.parquet (<see cref="MeasuredRun.Write"/>).
/// A bad file is one line naming the file, line (or list index) and field; nothing is written.
/// </summary>
public abstract class MeasuredRunImporter : ITraceImporter
{
    public abstract string Format { get; }
    public abstract string Description { get; }

    /// <summary>Reads the run and the file its requests came from.</summary>
    public abstract (MeasuredRun Run, string Source) Read(string inputPath);

    public ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        if (!File.Exists(inputPath) && !Directory.Exists(inputPath)) throw new UserInputException($"{inputPath}: file or folder not found");
        if (File.Exists(outputPath)) throw new UserInputException($"--out: {outputPath} is a file; a measured run is imported into a folder (trace.parquet, requests.parquet)");
        var (run, source) = Read(inputPath);
        if (options.Limit is long limit && run.Requests.Count > limit) run = run with { Requests = run.Requests.Take((int)limit).ToList() };
        run.Write(outputPath, Format, source);
        options.Progress?.Report(run.Requests.Count);
        return new ImportResult(run.Requests.Count, 0, [], "measured-run");
    }

    /// <summary>Checks one request's times and sizes, naming <paramref name="where"/> (file and line) on failure.</summary>
    protected static MeasuredRequest Checked(string where, MeasuredRequest r, double? previousArrival, string arrivalField, string outputField)
    {
        if (r.OutputTokens <= 0) throw new UserInputException($"{where}: {outputField}: zero output tokens ({r.OutputTokens}); a measured request must have generated at least one token");
        if (r.PromptTokens <= 0) throw new UserInputException($"{where}: prompt tokens: must be positive, got {r.PromptTokens}");
        if (previousArrival is double p && r.ArrivalS < p)
            throw new UserInputException($"{where}: {arrivalField}: {r.ArrivalS.ToString("R", CultureInfo.InvariantCulture)} is earlier than the previous request's ({p.ToString("R", CultureInfo.InvariantCulture)}); requests must be in arrival order");
        if (!(r.FirstTokenS >= r.ArrivalS)) throw new UserInputException($"{where}: first token time is before the arrival");
        if (!(r.CompletionS >= r.FirstTokenS)) throw new UserInputException($"{where}: completion time is before the first token");
        return r;
    }

    /// <summary>A JSON object's numeric field, or one clear line naming where it is missing or not a number.</summary>
    protected static double Number(JsonElement obj, string field, string where)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new UserInputException($"{where}: expected a JSON object");
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) throw new UserInputException($"{where}: {field}: missing");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || !double.IsFinite(d))
            throw new UserInputException($"{where}: {field}: not a number: {Shorten(v.GetRawText())}");
        return d;
    }

    protected static double? OptionalNumber(JsonElement obj, string field, string where) =>
        obj.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? Number(obj, field, where) : null;

    protected static int Tokens(JsonElement obj, string field, string where)
    {
        double d = Number(obj, field, where);
        if (d != Math.Floor(d) || d < 0 || d > int.MaxValue) throw new UserInputException($"{where}: {field}: not a token count: {d.ToString("R", CultureInfo.InvariantCulture)}");
        return (int)d;
    }

    protected static JsonDocument ParseJson(string path, string text, int line = 0)
    {
        try { return JsonDocument.Parse(text); }
        catch (JsonException e) { throw new UserInputException($"{path}:{(line > 0 ? $" line {line}:" : "")} not valid JSON: {e.Message}"); }
    }

    protected static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    protected static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
