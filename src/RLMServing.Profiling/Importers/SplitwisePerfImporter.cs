using System.Globalization;
using RLMServing.IO.Traces;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Importers;

/// <summary>
/// SplitwiseSim's perf_model.csv: measured prompt (prefill) and per-token (decode) times of whole models on DGX
/// A100/H100 by batch size, prompt size and output tokens. Each source line becomes two iteration rows: the prefill
/// step (step 0) and a representative decode step (step 1, context = prompt + half the output tokens, the mean KV
/// length while decoding). Times ms -> µs; power columns are normalised and unitless, copied as they are.
/// </summary>
internal sealed class SplitwisePerfImporter : GpuProfileImporterBase
{
    public const string Commit = "8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0";

    public override string Format => "splitwise-perf";
    public override string Description => "SplitwiseSim perf_model.csv -> iteration rows (prefill + decode per line, µs)";

    public override ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        Require(inputPath);
        var file = Directory.Exists(inputPath) ? Path.Combine(inputPath, "perf_model.csv") : inputPath;
        if (!File.Exists(file)) throw new UserInputException($"{file}: not found");
        var t = new CsvTable(file);
        var lines = t.Rows().Select(x => (Func<IEnumerable<IterationRow>>)(() => Rows(t, x.Line, x.Cells))).ToList();
        var skipped = new List<long>();
        var rows = Collect(lines, options, skipped);
        WriteAtomically(outputPath, rows, Metadata(CommandFor(inputPath, outputPath), "iteration", "splitwise", Commit,
            "MIT (c) 2024 Pratyush Patel; https://github.com/Mutinifni/splitwise-sim", ["perf_model.csv"],
            "prompt_time, token_time, e2e_time ms->us (x1000); power unitless", dtype: "fp16"));
        return new ImportResult(rows.Count, skipped.Count, skipped, "iteration");
    }

    private static IEnumerable<IterationRow> Rows(CsvTable t, long line, string[] cells)
    {
        var model = Str(t, cells, "model");
        var hw = Str(t, cells, "hardware");
        int tp = (int)Num(t, cells, "tensor_parallel", line);
        int batch = (int)Num(t, cells, "batch_size", line);
        long prompt = (long)Num(t, cells, "prompt_size", line);
        long tokens = (long)Num(t, cells, "token_size", line);
        double e2e = Num(t, cells, "e2e_time", line) * UsPerMs;
        double peak = Num(t, cells, "peak_power", line), avg = Num(t, cells, "average_power", line);
        IterationRow Make(int step, string phase, long fresh, long context, double timeUs, string extra) => new()
        {
            Source = "splitwise", Device = hw, Model = model, Dtype = "fp16", Tp = tp, Batch = batch, PromptTokens = prompt,
            Step = step, Phase = phase, NewTokens = fresh, Context = context, KvMode = "", TimeUsMedian = timeUs,
            TokensPerS = timeUs > 0 ? batch * fresh / (timeUs * 1e-6) : null,
            E2eTimeUs = e2e, DecodeTokens = tokens, PeakPower = peak, AveragePower = avg, Extra = extra,
        };
        return
        [
            Make(0, "prefill", prompt, prompt, Num(t, cells, "prompt_time", line) * UsPerMs, $"line={line}"),
            Make(1, "decode", 1, prompt + tokens / 2, Num(t, cells, "token_time", line) * UsPerMs,
                string.Create(CultureInfo.InvariantCulture, $"line={line};context=mean over {tokens} decode steps")),
        ];
    }
}
