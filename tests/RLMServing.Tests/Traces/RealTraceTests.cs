using System.Globalization;
using System.Text.Json;
using RLMServing.IO.Traces;
using Xunit;

namespace RLMServing.Tests.Traces;

/// <summary>Importers and stats on the real public traces, checked against an independent plain count of the same files.</summary>
public class RealTraceTests
{
    private static double Percentile(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        double h = (sorted.Count - 1) * q;
        int lo = (int)Math.Floor(h);
        return lo + 1 < sorted.Count ? sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
    }

    private static (List<double> Time, List<double> Prompt, List<double> Output) PlainCsv(string path, Func<string, double> time)
    {
        var lines = File.ReadAllLines(path).Skip(1).Where(l => l.Length > 0).ToList();
        var cells = lines.Select(l => l.Split(',')).ToList();
        return (cells.Select(c => time(c[0])).ToList(),
            cells.Select(c => double.Parse(c[1], CultureInfo.InvariantCulture)).ToList(),
            cells.Select(c => double.Parse(c[2], CultureInfo.InvariantCulture)).ToList());
    }

    [Theory]
    [InlineData("AzureLLMInferenceTrace_code.csv", 8819)]
    [InlineData("AzureLLMInferenceTrace_conv.csv", 19366)]
    public void AzureStatsMatchAnIndependentCount(string file, long rows)
    {
        string path = SharedData.Path_("azure-2023", file);
        long origin = DateTime.ParseExact(File.ReadLines(path).Skip(1).First().Split(',')[0], "yyyy-MM-dd HH:mm:ss.fffffff", CultureInfo.InvariantCulture).Ticks;
        var (time, prompt, output) = PlainCsv(path, s => (DateTime.ParseExact(s, "yyyy-MM-dd HH:mm:ss.fffffff", CultureInfo.InvariantCulture).Ticks - origin) / 1e7);
        var (stats, bad) = RequestTraceStats.Compute(path, "azure");
        Assert.Equal(0, bad.Count);
        Assert.Equal(rows, stats.Rows);
        Assert.Equal(rows, time.Count);
        Assert.Equal(time.Max() - time.Min(), stats.DurationS, 6);
        Assert.Equal(prompt.Average(), stats.PromptTokens.Mean, 9);
        Assert.Equal(output.Average(), stats.OutputTokens.Mean, 9);
        Assert.Equal(Percentile(prompt, 0.5), stats.PromptTokens.P50);
        Assert.Equal(Percentile(output, 0.5), stats.OutputTokens.P50);
        Assert.Equal(Percentile(prompt, 0.99), stats.PromptTokens.P99, 9);
        Assert.Equal(output.Max(), stats.OutputTokens.Max);
        Assert.Null(stats.ThinkingTokens);
    }

    [Theory]
    [InlineData("conversation_trace.jsonl", 12031, 12035, 343)]
    [InlineData("synthetic_trace.jsonl", 3993, 15325, 149)]
    public void MooncakeStatsMatchAnIndependentCount(string file, long rows, double readmeMeanInput, double readmeMeanOutput)
    {
        string path = SharedData.Path_("mooncake", file);
        var docs = File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        var input = docs.Select(d => (double)d.GetProperty("input_length").GetInt32()).ToList();
        var output = docs.Select(d => (double)d.GetProperty("output_length").GetInt32()).ToList();
        var (stats, _) = RequestTraceStats.Compute(path, "mooncake");
        Assert.Equal(rows, stats.Rows);
        Assert.Equal(rows, docs.Count);
        Assert.Equal(input.Average(), stats.PromptTokens.Mean, 9);
        Assert.Equal(output.Average(), stats.OutputTokens.Mean, 9);
        Assert.Equal(Percentile(input, 0.5), stats.PromptTokens.P50);
        Assert.Equal(Percentile(output, 0.9), stats.OutputTokens.P90, 9);
        // The data README's rounded means.
        Assert.Equal(readmeMeanInput, Math.Round(stats.PromptTokens.Mean));
        Assert.Equal(readmeMeanOutput, Math.Round(stats.OutputTokens.Mean));
    }

    [Fact]
    public void MooncakeImportKeepsPrefixBlockHashes()
    {
        using var temp = new TempDir();
        string path = SharedData.Path_("mooncake", "conversation_trace.jsonl");
        string output = temp.File("mooncake.parquet");
        var result = TestImporters.Registry.Get("mooncake").Import(path, output, new ImportOptions());
        Assert.Equal(12031, result.Rows);
        var first = JsonDocument.Parse(File.ReadLines(path).First()).RootElement;
        var expected = string.Join(' ', first.GetProperty("hash_ids").EnumerateArray().Select(e => e.GetInt64()));
        var row = RequestTraceReader.Read(output, new BadRows(output, false)).First();
        Assert.Equal(expected, row.HashIds);
        Assert.Equal(first.GetProperty("input_length").GetInt32(), row.PromptTokens);
    }

    [Fact]
    public void VidurProcessedAzureTraceAgreesWithTheRawAzureTrace()
    {
        var (vidur, _) = RequestTraceStats.Compute(SharedData.Path_("vidur", "splitwise_conv.csv"), "vidur");
        var (azure, _) = RequestTraceStats.Compute(SharedData.Path_("azure-2023", "AzureLLMInferenceTrace_conv.csv"), "azure");
        Assert.Equal(19366, vidur.Rows);
        Assert.Equal(azure.PromptTokens, vidur.PromptTokens);
        Assert.Equal(azure.OutputTokens, vidur.OutputTokens);
        Assert.Equal(azure.DurationS, vidur.DurationS, 3);
    }

    [Theory]
    [InlineData("azure-2023/AzureLLMInferenceTrace_code.csv", "azure")]
    [InlineData("mooncake/synthetic_trace.jsonl", "mooncake")]
    [InlineData("vidur/splitwise_code.csv", "vidur")]
    public void ImportedParquetHasTheSameStatsAsTheSource(string relative, string format)
    {
        using var temp = new TempDir();
        string path = Path.Combine(SharedData.Traces, relative);
        string output = temp.File("out.parquet");
        var result = TestImporters.Registry.Get(format).Import(path, output, new ImportOptions());
        var (fromSource, _) = RequestTraceStats.Compute(path, format);
        var (fromParquet, _) = RequestTraceStats.Compute(output);
        Assert.Equal(fromSource, fromParquet);
        Assert.Equal(result.Rows, fromParquet.Rows);
        var metadata = RequestTraceReader.ReadMetadata(output);
        Assert.Equal(format, metadata[RequestTraceSchema.KeySourceFormat]);
        Assert.Equal(Path.GetFileName(path), metadata[RequestTraceSchema.KeySourceFile]);
        Assert.Equal(result.Rows.ToString(CultureInfo.InvariantCulture), metadata[RequestTraceSchema.KeyRows]);
        Assert.Equal(RequestTraceSchema.SchemaName, metadata[RequestTraceSchema.KeySchema]);
        Assert.Single(Directory.GetFiles(temp.Path)); // no temporary file left beside the output
    }

    [Fact]
    public void FormatIsDetectedFromHeadersAndNames()
    {
        Assert.Equal("azure", RequestTraceFormats.Detect(SharedData.Path_("azure-2023", "AzureLLMInferenceTrace_code.csv")).Format);
        Assert.Equal("vidur", RequestTraceFormats.Detect(SharedData.Path_("vidur", "splitwise_code.csv")).Format);
        Assert.Equal("mooncake", RequestTraceFormats.Detect(SharedData.Path_("mooncake", "synthetic_trace.jsonl")).Format);
        Assert.Equal("servegen", RequestTraceFormats.Detect(SharedData.Path_("servegen-deepseek-r1")).Format);
        Assert.Equal("servegen", RequestTraceFormats.Detect(SharedData.Path_("servegen-deepseek-r1", "chunk-0-trace.csv")).Format);
    }

    [Fact]
    public void StatsJsonHasExactlyTheDocumentedNames()
    {
        var (stats, _) = RequestTraceStats.Compute(SharedData.Path_("vidur", "splitwise_code.csv"), "vidur");
        using var doc = JsonDocument.Parse(RequestTraceStats.ToJson(stats));
        Assert.Equal(["rows", "duration_s", "mean_rate", "interarrival_cv", "prompt_tokens", "output_tokens"],
            doc.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["mean", "p50", "p90", "p99", "max"], doc.RootElement.GetProperty("prompt_tokens").EnumerateObject().Select(p => p.Name));
        Assert.Equal(8819, doc.RootElement.GetProperty("rows").GetInt64());
    }
}
