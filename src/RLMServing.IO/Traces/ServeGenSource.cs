using System.Globalization;
using System.Text.Json;
using RLMServing.Workloads.ServeGen;

namespace RLMServing.IO.Traces;

/// <summary>
/// ServeGen client data (<c>chunk-N-trace.csv</c> + <c>chunk-N-dataset.json</c>) as a request GENERATOR: the input is
/// a folder of chunks or one chunk file; requests are sampled with the seed for the given duration (default 3600 s)
/// from the given start time of day (default 0). Prompt = input_tokens (or, for multimodal data, the sum of
/// text/image/audio/video tokens); thinking = round(output × reason_ratio) where the data has a reason ratio.
/// </summary>
public sealed class ServeGenSource : IRequestTraceSource
{
    public const double DefaultDurationS = 3600;

    public string Format => "servegen";

    public string Description => "ServeGen client data (folder or chunk file) sampled as a generator: --seed, --duration, --start";

    public string Example => "chunk-0-trace.csv: 2400,0.085,6.69,Gamma,0.0223,73.0   chunk-0-dataset.json: {\"0\": {\"input_tokens\": \"{45: 0.0097, ...}\", ...}}";

    public IEnumerable<RequestTraceRow> Read(string path, SourceContext context)
    {
        var clients = LoadClients(path, context.Bad);
        var o = context.Options;
        double duration = o.DurationS ?? DefaultDurationS;
        var generator = new ServeGenGenerator(clients, o.Seed, o.StartS, duration);
        context.Metadata["rlms.generator"] = "servegen";
        context.Metadata["rlms.seed"] = o.Seed.ToString(CultureInfo.InvariantCulture);
        context.Metadata["rlms.start_s"] = o.StartS.ToString("R", CultureInfo.InvariantCulture);
        context.Metadata["rlms.duration_s"] = duration.ToString("R", CultureInfo.InvariantCulture);
        context.Metadata["rlms.clients"] = clients.Count.ToString(CultureInfo.InvariantCulture);
        foreach (var r in generator.Generate())
            yield return new RequestTraceRow(r.ArrivalTimeS, r.PromptTokens, r.OutputTokens, r.ThinkingTokens, Model: "client-" + r.ClientId);
    }

    public static IReadOnlyList<ServeGenClient> LoadClients(string path, BadRows bad)
    {
        var pairs = new List<(string Id, string Trace, string Dataset)>();
        if (Directory.Exists(path))
        {
            foreach (var trace in Directory.EnumerateFiles(path, "chunk-*-trace.csv"))
            {
                string id = Path.GetFileName(trace)["chunk-".Length..^"-trace.csv".Length];
                string dataset = Path.Combine(path, $"chunk-{id}-dataset.json");
                if (!File.Exists(dataset)) throw new UserInputException($"{trace}: servegen: the matching {Path.GetFileName(dataset)} is missing");
                pairs.Add((id, trace, dataset));
            }
            if (pairs.Count == 0) throw new UserInputException($"{path}: servegen: no chunk-<id>-trace.csv files in this folder");
        }
        else if (File.Exists(path))
        {
            string name = Path.GetFileName(path), dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            string? id = name.StartsWith("chunk-", StringComparison.Ordinal) && name.EndsWith("-trace.csv", StringComparison.Ordinal) ? name["chunk-".Length..^"-trace.csv".Length]
                : name.StartsWith("chunk-", StringComparison.Ordinal) && name.EndsWith("-dataset.json", StringComparison.Ordinal) ? name["chunk-".Length..^"-dataset.json".Length]
                : null;
            if (id is null) throw new UserInputException($"{path}: servegen: expected a folder or a chunk-<id>-trace.csv / chunk-<id>-dataset.json file");
            string trace = Path.Combine(dir, $"chunk-{id}-trace.csv"), dataset = Path.Combine(dir, $"chunk-{id}-dataset.json");
            foreach (var f in new[] { trace, dataset })
                if (!File.Exists(f)) throw new UserInputException($"{f}: servegen: file not found (both files of a chunk are needed)");
            pairs.Add((id, trace, dataset));
        }
        else throw new UserInputException($"{path}: file or folder not found");

        // Numeric client order makes the seed → stream mapping independent of the file system's listing order.
        return pairs
            .OrderBy(p => int.TryParse(p.Id, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : int.MaxValue)
            .ThenBy(p => p.Id, StringComparer.Ordinal)
            .Select(p => new ServeGenClient(p.Id, ReadRates(p.Trace, bad), ReadLengths(p.Dataset)))
            .ToList();
    }

    private static List<RateWindow> ReadRates(string path, BadRows bad)
    {
        var windows = new List<RateWindow>();
        using var csv = new CsvLines(path);
        var ranges = new Range[8];
        string? line;
        while ((line = csv.Next()) is not null)
        {
            int n = CsvLines.Split(line, ranges);
            if (n != 6) { bad.Report(csv.LineNumber, 1, file: path, problem: $"expected 6 fields (timestamp_s,rate_rps,cv,arrival_dist,dist_param1,dist_param2), found {n}"); continue; }
            var span = line.AsSpan();
            double[] v = new double[6];
            string? problem = null;
            int column = 0;
            foreach (int k in new[] { 0, 1, 2, 4, 5 })
            {
                var text = span[ranges[k]].Trim();
                if (k >= 4 && text.IsEmpty) continue;
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out v[k]) || !double.IsFinite(v[k]) || (k < 3 && v[k] < 0))
                {
                    problem = $"field {k + 1}: '{Files.ErrorText.Clip(text)}' is not a valid number";
                    column = ranges[k].Start.GetOffset(line.Length) + 1;
                    break;
                }
            }
            string dist = span[ranges[3]].Trim().ToString();
            if (problem is null && dist is not ("" or "Gamma" or "Weibull"))
            {
                problem = $"arrival_dist: '{dist}' is not Gamma, Weibull or empty";
                column = ranges[3].Start.GetOffset(line.Length) + 1;
            }
            if (problem is not null) { bad.Report(csv.LineNumber, column, problem, file: path); continue; }
            windows.Add(new RateWindow(v[0], v[1], v[2], dist.Length == 0 ? null : dist, v[4], v[5]));
        }
        return windows;
    }

    private static List<LengthWindow> ReadLengths(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new UserInputException($"{path}:{(e.LineNumber ?? 0) + 1}:{(e.BytePositionInLine ?? 0) + 1}: invalid JSON: {e.Message.Split('.')[0]}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new UserInputException($"{path}: servegen: expected an object keyed by window start");
            var windows = new List<LengthWindow>();
            foreach (var window in doc.RootElement.EnumerateObject())
            {
                if (!double.TryParse(window.Name, NumberStyles.Float, CultureInfo.InvariantCulture, out double start) || start < 0)
                    throw new UserInputException($"{path}: servegen: window key '{window.Name}' is not a start time in seconds");
                DiscretePdf? Pdf(string field)
                {
                    if (!window.Value.TryGetProperty(field, out var value)) return null;
                    if (value.ValueKind != JsonValueKind.String) throw new UserInputException($"{path}: \"{window.Name}\".{field}: expected a string holding a Python dict literal");
                    try { return DiscretePdf.ParsePythonDict(value.GetString()!); }
                    catch (FormatException e) { throw new UserInputException($"{path}: \"{window.Name}\".{field}: {e.Message}", e); }
                }
                var input = Pdf("input_tokens") ?? SumOfParts(window.Name, path, Pdf);
                var output = Pdf("output_tokens") ?? throw new UserInputException($"{path}: \"{window.Name}\": field output_tokens is missing");
                windows.Add(new LengthWindow(start, input, output, Pdf("reason_ratio")));
            }
            return windows;
        }
    }

    // Multimodal ServeGen data has no input_tokens; the prompt is text + image + audio + video tokens. Summing
    // independent draws would need a convolution; we take the PDF of the sum assuming independence.
    private static DiscretePdf SumOfParts(string window, string path, Func<string, DiscretePdf?> pdf)
    {
        string[] parts = ["text_tokens", "image_tokens", "audio_tokens", "video_tokens"];
        var found = parts.Select(pdf).Where(p => p is not null).Cast<DiscretePdf>().ToList();
        if (found.Count == 0) throw new UserInputException($"{path}: \"{window}\": neither input_tokens nor text_tokens/image_tokens fields are present");
        if (found.Any(p => p.IsEmpty)) return new DiscretePdf([]);
        // Convolution by sampling-free enumeration would explode; approximate with a fixed-seed Monte Carlo of 10,000 sums.
        var random = new Random(12345);
        var counts = new Dictionary<double, double>();
        for (int i = 0; i < 10_000; i++)
        {
            double sum = found.Sum(p => p.Sample(random));
            counts[sum] = counts.GetValueOrDefault(sum) + 1;
        }
        return new DiscretePdf(counts.Select(kv => (kv.Key, kv.Value)).ToList());
    }
}
