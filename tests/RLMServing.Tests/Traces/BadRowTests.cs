using RLMServing.Cli;
using RLMServing.Cli.Commands;
using RLMServing.IO.Traces;
using Xunit;

namespace RLMServing.Tests.Traces;

/// <summary>Bad rows stop the import with file:line:column and leave nothing behind, or are skipped and reported.</summary>
public class BadRowTests
{
    private const string CsvWithBadLine4 =
        "arrival_time_s,prompt_tokens,output_tokens\n0.0,10,20\n0.5,11,21\n1.0,abc,22\n1.5,13,23\n2.0,14,-1\n";

    [Fact]
    public void BadRowStopsImportNamingFileLineAndColumn()
    {
        using var temp = new TempDir();
        string input = temp.File("in.csv", CsvWithBadLine4);
        string output = temp.File("out.parquet");
        var e = Assert.Throws<UserInputException>(() => TestImporters.Registry.Get("csv").Import(input, output, new ImportOptions()));
        Assert.StartsWith($"{input}:4:5: prompt_tokens: 'abc'", e.Message);
        Assert.Equal([input], Directory.GetFiles(temp.Path)); // neither the output nor a temporary file
    }

    [Fact]
    public void SkipBadRowsCountsAndNamesTheLines()
    {
        using var temp = new TempDir();
        string input = temp.File("in.csv", CsvWithBadLine4);
        string output = temp.File("out.parquet");
        var result = TestImporters.Registry.Get("csv").Import(input, output, new ImportOptions(SkipBadRows: true));
        Assert.Equal(3, result.Rows);
        Assert.Equal(2, result.SkippedRows);
        Assert.Equal([4L, 6L], result.SkippedLines);
        var metadata = RequestTraceReader.ReadMetadata(output);
        Assert.Equal("3", metadata["rlms.rows"]);
        Assert.Equal("2", metadata["rlms.skipped_rows"]);
    }

    [Fact]
    public void UnsortedArrivalsAreABadRow()
    {
        using var temp = new TempDir();
        string input = temp.File("in.csv", "arrival_time_s,prompt_tokens,output_tokens\n1.0,1,1\n0.5,1,1\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(input, "csv"));
        Assert.Contains($"{input}:3:1: arrival time 0.5 s is earlier", e.Message);
    }

    [Fact]
    public void BadAzureTimestampIsReportedAtItsColumn()
    {
        using var temp = new TempDir();
        string input = temp.File("azure.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n2023-13-16 18:17:04.0319600,3180,8\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(input, "azure"));
        Assert.StartsWith($"{input}:3:1: TIMESTAMP:", e.Message);
    }

    [Fact]
    public void BadMooncakeLineNamesTheField()
    {
        using var temp = new TempDir();
        string bad = "{\"timestamp\": 5, \"input_length\": \"x\", \"output_length\": 5, \"hash_ids\": [1]}";
        string input = temp.File("m.jsonl", "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [0]}\n" + bad + "\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(input, "mooncake"));
        Assert.StartsWith($"{input}:2:{bad.IndexOf("\"x\"", StringComparison.Ordinal) + 1}: input_length", e.Message);
    }

    [Fact]
    public void CliExitsWithCode2AndOneLineOnBadInput()
    {
        using var temp = new TempDir();
        string input = temp.File("in.csv", CsvWithBadLine4);
        string output = temp.File("out.parquet");
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        int code;
        try { code = CliHost.Run(["trace", "import", input, "--format", "csv", "--out", output], [typeof(TraceCommand)]); }
        finally { Console.SetError(saved); }
        Assert.Equal(2, code);
        Assert.Single(error.ToString().Trim().Split('\n'));
        Assert.Contains(":4:5:", error.ToString());
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void MissingColumnIsNamed()
    {
        using var temp = new TempDir();
        string input = temp.File("in.csv", "arrival_time_s,prompt_tokens\n0,1\n");
        var e = Assert.Throws<UserInputException>(() => RequestTraceStats.Compute(input, "csv"));
        Assert.Contains("output_tokens", e.Message);
    }
}
