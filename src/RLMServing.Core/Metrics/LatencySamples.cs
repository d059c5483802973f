namespace RLMServing.Metrics;

/// <summary>
/// The sorted per-request latencies of a set of rows (completed rows only; TPOT and TTFAT where defined; service time
/// = first schedule to completion). Built once with the summary and carried along, so completing the summary does
/// not gather and sort the same 100k values again. Equal when the values are equal, like the record it travels in.
/// </summary>
public sealed class LatencySamples : IEquatable<LatencySamples>
{
    public LatencySamples(int count, int completed, List<double> ttft, List<double> tpot, List<double> e2el, List<double> ttfat, List<double> service)
    {
        Count = count;
        Completed = completed;
        Ttft = Percentiles.Sorted(ttft);
        Tpot = Percentiles.Sorted(tpot);
        E2el = Percentiles.Sorted(e2el);
        Ttfat = Percentiles.Sorted(ttfat);
        ServiceS = Percentiles.Sorted(service);
    }

    /// <summary>Rows in the set, completed or not.</summary>
    public int Count { get; }
    public int Completed { get; }
    public double[] Ttft { get; }
    public double[] Tpot { get; }
    public double[] E2el { get; }
    public double[] Ttfat { get; }
    public double[] ServiceS { get; }

    /// <summary>The sorted values of a metric by its key name (ttft, tpot, e2el, ttfat).</summary>
    public double[] Of(string metric) => metric switch
    {
        "ttft" => Ttft,
        "tpot" => Tpot,
        "e2el" => E2el,
        "ttfat" => Ttfat,
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "a per-request latency metric: ttft, tpot, e2el or ttfat"),
    };

    /// <summary>Every row.</summary>
    public static LatencySamples All(IReadOnlyList<RequestRecord> records) =>
        Arriving(records, double.NegativeInfinity, double.PositiveInfinity);

    /// <summary>The rows whose arrival lies in [<paramref name="fromS"/>, <paramref name="toS"/>].</summary>
    public static LatencySamples Arriving(IReadOnlyList<RequestRecord> records, double fromS, double toS)
    {
        var ttft = new List<double>(records.Count); var tpot = new List<double>(records.Count); var e2el = new List<double>(records.Count);
        var ttfat = new List<double>(records.Count); var service = new List<double>(records.Count);
        int count = 0, completed = 0;
        foreach (var r in records)
        {
            if (!(r.ArrivalTimeS >= fromS && r.ArrivalTimeS <= toS)) continue;
            count++;
            if (r.Status != RequestStatus.Completed) continue;
            completed++;
            ttft.Add(r.TtftMs!.Value);
            if (r.TpotMs is { } t) tpot.Add(t);
            e2el.Add(r.E2elMs!.Value);
            if (r.TtfatMs is { } a) ttfat.Add(a);
            if (r.FirstScheduledTimeS is { } f) service.Add(r.CompletionTimeS!.Value - f);
        }
        return new LatencySamples(count, completed, ttft, tpot, e2el, ttfat, service);
    }

    public bool Equals(LatencySamples? other) =>
        other is not null && Count == other.Count && Completed == other.Completed
        && Ttft.AsSpan().SequenceEqual(other.Ttft) && Tpot.AsSpan().SequenceEqual(other.Tpot) && E2el.AsSpan().SequenceEqual(other.E2el)
        && Ttfat.AsSpan().SequenceEqual(other.Ttfat) && ServiceS.AsSpan().SequenceEqual(other.ServiceS);

    public override bool Equals(object? obj) => Equals(obj as LatencySamples);
    public override int GetHashCode() => HashCode.Combine(Count, Completed, Ttft.Length, E2el.Length);
}
