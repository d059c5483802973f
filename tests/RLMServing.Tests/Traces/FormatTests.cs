using RLMServing.IO.Traces;
using Xunit;

namespace RLMServing.Tests.Traces;

/// <summary>BurstGPT variants, multi-turn sessions and the canonical CSV round trip.</summary>
public class FormatTests
{
    private static List<RequestTraceRow> Import(TempDir temp, string format, string content, ImportOptions? options = null)
    {
        string input = temp.File("in-" + Guid.NewGuid().ToString("N") + ".csv", content);
        string output = temp.File("out-" + Guid.NewGuid().ToString("N") + ".parquet");
        TestImporters.Registry.Get(format).Import(input, output, options ?? new ImportOptions());
        return RequestTraceReader.Read(output, new BadRows(output, false)).ToList();
    }

    [Fact]
    public void BurstGptSixColumnFileKeepsModelAndFailedRows()
    {
        using var temp = new TempDir();
        var rows = Import(temp, "burstgpt",
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" +
            "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,1087,0,1087,Conversation log\n118,GPT-4,417,276,693,API log\n");
        Assert.Equal(3, rows.Count);
        Assert.Equal(["ChatGPT", "ChatGPT", "GPT-4"], rows.Select(r => r.Model));
        Assert.Equal([false, true, false], rows.Select(r => r.Failed!.Value));
        Assert.Equal("API log", rows[2].Status);
        Assert.Equal(1087, rows[1].PromptTokens);
        Assert.Equal(0, rows[1].OutputTokens);
    }

    [Fact]
    public void BurstGptSessionVariantMapsColumnsByNameNotPosition()
    {
        using var temp = new TempDir();
        // Session ID and Elapsed time sit in the middle: a positional reader would take Session ID as the model.
        var rows = Import(temp, "burstgpt",
            "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n" +
            "1.5,s-1,2.0,ChatGPT,100,50,150,Conversation log\n2.5,s-2,1.0,GPT-4,80,40,120,Conversation log\n9.0,s-1,3.0,ChatGPT,30,60,90,Conversation log\n");
        Assert.Equal(["ChatGPT", "GPT-4", "ChatGPT"], rows.Select(r => r.Model));
        Assert.Equal(["s-1", "s-2", "s-1"], rows.Select(r => r.SessionId));
        Assert.Equal([0, 0, 1], rows.Select(r => r.TurnIndex!.Value));
        Assert.Equal([100, 80, 30], rows.Select(r => r.PromptTokens)); // as-is by default for BurstGPT
        Assert.Equal(1.5, rows[0].ArrivalTimeS);
    }

    [Fact]
    public void SessionContextGrowsByEarlierTurns()
    {
        using var temp = new TempDir();
        var rows = Import(temp, "csv",
            "arrival_time_s,prompt_tokens,output_tokens,session_id\n0,100,50,a\n1,10,5,b\n2,30,60,a\n3,20,10,a\n");
        // a: turn 0 reads 100; turn 1 reads 100+50+30 = 180; turn 2 reads 180+60+20 = 260. b is independent.
        Assert.Equal([100, 10, 180, 260], rows.Select(r => r.PromptTokens));
        Assert.Equal([0, 0, 1, 2], rows.Select(r => r.TurnIndex!.Value));
        var asIs = Import(temp, "csv", "arrival_time_s,prompt_tokens,output_tokens,session_id\n0,100,50,a\n2,30,60,a\n",
            new ImportOptions(GrowSessionContext: false));
        Assert.Equal([100, 30], asIs.Select(r => r.PromptTokens));
    }

    [Fact]
    public void CanonicalCsvRoundTripsThroughParquet()
    {
        using var temp = new TempDir();
        var rows = Import(temp, "csv",
            "arrival_time_s,prompt_tokens,output_tokens,thinking_tokens\n0.125,812,2304,1980\n0.5,100,20,\n");
        Assert.Equal(new RequestTraceRow(0.125, 812, 2304, 1980), rows[0]);
        Assert.Equal(new RequestTraceRow(0.5, 100, 20, null), rows[1]);
    }

    [Fact]
    public void ThinkingAboveOutputIsRejected()
    {
        using var temp = new TempDir();
        string input = temp.File("t.csv", "arrival_time_s,prompt_tokens,output_tokens,thinking_tokens\n0,1,10,11\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(input, "csv"));
        Assert.StartsWith($"{input}:2:", e.Message);
        Assert.Contains("thinking_tokens", e.Message);
    }

    [Fact]
    public void UnknownCanonicalColumnIsAnError()
    {
        using var temp = new TempDir();
        string input = temp.File("t.csv", "arrival_time_s,prompt_tokens,output_tokens,promt\n0,1,10,11\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(input, "csv"));
        Assert.Contains("unknown column 'promt'", e.Message);
    }

    [Fact]
    public void LimitStopsEarly()
    {
        using var temp = new TempDir();
        var rows = Import(temp, "vidur", "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n1,2,2\n2,3,3\n", new ImportOptions(Limit: 2));
        Assert.Equal(2, rows.Count);
    }

    [Theory]
    [InlineData("2023-11-16 18:17:03.9799600", 0.0)]
    [InlineData("2023-11-16 18:17:04.03196", 0.052)]
    [InlineData("2023-11-16T18:17:05Z", 1.02004)]
    [InlineData("2023-11-16 19:17:05.0000000+01:00", 1.02004)]
    public void AzureTimestampsKeepSevenDigits(string timestamp, double expectedS)
    {
        using var temp = new TempDir();
        var rows = Import(temp, "azure", $"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,1,1\n{timestamp},2,2\n");
        Assert.Equal(expectedS, rows[1].ArrivalTimeS, 9);
    }
}

/// <summary>Parquet input written by other tools, determinism of the output, and ServeGen error locations.</summary>
public class ParquetInputTests
{
    [Fact]
    public async Task ParquetWithInt64AndNullableDoubleColumnsIsAccepted()
    {
        using var temp = new TempDir();
        string path = temp.File("pandas-like.parquet");
        var arrival = new Parquet.Schema.DataField<double>("arrival_time_s");
        var prompt = new Parquet.Schema.DataField<long>("prompt_tokens");
        var output = new Parquet.Schema.DataField<long>("output_tokens");
        var thinking = new Parquet.Schema.DataField<double?>("thinking_tokens");
        var extra = new Parquet.Schema.DataField<string>("user_column", nullable: true);
        await using (var stream = File.Create(path))
        {
            await using var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(arrival, prompt, output, thinking, extra), stream);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync<double>(arrival, new double[] { 0, 1.5 }.AsMemory());
            await group.WriteAsync<long>(prompt, new long[] { 10, 20 }.AsMemory());
            await group.WriteAsync<long>(output, new long[] { 30, 40 }.AsMemory());
            await group.WriteAsync<double>(thinking, new double?[] { 25, null }.AsMemory());
            await group.WriteAsync(extra, new[] { "a", "b" });
        }
        var rows = RequestTraceReader.Read(path, new BadRows(path, false)).ToList();
        Assert.Equal([new RequestTraceRow(0, 10, 30, 25), new RequestTraceRow(1.5, 20, 40, null)], rows);
    }

    [Fact]
    public void ImportIsByteForByteDeterministic()
    {
        using var temp = new TempDir();
        string a = temp.File("a.parquet"), b = temp.File("b.parquet");
        var options = new ImportOptions(Seed: 11, DurationS: 30, StartS: 45000);
        TestImporters.Registry.Get("servegen").Import(SharedData.Path_("servegen-deepseek-r1"), a, options);
        TestImporters.Registry.Get("servegen").Import(SharedData.Path_("servegen-deepseek-r1"), b, options);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }

    [Fact]
    public void ServeGenRateErrorsNameTheChunkFile()
    {
        using var temp = new TempDir();
        File.Copy(SharedData.Path_("servegen-deepseek-r1", "chunk-0-dataset.json"), Path.Combine(temp.Path, "chunk-0-dataset.json"));
        string trace = temp.File("chunk-0-trace.csv", "0,0,0,,0,0\n600,0.5,1.0,Poisson,1,1\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(temp.Path, "servegen"));
        Assert.StartsWith($"{trace}:2:", e.Message);
        Assert.Contains("Poisson", e.Message);
    }
}
