using RLMServing.IO.Traces;
using RLMServing.Workloads.ServeGen;
using Xunit;

namespace RLMServing.Tests.Traces;

/// <summary>The ServeGen generator on the real DeepSeek-R1 client data.</summary>
public class ServeGenTests
{
    private static IReadOnlyList<ServeGenClient> Clients(string? chunk = null) =>
        ServeGenSource.LoadClients(chunk is null ? SharedData.Path_("servegen-deepseek-r1") : SharedData.Path_("servegen-deepseek-r1", chunk),
            new BadRows("servegen", false));

    [Fact]
    public void PythonDictLiteralsParse()
    {
        var pdf = DiscretePdf.ParsePythonDict("{45: 0.25, 46: 0.75, 47: 0.0}");
        Assert.Equal(2, pdf.Count);
        Assert.Equal(45.75, pdf.Mean, 12);
        Assert.True(DiscretePdf.ParsePythonDict("{}").IsEmpty);
        var e = Assert.Throws<FormatException>(() => DiscretePdf.ParsePythonDict("{45: 0.25 46: 0.75}"));
        Assert.StartsWith("character 11:", e.Message);
    }

    [Fact]
    public void LoadsAll73Clients()
    {
        var clients = Clients();
        Assert.Equal(73, clients.Count);
        Assert.All(clients, c => Assert.Equal(144, c.RateWindows.Count));
        Assert.All(clients, c => Assert.Equal(4, c.LengthWindows.Count));
    }

    [Fact]
    public void SameSeedSameRequestsDifferentSeedDifferentRequests()
    {
        var clients = Clients();
        var a = new ServeGenGenerator(clients, 7, 36000, 120).Generate().ToList();
        var b = new ServeGenGenerator(clients, 7, 36000, 120).Generate().ToList();
        var c = new ServeGenGenerator(clients, 8, 36000, 120).Generate().ToList();
        Assert.NotEmpty(a);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void GeneratedRequestsRespectTheDataBounds()
    {
        var clients = Clients("chunk-1-trace.csv");
        var window = clients[0].LengthWindows.First(w => !w.IsEmpty);
        var requests = new ServeGenGenerator(clients, 1, 0, 21600).Generate().ToList();
        Assert.NotEmpty(requests);
        double previous = 0;
        foreach (var r in requests)
        {
            Assert.InRange(r.ArrivalTimeS, previous, 21600);
            previous = r.ArrivalTimeS;
            Assert.InRange(r.PromptTokens, (int)window.InputTokens.Min, (int)window.InputTokens.Max);
            Assert.InRange(r.OutputTokens, (int)window.OutputTokens.Min, (int)window.OutputTokens.Max);
            Assert.NotNull(r.ThinkingTokens);
            Assert.InRange(r.ThinkingTokens!.Value, 0, r.OutputTokens);
        }
    }

    [Fact]
    public void RequestCountMatchesTheRateSeries()
    {
        var clients = Clients();
        double start = 43200, duration = 3600;
        double expected = clients.Sum(c => c.RateWindows.Where(w => w.StartS >= start && w.StartS < start + duration).Sum(w => w.RateRps * 600));
        long generated = new ServeGenGenerator(clients, 3, start, duration).Generate().LongCount();
        Assert.InRange(generated, expected * 0.9, expected * 1.1);
    }

    [Fact]
    public void ImportWritesThinkingTokensAndGeneratorMetadata()
    {
        using var temp = new TempDir();
        string output = Path.Combine(temp.Path, "sg.parquet");
        var result = TestImporters.Registry.Get("servegen").Import(SharedData.Path_("servegen-deepseek-r1"), output,
            new ImportOptions(Seed: 5, DurationS: 60, StartS: 50000));
        Assert.True(result.Rows > 100);
        var metadata = RequestTraceReader.ReadMetadata(output);
        Assert.Equal("5", metadata["rlms.seed"]);
        Assert.Equal("60", metadata["rlms.duration_s"]);
        var rows = RequestTraceReader.Read(output, new BadRows(output, false)).ToList();
        Assert.All(rows, r => Assert.NotNull(r.ThinkingTokens));
        Assert.All(rows, r => Assert.InRange(r.ArrivalTimeS, 0, 60));
    }

    [Fact]
    public void MultimodalClientsSumTheirInputParts()
    {
        // mm-image has text/image/audio/video token PDFs instead of input_tokens, and no reason ratio.
        var clients = ServeGenSource.LoadClients(Path.Combine(SharedData.Traces, "servegen-mm-image"), new BadRows("mm", false));
        var requests = new ServeGenGenerator(clients, 2, 43200, 300).Generate().Take(2000).ToList();
        Assert.NotEmpty(requests);
        Assert.All(requests, r => Assert.Null(r.ThinkingTokens));
        Assert.All(requests, r => Assert.True(r.PromptTokens > 0));
    }
}
