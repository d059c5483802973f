using System.Text.Json;
using Parquet;
using Parquet.Schema;
using RLMServing.IO.ParquetFiles;
using RLMServing.Tests.Cli;

namespace RLMServing.Tests.Reports;

/// <summary>
/// Results to report on, made once per test run: a simulate output with variants (the quickstart, cut to a few
/// hundred requests) and small sweep folders written by hand to the results.parquet contract.
/// </summary>
public sealed class ReportFixtures
{
    public static readonly string[] RunChartIds =
        ["ttft-histogram", "ttft-cdf", "tpot-histogram", "tpot-cdf", "e2el-histogram", "e2el-cdf", "ttft-vs-load", "tpot-vs-load", "kv-usage", "queue-length"];

    public static readonly string[] SweepChartIds =
        ["heatmap-p99-ttft-ms", "heatmap-mean-tpot-ms", "heatmap-request-goodput", "heatmap-request-throughput", "heatmap-capacity-max-rate", "heatmap-cost-usd-per-million-tokens",
         "ttft-vs-load", "tpot-vs-load", "pareto", "capacity"];

    private static readonly Lazy<string> Quickstart = new(() =>
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml");
        var o = RlmsProcess.Run("simulate", scenario, "--out", dir, "--set", "workload.requests=400", "--quiet");
        if (o.ExitCode != 0) throw new InvalidOperationException(o.Stderr);
        return dir;
    });

    /// <summary>The quickstart's output folder: reasoning/ and standard/ beside comparison.json.</summary>
    public static string QuickstartRun => Quickstart.Value;

    /// <summary>
    /// A capacity-search sweep over batching x max_num_seqs, two seeds, with sweep.json. Latency falls and cost rises
    /// with max_num_seqs; chunked prefill is cheapest, so the frontier is known: chunked_prefill at every size.
    /// </summary>
    public static string WriteCapacitySweep()
    {
        var dir = RlmsProcess.TempDir();
        string[] batching = ["static", "continuous", "chunked_prefill"];
        double[] seqs = [32, 64, 128];
        var rows = new List<(int Config, long Seed, string Batching, double Seqs)>();
        int id = 0;
        foreach (var b in batching)
            foreach (var s in seqs)
            {
                foreach (var seed in new long[] { 1, 2 }) rows.Add((id, seed, b, s));
                id++;
            }
        double Ttft(string b, double s, long seed) => (b == "static" ? 4000 : b == "continuous" ? 900 : 700) * 64 / s + seed;
        double Cost(string b, double s) => (b == "static" ? 3.0 : b == "continuous" ? 1.6 : 1.2) + s / 64;
        var fields = new DataField[]
        {
            new DataField<int>("config_id"), new DataField<long>("seed"), new DataField<string>("scheduler.batching"), new DataField<double>("scheduler.max_num_seqs"),
            new DataField<double>("p99_ttft_ms"), new DataField<double>("mean_tpot_ms"), new DataField<double>("request_throughput"), new DataField<double?>("request_goodput"),
            new DataField<int>("replicas"), new DataField<int>("tensor_parallel"), new DataField<double>("output_throughput"), new DataField<bool>("unstable"),
            new DataField<double>("capacity.max_rate"), new DataField<double>("capacity.gpus_per_replica"), new DataField<double>("capacity.gpus_for_target"),
            new DataField<double>("cost.usd_per_million_tokens"), new DataField<bool>("pareto"),
        };
        WriteParquet(Path.Combine(dir, "results.parquet"), fields, async g =>
        {
            await g.Write(fields[0], rows.Select(r => r.Config).ToArray());
            await g.Write(fields[1], rows.Select(r => r.Seed).ToArray());
            await g.WriteStrings(fields[2], rows.Select(r => (string?)r.Batching).ToArray());
            await g.Write(fields[3], rows.Select(r => r.Seqs).ToArray());
            await g.Write(fields[4], rows.Select(r => Ttft(r.Batching, r.Seqs, r.Seed)).ToArray());
            await g.Write(fields[5], rows.Select(r => 20 + r.Seqs / 16).ToArray());
            await g.Write(fields[6], rows.Select(r => 2 + r.Seqs / 64).ToArray());
            await g.WriteNullable(fields[7], rows.Select(r => r.Batching == "static" ? (double?)null : 1.5).ToArray());
            await g.Write(fields[8], rows.Select(_ => 1).ToArray());
            await g.Write(fields[9], rows.Select(_ => 1).ToArray());
            await g.Write(fields[10], rows.Select(r => 1000 + r.Seqs * 10).ToArray());
            await g.Write(fields[11], rows.Select(_ => false).ToArray());
            await g.Write(fields[12], rows.Select(r => 1 + r.Seqs / 32).ToArray());
            await g.Write(fields[13], rows.Select(_ => 1.0).ToArray());
            await g.Write(fields[14], rows.Select(r => Math.Ceiling(64 / r.Seqs) * 2).ToArray());
            await g.Write(fields[15], rows.Select(r => Cost(r.Batching, r.Seqs)).ToArray());
            await g.Write(fields[16], rows.Select(r => r.Batching == "chunked_prefill").ToArray());
        });
        File.WriteAllText(Path.Combine(dir, "sweep.json"), JsonSerializer.Serialize(new
        {
            schema = "rlms-sweep/v1", name = "capacity-test", configurations = id, seeds = new[] { 1, 2 },
            axes = new[] { "scheduler.batching", "scheduler.max_num_seqs" }, pareto_latency = "p99_ttft_ms",
        }));
        return dir;
    }

    /// <summary>
    /// A capacity sweep over GPU types whose answers span a factor of 32 in GPUs and about 100 in cost (one outlier),
    /// one configuration not converged: what the charts must still show readably.
    /// </summary>
    public static string WriteSkewedCapacitySweep()
    {
        var dir = RlmsProcess.TempDir();
        string[] gpus = ["B200", "H200", "H100", "A100"];
        double[] needed = [2, 4, 8, 64], cost = [0.367825, 0.9, 1.7, 38.2], ttft = [900, 700, 500, 300];
        bool[] converged = [true, true, true, false];
        var fields = new DataField[]
        {
            new DataField<int>("config_id"), new DataField<long>("seed"), new DataField<string>("hardware.gpu"), new DataField<double>("p99_ttft_ms"),
            new DataField<double>("capacity.gpus_for_target"), new DataField<double>("cost.usd_per_million_tokens"), new DataField<bool>("capacity.converged"),
        };
        WriteParquet(Path.Combine(dir, "results.parquet"), fields, async g =>
        {
            await g.Write(fields[0], new[] { 0, 1, 2, 3 });
            await g.Write(fields[1], new[] { 1L, 1L, 1L, 1L });
            await g.WriteStrings(fields[2], gpus.Select(x => (string?)x).ToArray());
            await g.Write(fields[3], ttft);
            await g.Write(fields[4], needed);
            await g.Write(fields[5], cost);
            await g.Write(fields[6], converged);
        });
        File.WriteAllText(Path.Combine(dir, "sweep.json"), JsonSerializer.Serialize(new
        {
            schema = "rlms-sweep/v1", name = "skewed", configurations = 4, seeds = new[] { 1 },
            axes = new[] { "hardware.gpu" }, pareto_latency = "p99_ttft_ms",
        }));
        return dir;
    }

    /// <summary>A plain grid over arrival rate x GPU (no sweep.json, no capacity search): axes come from the columns.</summary>
    public static string WriteRateSweepWithoutManifest()
    {
        var dir = RlmsProcess.TempDir();
        double[] rates = [1, 2, 4, 8];
        string[] gpus = ["A100-SXM-80G", "H100-SXM-80G"];
        var rows = rates.SelectMany(r => gpus.Select(g => (Rate: r, Gpu: g))).ToList();
        var fields = new DataField[]
        {
            new DataField<int>("config_id"), new DataField<long>("seed"), new DataField<double>("workload.arrival.rate"), new DataField<string>("hardware.gpu"),
            new DataField<double>("p99_ttft_ms"), new DataField<double>("mean_tpot_ms"), new DataField<double>("request_throughput"),
            new DataField<int>("replicas"), new DataField<int>("tensor_parallel"), new DataField<double>("output_throughput"),
        };
        WriteParquet(Path.Combine(dir, "results.parquet"), fields, async g =>
        {
            await g.Write(fields[0], rows.Select((_, i) => i).ToArray());
            await g.Write(fields[1], rows.Select(_ => 42L).ToArray());
            await g.Write(fields[2], rows.Select(r => r.Rate).ToArray());
            await g.WriteStrings(fields[3], rows.Select(r => (string?)r.Gpu).ToArray());
            await g.Write(fields[4], rows.Select(r => (r.Gpu.StartsWith("A") ? 300 : 150) * Math.Exp(r.Rate / 3)).ToArray());
            await g.Write(fields[5], rows.Select(r => (r.Gpu.StartsWith("A") ? 30 : 18) + r.Rate).ToArray());
            await g.Write(fields[6], rows.Select(r => r.Rate * 0.98).ToArray());
            await g.Write(fields[7], rows.Select(_ => 2).ToArray());
            await g.Write(fields[8], rows.Select(_ => 1).ToArray());
            await g.Write(fields[9], rows.Select(r => r.Rate * 900).ToArray());
        });
        return dir;
    }

    private static void WriteParquet(string path, DataField[] fields, Func<ParquetRowGroupWriter, Task> write)
    {
        Task.Run(async () =>
        {
            await using var stream = File.Create(path);
            await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream);
            using var g = writer.CreateRowGroup();
            await write(g);
        }).GetAwaiter().GetResult();
    }
}
