using System.Reflection;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using FsCheck.Xunit;
using Parquet;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Traces;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Profiling;

public sealed class TraceSchemaTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rlms-schema-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly Dictionary<string, string> Meta = new()
    {
        [TraceMetadata.Schema] = "operator",
        [TraceMetadata.Device] = "test device",
        [TraceMetadata.TimeUnit] = "us",
    };

    [Fact]
    public void OperatorRows_RoundTrip_AcrossAppends()
    {
        var path = Path.Combine(_dir, "ops.parquet");
        var writer = new TraceWriter<OperatorRow>(path, Meta);
        var a = new OperatorRow
        {
            Source = "rlms-profile", Device = "cpu", Model = "tiny", Dtype = "fp32", Op = "attention", SourceOp = "attention", Phase = "decode",
            Tokens = 4, Batch = 4, DecodeSeqs = 4, DecodeContextSum = 100, DecodeContextMax = 70, Skew = "skewed", TimeUsMin = 1, TimeUsMedian = 2,
            TimeUsMean = 2.5, TimeUsStd = 0.5, TimeUsP90 = 3, Reps = 9, WarmupReps = 3, Cv = 0.2, Unstable = true, WeightBytes = 10, KvBytes = 20,
            PeakMemBytes = 30, Extra = "k=v",
        };
        var b = new OperatorRow { Source = "vidur", Op = "all_reduce", SizeBytes = 2048, Workers = 2, TimeUsMedian = 43 };
        writer.Append(a);
        writer.Append([b, b]);
        Assert.Equal(3, writer.Rows);

        var rows = TraceReader.Read<OperatorRow>(path);
        Assert.Equal(3, rows.Count);
        Assert.Equivalent(a, rows[0], strict: true);
        Assert.Equivalent(b, rows[2], strict: true);
        Assert.Null(rows[1].PrefillTokens);
        Assert.Equal("test device", TraceReader.Metadata(path)[TraceMetadata.Device]);
    }

    [Fact]
    public void IterationKernelAndCoefficientRows_RoundTrip()
    {
        var it = new IterationRow { Source = "s", Layers = 2, Batch = 3, PromptTokens = 64, Step = 5, Phase = "decode", NewTokens = 1, Context = 69,
            KvMode = "concat", TimeUsMedian = 12.5, TimeUsStd = 1, KvBytesComputed = 100, KvBytesMeasured = 100, MemBytes = 5, TokensPerS = 3 };
        var k = new KernelRow { Device = "cpu", Graph = "mlp", Config = "tokens=32", Run = 4, Node = "n_MatMul_1", OpType = "MatMul",
            Provider = "CPUExecutionProvider", DurUs = 17, TsUs = 1234 };
        var c = new CoefficientRow { Source = "distserve", Model = "m", Tp = 2, Kind = "prefill", Formula = "f", A = 1, B = 2, C = 3 };
        var p1 = Path.Combine(_dir, "it.parquet");
        var p2 = Path.Combine(_dir, "k.parquet");
        var p3 = Path.Combine(_dir, "c.parquet");
        new TraceWriter<IterationRow>(p1, Meta).Append(it);
        new TraceWriter<KernelRow>(p2, Meta).Append(k);
        new TraceWriter<CoefficientRow>(p3, Meta).Append(c);
        Assert.Equivalent(it, TraceReader.Read<IterationRow>(p1).Single(), strict: true);
        Assert.Equivalent(k, TraceReader.Read<KernelRow>(p2).Single(), strict: true);
        Assert.Equivalent(c, TraceReader.Read<CoefficientRow>(p3).Single(), strict: true);
    }

    private static string[] Columns(string path)
    {
        using var stream = File.OpenRead(path);
        var reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        try { return reader.Schema.GetDataFields().Select(f => f.Name).ToArray(); }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    private static string Snake(string name) => Regex.Replace(name, "(?<=[a-z0-9])([A-Z])", "_$1").ToLowerInvariant();

    [Theory]
    [InlineData(typeof(OperatorRow))]
    [InlineData(typeof(IterationRow))]
    [InlineData(typeof(KernelRow))]
    [InlineData(typeof(CoefficientRow))]
    public void EveryColumn_IsTheSnakeCaseOfItsProperty(Type rowType)
    {
        foreach (var p in rowType.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            Assert.Equal(Snake(p.Name), p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name);
    }

    [Fact]
    public void WrittenColumns_AreSnakeCase()
    {
        var path = Path.Combine(_dir, "names.parquet");
        new TraceWriter<OperatorRow>(path, Meta).Append(new OperatorRow { TimeUsMedian = 1 });
        var columns = Columns(path);
        Assert.All(columns, c => Assert.Matches("^[a-z][a-z0-9_]*$", c));
        Assert.Contains("time_us_p90", columns);
        Assert.Contains("prefill_context", columns);
        Assert.Contains("tp", columns);
    }

    [Fact]
    public void ShippedTraces_HaveSnakeCaseColumns()
    {
        var traces = Path.Combine(RlmsProcess.RepoRoot(), "traces");
        var files = new[] { "h200", "public" }.SelectMany(d => Directory.GetFiles(Path.Combine(traces, d), "*.parquet", SearchOption.AllDirectories)).ToList();
        Assert.NotEmpty(files);
        foreach (var f in files)
            Assert.All(Columns(f), c => Assert.Matches("^[a-z][a-z0-9_]*$", c));
    }
}

public sealed class SamplerTests
{
    [Fact]
    public void Stats_FollowNumpyQuantilesAndSampleStd()
    {
        var t = TimingStats.FromSamples([4, 1, 3, 2, 6], warmupReps: 2, unstableCv: 0.1);
        Assert.Equal(1, t.MinUs);
        Assert.Equal(3, t.MedianUs);
        Assert.Equal(3.2, t.MeanUs, 12);
        Assert.Equal(Math.Sqrt(3.7), t.StdUs, 12);
        Assert.Equal(5.2, t.P90Us, 12);
        Assert.Equal(5, t.Reps);
        Assert.Equal(0, t.Outliers);
        Assert.True(t.Unstable);
    }

    [Fact]
    public void Stats_LeaveUpperOutliersOutOfMeanAndSpread_ButNotOutOfQuantiles()
    {
        // Q1 = 2, Q3 = 4, Tukey's fence 4 + 1.5 * 2 = 7: the 10 µs stall is an outlier.
        var t = TimingStats.FromSamples([4, 1, 3, 2, 10], warmupReps: 0, unstableCv: 0.6);
        Assert.Equal(1, t.Outliers);
        Assert.Equal(2.5, t.MeanUs, 12);
        Assert.Equal(Math.Sqrt(5.0 / 3), t.StdUs, 12);
        Assert.Equal(3, t.MedianUs);
        Assert.Equal(7.6, t.P90Us, 12);
        Assert.Equal(5, t.Reps);
        Assert.False(t.Unstable);
    }

    [Property]
    public bool Stats_AreOrdered(double[] xs)
    {
        var samples = xs.Where(double.IsFinite).Select(Math.Abs).Where(x => x < 1e12).ToArray();
        if (samples.Length == 0) return true;
        var t = TimingStats.FromSamples(samples, 0, 0.1);
        return t.MinUs <= t.MedianUs && t.MedianUs <= t.P90Us && t.StdUs >= 0 && t.Reps == samples.Length;
    }

    [Fact]
    public void Measure_PilotPicksRepsToFillTheTarget()
    {
        int calls = 0;
        var t = Sampler.Measure(() => { calls++; Thread.SpinWait(2000); }, new SamplingPolicy(TargetSeconds: 0.01, MinReps: 5, MaxReps: 100000));
        Assert.True(t.Reps >= 5);
        Assert.True(t.WarmupReps >= 3);
        Assert.InRange(calls - t.Reps - t.WarmupReps, 2, 4); // one cold run and a pilot of one to three runs
        Assert.True(t.MinUs > 0 && t.MedianUs < 1e6);
    }
}
