using System.Diagnostics;
using System.Globalization;
using RLMServing.IO.Catalog;
using RLMServing.IO.Sweeps;

namespace RLMServing.Benchmarks;

/// <summary>
/// Sweep speed: the whole of `rlms sweep` in-process on scenarios/bench-sweep-1000.yaml (1,000 configurations of
/// 5,000 requests): validation, simulation on --jobs threads, one committed part per configuration, compaction.
/// Usage: sweep [SWEEP.yaml] [--jobs N] [--limit N] (--limit runs only the first N configurations).
/// </summary>
public static class SweepBenchmark
{
    public static int Run(string[] args)
    {
        var list = args.ToList();
        int jobs = Option(list, "--jobs") ?? Environment.ProcessorCount;
        int? limit = Option(list, "--limit");
        string path = list.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? Find("bench-sweep-1000.yaml");
        var outDir = Path.Combine(Path.GetTempPath(), "rlms-bench-sweep-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        try
        {
            var total = Stopwatch.StartNew();
            var catalog = CatalogLoader.LoadDefault();
            var runner = new SweepRunner(SweepLoader.Load(path), catalog);
            runner.Validate();
            double validateS = total.Elapsed.TotalSeconds;
            var store = SweepStore.Create(outDir, runner);
            var pending = runner.Configurations.Take(limit ?? int.MaxValue).ToList();
            var sim = Stopwatch.StartNew();
            runner.RunAll(store, pending, jobs, () => { });
            double simS = sim.Elapsed.TotalSeconds;
            var compact = Stopwatch.StartNew();
            string results = limit is null ? SweepStore.Compact([store], outDir) : "";
            double compactS = compact.Elapsed.TotalSeconds;
            double totalS = total.Elapsed.TotalSeconds;
            long requests = 0, tokens = 0;
            if (results.Length > 0)
            {
                var (t, _) = ResultsTable.ReadAsync(results).GetAwaiter().GetResult();
                int c = t.IndexOf("completed"), r = t.IndexOf("rejected"), o = t.IndexOf("total_output_tokens");
                requests = t.Rows.Sum(x => (long)(int)x[c]! + (int)x[r]!);
                tokens = t.Rows.Sum(x => (long)x[o]!);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sweep: {path}\nconfigurations {pending.Count}, jobs {jobs}, requests {requests:N0}, simulated output tokens {tokens:N0}\n" +
                $"validate {validateS:F2} s, simulate+commit {simS:F2} s ({simS / pending.Count * 1000:F1} ms per configuration), compact {compactS:F2} s, total {totalS:F2} s, " +
                $"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB"));
            return 0;
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
    }

    private static int? Option(List<string> args, string name)
    {
        int i = args.IndexOf(name);
        if (i < 0) return null;
        int v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        args.RemoveRange(i, 2);
        return v;
    }

    private static string Find(string scenario)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "scenarios", scenario);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"scenarios/{scenario} not found; pass a sweep path");
    }
}
