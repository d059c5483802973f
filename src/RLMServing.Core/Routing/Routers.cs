using RLMServing.Scenarios;
using RLMServing.Workloads;

namespace RLMServing.Routing;

/// <summary>What a router may read of a replica when a request arrives.</summary>
public interface IReplicaLoad
{
    /// <summary>Requests routed to the replica that have not finished (queued, waiting or running).</summary>
    int Outstanding { get; }

    /// <summary>KV blocks in use plus the prompt blocks of requests routed there and not admitted yet.</summary>
    long KvDemandBlocks { get; }

    long CapacityBlocks { get; }
}

/// <summary>Picks the replica for each arriving request; every request is routed exactly once.</summary>
public interface IRouter
{
    /// <summary>False when the choice ignores replica state (then replicas can run independently).</summary>
    bool StateDependent { get; }

    int Route(RequestSpec request, IReadOnlyList<IReplicaLoad> replicas);
}

/// <summary>The router registry: scenario names to implementations.</summary>
public static class Routers
{
    /// <summary><paramref name="seed"/> is the routing stream's seed; <paramref name="balanceThreshold"/> bounds prefix affinity's load imbalance.</summary>
    public static IRouter Create(RouterKind kind, int seed, int balanceThreshold = 32) => kind switch
    {
        RouterKind.RoundRobin => new RoundRobinRouter(),
        RouterKind.Random => new RandomRouter(seed),
        RouterKind.LeastOutstanding => new LeastOutstandingRouter(),
        RouterKind.LeastKv => new LeastKvRouter(),
        RouterKind.PowerOfTwo => new PowerOfTwoRouter(seed),
        RouterKind.PrefixAffinity => new PrefixAffinityRouter(balanceThreshold),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown router"),
    };

    public static double KvLoad(IReplicaLoad r) => (double)r.KvDemandBlocks / Math.Max(1, r.CapacityBlocks);
}

/// <summary>Request i goes to replica i mod R.</summary>
public sealed class RoundRobinRouter : IRouter
{
    private long _next;
    public bool StateDependent => false;
    public int Route(RequestSpec request, IReadOnlyList<IReplicaLoad> replicas) => (int)(_next++ % replicas.Count);
}

/// <summary>A uniformly random replica from the seeded routing stream.</summary>
public sealed class RandomRouter(int seed) : IRouter
{
    private readonly Random _rng = new(seed);
    public bool StateDependent => false;
    public int Route(RequestSpec request, IReadOnlyList<IReplicaLoad> replicas) => _rng.Next(replicas.Count);
}

/// <summary>
/// The replica with the lowest score; ties go to the first in a rotating order, so equally loaded replicas
/// (an idle cluster, a burst arriving at one instant) share the work instead of piling onto replica 0.
/// </summary>
public abstract class ScoringRouter : IRouter
{
    private long _rotation;
    public bool StateDependent => true;

    protected abstract double Score(IReplicaLoad replica);

    public virtual int Route(RequestSpec request, IReadOnlyList<IReplicaLoad> replicas) => Least(replicas, Enumerable.Range(0, replicas.Count).ToList());

    protected int Least(IReadOnlyList<IReplicaLoad> replicas, IReadOnlyList<int> candidates)
    {
        int start = (int)(_rotation++ % candidates.Count);
        int best = candidates[start];
        double bestScore = Score(replicas[best]);
        for (int i = 1; i < candidates.Count; i++)
        {
            int c = candidates[(start + i) % candidates.Count];
            double s = Score(replicas[c]);
            if (s < bestScore) { best = c; bestScore = s; }
        }
        return best;
    }
}

/// <summary>Fewest unfinished requests (join-the-shortest-queue; vLLM production-stack's and SGLang's load balancing).</summary>
public sealed class LeastOutstandingRouter : ScoringRouter
{
    protected override double Score(IReplicaLoad replica) => replica.Outstanding;
}

/// <summary>Lowest KV demand as a fraction of the replica's KV capacity (heterogeneous replicas compare fairly).</summary>
public sealed class LeastKvRouter : ScoringRouter
{
    protected override double Score(IReplicaLoad replica) => Routers.KvLoad(replica);
}

/// <summary>Power of two choices (Mitzenmacher): two distinct replicas drawn at random, the one with fewer unfinished requests wins.</summary>
public sealed class PowerOfTwoRouter(int seed) : IRouter
{
    private readonly Random _rng = new(seed);
    public bool StateDependent => true;

    public int Route(RequestSpec request, IReadOnlyList<IReplicaLoad> replicas)
    {
        int n = replicas.Count;
        if (n == 1) return 0;
        int a = _rng.Next(n), b = _rng.Next(n - 1);
        if (b >= a) b++;
        var (ra, rb) = (replicas[a], replicas[b]);
        if (ra.Outstanding != rb.Outstanding) return ra.Outstanding < rb.Outstanding ? a : b;
        return Routers.KvLoad(rb) < Routers.KvLoad(ra) ? b : a;
    }
}

/// <summary>
/// Cache-aware routing in the manner of SGLang's router: the router keeps, per replica, an approximate LRU set of
/// the prefix units (hash ids) it sent there, sends a request to the replica matching the longest leading run of
/// its units, and falls back to the least-outstanding replica when nothing matches or when the match would leave
/// that replica more than <c>balance_threshold</c> requests above the least loaded one.
/// </summary>
public sealed class PrefixAffinityRouter(int balanceThreshold) : ScoringRouter
{
    private const int MaxUnitsPerReplica = 1 << 20;
    private readonly List<(Dictionary<long, LinkedListNode<long>> Map, LinkedList<long> Lru)> _seen = new();

    protected override double Score(IReplicaLoad replica) => replica.Outstanding;

    public override int Route(RequestSpec request, IReadOnlyList<IReplicaLoad> replicas)
    {
        while (_seen.Count < replicas.Count) _seen.Add((new Dictionary<long, LinkedListNode<long>>(), new LinkedList<long>()));
        var units = request.PrefixHashes;
        int target;
        if (units is null || units.Length == 0) target = base.Route(request, replicas);
        else
        {
            int best = 0;
            var candidates = new List<int>();
            for (int i = 0; i < replicas.Count; i++)
            {
                int m = 0;
                while (m < units.Length && _seen[i].Map.ContainsKey(units[m])) m++;
                if (m > best) { best = m; candidates.Clear(); }
                if (m == best) candidates.Add(i);
            }
            int minLoad = replicas.Min(r => r.Outstanding);
            target = best == 0 ? base.Route(request, replicas) : Least(replicas, candidates);
            if (replicas[target].Outstanding - minLoad > balanceThreshold) target = base.Route(request, replicas);
            Remember(target, units);
        }
        return target;
    }

    private void Remember(int replica, long[] units)
    {
        var (map, lru) = _seen[replica];
        foreach (var u in units)
        {
            if (map.TryGetValue(u, out var node)) lru.Remove(node);
            map[u] = lru.AddLast(u);
        }
        while (lru.Count > MaxUnitsPerReplica) { map.Remove(lru.First!.Value); lru.RemoveFirst(); }
    }
}
