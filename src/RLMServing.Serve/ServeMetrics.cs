using System.Globalization;
using System.Text;
using RLMServing.Serve.Engine;

namespace RLMServing.Serve;

/// <summary>
/// /metrics in the Prometheus text exposition format (version 0.0.4) under vLLM's metric names and buckets
/// (vllm/v1/metrics/loggers.py, PrometheusStatLogger), for what the served engine models: requests running and
/// waiting, KV-cache usage, preemptions, prompt and generation tokens, finished requests by reason, and the TTFT,
/// inter-token and end-to-end latency histograms. Labels as vLLM's: model_name and engine. Times are the engine's
/// seconds (the twin's simulated seconds).
/// </summary>
/// <remarks>
/// Written here rather than with prometheus-net: that library refuses the colon in vLLM's names (its name pattern
/// is the one without the colon Prometheus reserves for recording rules, which vLLM uses anyway).
/// </remarks>
public sealed class ServeMetrics : ILiveObserver
{
    // vLLM's buckets (loggers.py): TTFT; the per-token pair (time_per_output_token / inter_token_latency); request latency.
    internal static readonly double[] TtftBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    internal static readonly double[] TokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    internal static readonly double[] RequestBuckets = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];
    private static readonly string[] Reasons = ["stop", "length", "abort"];

    private readonly object _lock = new();
    private readonly string _labels;
    private LiveGauges _gauges;
    private long _promptTokens, _generationTokens;
    private readonly long[] _finished = new long[Reasons.Length];
    private readonly Histogram _ttft = new(TtftBuckets), _itl = new(TokenBuckets), _e2e = new(RequestBuckets);

    public ServeMetrics(string modelName)
    {
        string escaped = modelName.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
        _labels = $"model_name=\"{escaped}\",engine=\"0\"";
    }

    public void Gauges(LiveGauges g)
    {
        lock (_lock) _gauges = g;
    }

    public void FirstToken(double ttftS, int promptTokens)
    {
        lock (_lock)
        {
            _ttft.Observe(ttftS);
            _promptTokens += promptTokens;
        }
    }

    public void Tokens(int count, double? interTokenS)
    {
        lock (_lock)
        {
            _generationTokens += count;
            if (interTokenS is { } itl) _itl.Observe(itl);
        }
    }

    public void Finished(LiveRequest request, LiveOutcome outcome)
    {
        int reason = outcome.Finish switch { LiveFinish.Stop => 0, LiveFinish.Length => 1, LiveFinish.Cancelled => 2, _ => -1 };
        if (reason < 0) return;
        lock (_lock)
        {
            _finished[reason]++;
            if (outcome.Finish != LiveFinish.Cancelled && request.Sim.CompletionS is { } done) _e2e.Observe(done - request.ArrivalS);
        }
    }

    /// <summary>The exposition text.</summary>
    public string Text()
    {
        var sb = new StringBuilder(8192);
        lock (_lock)
        {
            Single(sb, "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", _gauges.Running);
            Single(sb, "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", _gauges.Waiting);
            Single(sb, "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", _gauges.KvUsage);
            Single(sb, "vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.", _gauges.Preemptions);
            Single(sb, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", _promptTokens);
            Single(sb, "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", _generationTokens);
            Header(sb, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
            for (int i = 0; i < Reasons.Length; i++)
                sb.Append("vllm:request_success_total{").Append(_labels).Append(",finished_reason=\"").Append(Reasons[i]).Append("\"} ").Append(Num(_finished[i])).Append('\n');
            _ttft.Write(sb, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", _labels);
            _itl.Write(sb, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", _labels);
            _e2e.Write(sb, "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", _labels);
        }
        return sb.ToString();
    }

    private void Single(StringBuilder sb, string name, string type, string help, double value)
    {
        Header(sb, name, type, help);
        sb.Append(name).Append('{').Append(_labels).Append("} ").Append(Num(value)).Append('\n');
    }

    private static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static string Num(double v) => double.IsPositiveInfinity(v) ? "+Inf" : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A cumulative histogram: counts per upper bound, their sum and count.</summary>
    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1];
        private double _sum;
        private long _count;

        public void Observe(double v)
        {
            int i = Array.BinarySearch(bounds, v);
            _counts[i >= 0 ? i : ~i]++;
            _sum += v;
            _count++;
        }

        public void Write(StringBuilder sb, string name, string help, string labels)
        {
            Header(sb, name, "histogram", help);
            long cumulative = 0;
            for (int i = 0; i <= bounds.Length; i++)
            {
                cumulative += _counts[i];
                string le = i < bounds.Length ? Num(bounds[i]) : "+Inf";
                sb.Append(name).Append("_bucket{").Append(labels).Append(",le=\"").Append(le).Append("\"} ").Append(Num(cumulative)).Append('\n');
            }
            sb.Append(name).Append("_sum{").Append(labels).Append("} ").Append(Num(_sum)).Append('\n');
            sb.Append(name).Append("_count{").Append(labels).Append("} ").Append(Num(_count)).Append('\n');
        }
    }
}
