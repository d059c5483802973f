using RLMServing.IO.Results;
using RLMServing.IO.Traces;
using RLMServing.Metrics;

namespace RLMServing.IO.Runs;

/// <summary>One request of a measured run: its size and its times in seconds on the run's own clock.</summary>
public readonly record struct MeasuredRequest(double ArrivalS, int PromptTokens, int OutputTokens, double FirstTokenS, double CompletionS,
    double? ScheduledS = null);

/// <summary>
/// A measured serving run read from a benchmark's files: the requests in arrival order and what the files say about
/// the engine that served them (<c>rlms.run.*</c> keys: engine, version, model, settings).
/// </summary>
public sealed record MeasuredRun(IReadOnlyList<MeasuredRequest> Requests, IReadOnlyDictionary<string, string> Metadata)
{
    public const string TraceFile = "trace.parquet";
    public const string RequestsFile = "requests.parquet";

    /// <summary>
    /// The request trace the run served (arrivals rebased so the first is at 0, prompt and output tokens) and the
    /// measured requests in the simulator's schema; ids are the arrival order, as a trace replay numbers them, so
    /// <c>rlms validate</c> pairs each measured request with its simulated twin.
    /// </summary>
    public IReadOnlyList<RequestRecord> Records()
    {
        double first = Requests.Count > 0 ? Requests[0].ArrivalS : 0;
        return Requests.Select((r, i) => new RequestRecord(i, r.ArrivalS - first, r.PromptTokens, r.OutputTokens, 0, RequestStatus.Completed,
            (r.ScheduledS ?? r.ArrivalS) - first, r.FirstTokenS - first, r.FirstTokenS - first, r.CompletionS - first, 0, 0, null, false)).ToList();
    }

    /// <summary>Writes DIR/trace.parquet and DIR/requests.parquet, each to a temporary file moved into place only when both are written.</summary>
    public void Write(string dir, string format, string source)
    {
        Directory.CreateDirectory(dir);
        var records = Records();
        var traceTmp = Path.Combine(dir, $".{TraceFile}.{Environment.ProcessId}.tmp");
        var requestsTmp = Path.Combine(dir, $".{RequestsFile}.{Environment.ProcessId}.tmp");
        try
        {
            using (var writer = new RequestTraceWriter(traceTmp))
            {
                foreach (var r in records) writer.Write(new RequestTraceRow(r.ArrivalTimeS, r.PromptTokens, r.OutputTokens));
                writer.Complete(new Dictionary<string, string>(Metadata)
                {
                    [RequestTraceSchema.KeySourceFormat] = format,
                    [RequestTraceSchema.KeySourceFile] = source,
                });
            }
            var requestMeta = new Dictionary<string, string>(Metadata)
            {
                ["rlms.schema"] = "requests/v1",
                ["rlms.source"] = "measured:" + format,
                ["rlms.source_file"] = source,
            };
            ResultWriter.WriteRequestsAsync(requestsTmp, records, requestMeta).GetAwaiter().GetResult();
            File.Move(traceTmp, Path.Combine(dir, TraceFile), overwrite: true);
            File.Move(requestsTmp, Path.Combine(dir, RequestsFile), overwrite: true);
        }
        finally
        {
            if (File.Exists(traceTmp)) File.Delete(traceTmp);
            if (File.Exists(requestsTmp)) File.Delete(requestsTmp);
        }
    }
}
