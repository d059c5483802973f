using System.Globalization;
using RLMServing.IO.Traces;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Importers;

/// <summary>
/// Vidur (sarathi-serve profiler) operator profiles: compute/&lt;gpu&gt;/&lt;org&gt;/&lt;model&gt;/mlp.csv (one layer's
/// non-attention ops against num_tokens and tensor parallelism) and network/&lt;topology&gt;/{all_reduce,send_recv}.csv
/// (NCCL collectives against message size). Times in the source are milliseconds; rows store microseconds.
/// </summary>
internal sealed class VidurProfileImporter : GpuProfileImporterBase
{
    public const string Commit = "7d47513363ec447a741ac5e47241580b47724fbf";

    public override string Format => "vidur-profile";
    public override string Description => "Vidur compute (mlp.csv) and network (all_reduce/send_recv.csv) profiles -> operator rows (µs)";

    /// <summary>Vidur's op names onto the canonical names of the operator schema.</summary>
    public static readonly IReadOnlyDictionary<string, string> OpNames = new Dictionary<string, string>
    {
        ["emb"] = "embedding",
        ["input_layernorm"] = "rmsnorm",
        ["attn_pre_proj"] = "qkv_proj",
        ["attn_rope"] = "rotary",
        ["attn_post_proj"] = "o_proj",
        ["post_attention_layernorm"] = "rmsnorm",
        ["mlp_up_proj"] = "gate_up_proj",
        ["mlp_act"] = "act",
        ["mlp_down_proj"] = "down_proj",
        ["add"] = "add",
    };

    private static readonly string[] ShapeColumns = ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp"];

    public override ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        Require(inputPath);
        var files = Files(inputPath, "*.csv").ToList();
        var skipped = new List<long>();
        var lines = new List<Func<IEnumerable<OperatorRow>>>();
        foreach (var file in files)
        {
            var table = new CsvTable(file);
            if (table.Has("num_tokens")) lines.AddRange(Compute(table, file));
            else if (table.Has("collective")) lines.AddRange(Network(table, file));
            else throw new UserInputException($"{file}: neither a Vidur mlp.csv (num_tokens) nor a network csv (collective)");
        }
        var rows = Collect(lines, options, skipped);
        WriteAtomically(outputPath, rows, Metadata(CommandFor(inputPath, outputPath), "operator", "vidur", Commit, "MIT (c) Microsoft Corporation; https://github.com/microsoft/vidur",
            files.Select(f => RelativeName(inputPath, f)), "ms->us (x1000); size in bytes unchanged", dtype: "fp16"));
        return new ImportResult(rows.Count, skipped.Count, skipped, "operator");
    }

    /// <summary>The GPU folder (a100, h100) and org/model from compute/&lt;gpu&gt;/&lt;org&gt;/&lt;model&gt;/mlp.csv.</summary>
    private static (string Gpu, string Model) ComputeIdentity(string file)
    {
        var parts = Path.GetFullPath(file).Split(Path.DirectorySeparatorChar);
        int n = parts.Length;
        return n >= 4 ? (parts[n - 4], $"{parts[n - 3]}/{parts[n - 2]}") : ("", "");
    }

    private static IEnumerable<Func<IEnumerable<OperatorRow>>> Compute(CsvTable t, string file)
    {
        var (gpu, model) = ComputeIdentity(file);
        var ops = t.Header.Where(h => h.StartsWith("time_stats.", StringComparison.Ordinal) && h.EndsWith(".median", StringComparison.Ordinal))
            .Select(h => h["time_stats.".Length..^".median".Length]).ToList();
        foreach (var (line, cells) in t.Rows())
        {
            yield return () =>
            {
                var shape = string.Join(";", ShapeColumns.Where(t.Has).Select(c => $"{c}={Str(t, cells, c)}"));
                long tokens = (long)Num(t, cells, "num_tokens", line);
                int tp = (int)Num(t, cells, "num_tensor_parallel_workers", line);
                var rows = new List<OperatorRow>();
                foreach (var op in ops)
                {
                    var median = NumOrNull(t, cells, $"time_stats.{op}.median");
                    if (median is null) continue;
                    double mean = Num(t, cells, $"time_stats.{op}.mean", line);
                    double std = Num(t, cells, $"time_stats.{op}.std", line);
                    double cv = mean > 0 ? std / mean : 0;
                    rows.Add(new OperatorRow
                    {
                        Source = "vidur",
                        Device = gpu,
                        Model = model,
                        Dtype = "fp16",
                        Op = OpNames.GetValueOrDefault(op, op),
                        SourceOp = op,
                        Tp = tp,
                        Tokens = tokens,
                        TimeUsMin = Num(t, cells, $"time_stats.{op}.min", line) * UsPerMs,
                        TimeUsMedian = median.Value * UsPerMs,
                        TimeUsMean = mean * UsPerMs,
                        TimeUsStd = std * UsPerMs,
                        TimeUsMax = Num(t, cells, $"time_stats.{op}.max", line) * UsPerMs,
                        Cv = cv,
                        Unstable = cv > 0.10,
                        Extra = shape,
                    });
                }
                return rows;
            };
        }
    }

    private static IEnumerable<Func<IEnumerable<OperatorRow>>> Network(CsvTable t, string file)
    {
        var topology = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(file))) ?? "";
        foreach (var (line, cells) in t.Rows())
        {
            yield return () =>
            {
                var op = Str(t, cells, "collective");
                double mean = Num(t, cells, $"time_stats.{op}.mean", line);
                double std = Num(t, cells, $"time_stats.{op}.std", line);
                double cv = mean > 0 ? std / mean : 0;
                return
                [
                    new OperatorRow
                    {
                        Source = "vidur",
                        Device = topology,
                        Op = op,
                        SourceOp = op,
                        Tp = (int)Num(t, cells, "num_workers", line),
                        Workers = (int)Num(t, cells, "num_workers", line),
                        SizeBytes = (long)Num(t, cells, "size", line),
                        TimeUsMin = Num(t, cells, $"time_stats.{op}.min", line) * UsPerMs,
                        TimeUsMedian = Num(t, cells, $"time_stats.{op}.median", line) * UsPerMs,
                        TimeUsMean = mean * UsPerMs,
                        TimeUsStd = std * UsPerMs,
                        TimeUsMax = Num(t, cells, $"time_stats.{op}.max", line) * UsPerMs,
                        Cv = cv,
                        Unstable = cv > 0.10,
                        Extra = string.Create(CultureInfo.InvariantCulture,
                            $"devices_per_node={Str(t, cells, "devices_per_node")};max_devices_per_node={Str(t, cells, "max_devices_per_node")};rank={Str(t, cells, "rank")}"),
                    },
                ];
            };
        }
    }
}
