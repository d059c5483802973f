using MathNet.Numerics.Distributions;

namespace RLMServing.Workloads.ServeGen;

/// <summary>
/// One row of a ServeGen <c>chunk-N-trace.csv</c>: the arrival process of one client in one window (600 s).
/// <see cref="Distribution"/> is "Gamma" (shape, scale), "Weibull" (shape, scale) or null (no fitted distribution).
/// </summary>
public sealed record RateWindow(double StartS, double RateRps, double Cv, string? Distribution, double Param1, double Param2);

/// <summary>
/// One window of a ServeGen <c>chunk-N-dataset.json</c>: the input-length, output-length and reason-ratio
/// distributions of one client. Empty distributions mean the client sent nothing in that window.
/// </summary>
public sealed record LengthWindow(double StartS, DiscretePdf InputTokens, DiscretePdf OutputTokens, DiscretePdf? ReasonRatio)
{
    public bool IsEmpty => InputTokens.IsEmpty || OutputTokens.IsEmpty;
}

/// <summary>One anonymised ServeGen client: its per-window arrival process and length distributions.</summary>
public sealed record ServeGenClient(string Id, IReadOnlyList<RateWindow> RateWindows, IReadOnlyList<LengthWindow> LengthWindows);

/// <summary>A generated request; thinking is null when the source has no reason ratio.</summary>
public readonly record struct GeneratedRequest(double ArrivalTimeS, string ClientId, int PromptTokens, int OutputTokens, int? ThinkingTokens);

/// <summary>
/// Samples a request stream from ServeGen client data. For each client and each rate window, inter-arrival times are
/// drawn from the window's fitted distribution (Gamma or Weibull; exponential when none is given) and rescaled so
/// their mean is 1 / rate, which keeps the fitted burstiness (CV) and matches the window's rate. Each arrival takes
/// its lengths from the client's length window that contains it: prompt and output from their PDFs, thinking =
/// round(output × reason_ratio). Clients are merged by arrival time. Times beyond one day wrap around the day.
/// Deterministic: each client draws from its own <see cref="Random"/> derived from the seed and the client's position.
/// </summary>
public sealed class ServeGenGenerator
{
    public const double DaySeconds = 86400;

    private readonly IReadOnlyList<ServeGenClient> _clients;
    private readonly int _seed;
    private readonly double _startS;
    private readonly double _durationS;

    public ServeGenGenerator(IReadOnlyList<ServeGenClient> clients, int seed, double startS, double durationS)
    {
        if (clients.Count == 0) throw new UserInputException("servegen: no clients to generate from");
        if (!(durationS > 0) || double.IsInfinity(durationS)) throw new UserInputException($"servegen: duration must be a positive number of seconds, got {durationS}");
        if (!(startS >= 0) || double.IsInfinity(startS)) throw new UserInputException($"servegen: start must be zero or positive, got {startS}");
        _clients = clients;
        _seed = seed;
        _startS = startS;
        _durationS = durationS;
    }

    /// <summary>Requests in arrival order; arrival times are relative to the start (the first window begins at 0).</summary>
    public IEnumerable<GeneratedRequest> Generate()
    {
        var queue = new PriorityQueue<IEnumerator<GeneratedRequest>, (double, int)>();
        var streams = new List<IEnumerator<GeneratedRequest>>();
        try
        {
            for (int i = 0; i < _clients.Count; i++)
            {
                var e = ClientStream(_clients[i], new Random(DeriveSeed(_seed, i))).GetEnumerator();
                streams.Add(e);
                if (e.MoveNext()) queue.Enqueue(e, (e.Current.ArrivalTimeS, i));
            }
            while (queue.TryDequeue(out var e, out var key))
            {
                yield return e.Current;
                if (e.MoveNext()) queue.Enqueue(e, (e.Current.ArrivalTimeS, key.Item2));
            }
        }
        finally
        {
            foreach (var e in streams) e.Dispose();
        }
    }

    private IEnumerable<GeneratedRequest> ClientStream(ServeGenClient client, Random random)
    {
        var rates = client.RateWindows.OrderBy(w => w.StartS).ToArray();
        var lengths = client.LengthWindows.OrderBy(w => w.StartS).Where(w => !w.IsEmpty).ToArray();
        if (rates.Length == 0 || lengths.Length == 0) yield break;
        double windowS = rates.Length > 1 ? rates[1].StartS - rates[0].StartS : DaySeconds;
        if (!(windowS > 0)) yield break;
        double end = _startS + _durationS;
        double windowStart = Math.Floor(_startS / windowS) * windowS;
        for (; windowStart < end; windowStart += windowS)
        {
            var rate = Lookup(rates, windowStart % DaySeconds);
            if (rate is null || !(rate.RateRps > 0)) continue;
            double meanIat = 1.0 / rate.RateRps;
            double t = windowStart;
            while (true)
            {
                t += SampleInterArrival(rate, meanIat, random);
                if (t >= windowStart + windowS || t >= end) break;
                if (t < _startS) continue;
                var window = Lookup(lengths, t % DaySeconds) ?? lengths[^1];
                int prompt = (int)Math.Round(window.InputTokens.Sample(random));
                int output = (int)Math.Round(window.OutputTokens.Sample(random));
                int? thinking = null;
                if (window.ReasonRatio is { IsEmpty: false } ratio)
                    thinking = (int)Math.Round(output * Math.Clamp(ratio.Sample(random), 0, 1));
                yield return new GeneratedRequest(t - _startS, client.Id, prompt, output, thinking);
            }
        }
    }

    private static double SampleInterArrival(RateWindow rate, double meanIat, Random random)
    {
        // The fitted distribution gives the shape (burstiness); rescaling to the window's mean gives the rate.
        switch (rate.Distribution)
        {
            case "Gamma" when rate.Param1 > 0 && rate.Param2 > 0:
            {
                double x = Gamma.Sample(random, rate.Param1, 1.0 / rate.Param2);
                return x * meanIat / (rate.Param1 * rate.Param2);
            }
            case "Weibull" when rate.Param1 > 0 && rate.Param2 > 0:
            {
                double x = Weibull.Sample(random, rate.Param1, rate.Param2);
                double mean = rate.Param2 * MathNet.Numerics.SpecialFunctions.Gamma(1 + 1 / rate.Param1);
                return x * meanIat / mean;
            }
            default:
                return -Math.Log(1.0 - random.NextDouble()) * meanIat;
        }
    }

    private static T? Lookup<T>(T[] windows, double timeOfDayS) where T : class
    {
        T? found = null;
        foreach (var w in windows)
        {
            double start = w switch { RateWindow r => r.StartS, LengthWindow l => l.StartS, _ => 0 };
            if (start <= timeOfDayS) found = w; else break;
        }
        return found;
    }

    private static int DeriveSeed(int seed, int index)
    {
        // SplitMix64 of (seed, index): independent, reproducible per-client streams.
        ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xBF58476D1CE4E5B9UL + 0x94D049BB133111EBUL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
