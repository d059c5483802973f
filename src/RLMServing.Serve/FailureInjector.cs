namespace RLMServing.Serve;

/// <summary>
/// Picks the requests that fail on purpose (--failure-injection-rate, --failure-types), from a seeded stream so a
/// run's failures are reproducible: request k fails, or not, the same way every time.
/// </summary>
public sealed class FailureInjector(double rate, IReadOnlyList<FailureType> types, int seed)
{
    private readonly Random _random = new(seed);
    private readonly object _lock = new();

    /// <summary>The failure for the next request and, for an abort, the share of its output sent before the cut; null: none.</summary>
    public (FailureType Type, double AbortAt)? Next()
    {
        if (rate <= 0) return null;
        lock (_lock)
        {
            double u = _random.NextDouble();
            var type = types[_random.Next(types.Count)];
            double at = _random.NextDouble();
            return u < rate ? (type, at) : null;
        }
    }
}
