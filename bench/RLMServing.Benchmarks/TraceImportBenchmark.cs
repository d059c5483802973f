using System.Diagnostics;
using System.Globalization;
using RLMServing.IO.Traces;

namespace RLMServing.Benchmarks;

/// <summary>
/// `trace-import [ROWS] [RUNS]`: writes a canonical CSV of ROWS rows (default 5,000,000) to a temporary folder, imports
/// it to Parquet and streams `trace stats` over it RUNS times (default 3) after one cold warm-up run on a 1,000,000-row
/// file (reported separately: it includes JIT tier-up). Reports each run's rows/s, the median and the spread, and the
/// peak working set sampled during each phase (constant memory shows as the same peak for 1M and 5M rows).
/// Files are deleted afterwards.
/// </summary>
internal static class TraceImportBenchmark
{
    public static int Run(string[] args)
    {
        long rows = args.Length > 0 ? long.Parse(args[0], CultureInfo.InvariantCulture) : 5_000_000;
        int runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
        string dir = Path.Combine(Path.GetTempPath(), "rlms-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Console.WriteLine($"{Environment.ProcessorCount} logical CPUs, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}");
            Console.WriteLine($"{"run",-8} {"rows",12} {"csv MB",8} {"import s",9} {"rows/s",12} {"peak WS MB",11} {"stats s",8} {"rows/s",12} {"peak WS MB",11} {"heap MB",8}");
            Once(dir, "cold", 1_000_000);
            var import = new List<double>();
            var stats = new List<double>();
            for (int r = 1; r <= runs; r++)
            {
                var (i, s) = Once(dir, $"run {r}", rows);
                import.Add(rows / i);
                stats.Add(rows / s);
            }
            static string Summary(List<double> v) => string.Create(CultureInfo.InvariantCulture,
                $"median {v.Order().ElementAt(v.Count / 2),12:N0} rows/s (min {v.Min():N0}, max {v.Max():N0})");
            Console.WriteLine($"import: {Summary(import)}");
            Console.WriteLine($"stats:  {Summary(stats)}");
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (double ImportS, double StatsS) Once(string dir, string label, long rows)
    {
        string csv = Path.Combine(dir, $"trace-{rows}.csv");
        string parquet = Path.Combine(dir, $"trace-{rows}.parquet");
        if (!File.Exists(csv)) Generate(csv, rows);
        double mb = new FileInfo(csv).Length / 1e6;
        GC.Collect();
        var (importS, importPeak) = Measure(() =>
        {
            var result = new TraceImporterRegistry(TraceImporterRegistry.OwnImporters).Get("csv").Import(csv, parquet, new ImportOptions());
            if (result.Rows != rows) throw new InvalidOperationException($"imported {result.Rows} rows, expected {rows}");
        });
        GC.Collect();
        var (statsS, statsPeak) = Measure(() =>
        {
            var (stats, _) = RequestTraceStats.Compute(csv, "csv");
            if (stats.Rows != rows) throw new InvalidOperationException($"stats saw {stats.Rows} rows, expected {rows}");
        });
        File.Delete(parquet);
        // Managed heap after a full collection: flat across runs means nothing is retained between imports.
        double heapMb = GC.GetTotalMemory(forceFullCollection: true) / 1e6;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label,-8} {rows,12:N0} {mb,8:F1} {importS,9:F2} {rows / importS,12:N0} {importPeak / 1e6,11:F0} {statsS,8:F2} {rows / statsS,12:N0} {statsPeak / 1e6,11:F0} {heapMb,8:F1}"));
        return (importS, statsS);
    }
    private static void Generate(string path, long rows)
    {
        var random = new Random(42);
        using var writer = new StreamWriter(path, false, new System.Text.UTF8Encoding(false), 1 << 20);
        writer.Write("arrival_time_s,prompt_tokens,output_tokens,thinking_tokens\n");
        double t = 0;
        for (long i = 0; i < rows; i++)
        {
            t += -Math.Log(1 - random.NextDouble()) * 0.01;
            int output = random.Next(1, 8192);
            writer.Write(t.ToString("F6", CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.Write(random.Next(1, 16384).ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.Write(output.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.Write(random.Next(0, output + 1).ToString(CultureInfo.InvariantCulture));
            writer.Write('\n');
        }
    }

    private static (double Seconds, long PeakWorkingSetBytes) Measure(Action action)
    {
        using var process = Process.GetCurrentProcess();
        long peak = 0;
        using var done = new ManualResetEventSlim();
        var sampler = new Thread(() =>
        {
            while (!done.Wait(20))
            {
                process.Refresh();
                peak = Math.Max(peak, process.WorkingSet64);
            }
        }) { IsBackground = true };
        sampler.Start();
        var watch = Stopwatch.StartNew();
        action();
        double seconds = watch.Elapsed.TotalSeconds;
        done.Set();
        sampler.Join();
        return (seconds, peak);
    }
}
