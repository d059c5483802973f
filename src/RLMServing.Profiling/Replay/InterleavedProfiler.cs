using RLMServing.Profiling.Traces;
using RLMServing.Simulation;

namespace RLMServing.Profiling.Replay;

/// <summary>
/// What <c>rlms replay --interleave-profile GRID</c> runs beside the replay: the grid's generation points, and how
/// much of them: profile time as a share of the replay's busy time (<paramref name="Share"/>), with at least
/// <paramref name="MinRepetitions"/> kept repetitions of every point.
/// </summary>
public sealed record InterleaveOptions(ProfileGrid Grid, double Share = InterleaveOptions.DefaultShare, int MinRepetitions = 2)
{
    public const double DefaultShare = 0.5;

    public static InterleaveOptions Parse(string grid, double share)
    {
        if (!(share > 0) || share > 10 || double.IsNaN(share))
            throw new UserInputException($"--interleave-share: {share} is not a share of the replay's busy time in (0, 10]");
        ProfileGrid g;
        try { g = ProfileGrid.Get(grid); }
        catch (UserInputException) { throw new UserInputException($"--interleave-profile: '{grid}' is not one of {string.Join(", ", ProfileGrid.Names)}"); }
        if (g.Generation.Count == 0) throw new UserInputException($"--interleave-profile: grid '{grid}' has no generation points");
        return new InterleaveOptions(g, share);
    }
}

/// <summary>
/// Profiles the serving engine in the gaps of a replay (<c>rlms replay --interleave-profile</c>). A shared machine's
/// speed drifts by more than the fidelity target over seconds to minutes (docs/fidelity.md, "A drifting machine"), so a
/// profile taken before a replay prices it at another speed than the one it ran at. This executor sits between the
/// replay's scheduler and its engine: whenever the replay goes idle (no request holds a KV slot and the next arrival is
/// in the future) it runs generation points of the grid on the same engine (set aside: <see cref="OrtServingEngine.Aside"/>
/// drops their iterations from the replay's record and takes their time off its clock, so the replay continues as if
/// nothing had run) until the profile has used <see cref="InterleaveOptions.Share"/> of the replay's busy time so far.
/// The profile then samples the machine over the same minutes as the replay, in proportion to the replay's work.
/// The points go round the grid (every point, then every point again), the first visit of each is a warm-up and not
/// kept, as in <c>rlms profile</c>. <see cref="Finish"/> tops the profile up after the run.
/// </summary>
public sealed class InterleavedProfiler : IIterationExecutor
{
    private readonly OrtServingEngine _engine;
    private readonly InterleaveOptions _options;
    private readonly GenerationPoint[] _points;
    private readonly ServingPointSamples[] _samples;
    private readonly bool[] _warm;
    private readonly CancellationToken _cancel;
    private int _next;
    private long _id = -1_000_000_000;
    private readonly List<(double TimeS, int Point, double MeanStepUs)> _visits = [];

    /// <param name="points">The grid's points that fit the engine (batch within its slots, prompt and steps within a slot).</param>
    public InterleavedProfiler(OrtServingEngine engine, InterleaveOptions options, IReadOnlyList<GenerationPoint> points, CancellationToken cancel = default)
    {
        if (points.Count == 0) throw new ArgumentException("no generation points fit the engine", nameof(points));
        _engine = engine;
        _options = options;
        _points = [.. points];
        _samples = _points.Select(p => new ServingPointSamples(p)).ToArray();
        _warm = new bool[_points.Length];
        _cancel = cancel;
    }

    /// <summary>The replay's busy time so far (its iterations), on the engine's clock, seconds.</summary>
    public double BusyS { get; private set; }

    /// <summary>Profile time so far, on the engine's clock, seconds (warm-up visits included).</summary>
    public double ProfileS { get; private set; }

    /// <summary>Idle moments at which profile work ran.</summary>
    public int Sessions { get; private set; }

    public IReadOnlyList<ServingPointSamples> Samples => _samples;

    public double NowS => _engine.NowS;

    public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
    {
        double end = _engine.Execute(chunks, decodes);
        var it = _engine.Iterations[^1];
        BusyS += it.EndS - it.StartS;
        return end;
    }

    public void Release(long requestId, bool finished) => _engine.Release(requestId, finished);

    public void WaitUntil(double timeS)
    {
        if (timeS > _engine.NowS) RunWhileBehind(requireMinimum: false);
        _engine.WaitUntil(timeS);
    }

    /// <summary>After the run: profile until the share is reached and every point has its minimum of kept repetitions.</summary>
    public void Finish() => RunWhileBehind(requireMinimum: true);

    private bool ShortOfMinimum => _samples.Any(s => s.Repetitions < _options.MinRepetitions);

    private void RunWhileBehind(bool requireMinimum)
    {
        bool Wanted(double spentS) => !_cancel.IsCancellationRequested
            && (ProfileS + spentS < _options.Share * BusyS || (requireMinimum && ShortOfMinimum));
        if (!_engine.AllSlotsFree || !Wanted(0)) return;
        Sessions++;
        double at = _engine.NowS;   // on the replay's clock the whole session happens at this moment
        // One set-aside span for the session, the profile's own bookkeeping included, so none of it reaches the replay.
        ProfileS += _engine.Aside(() =>
        {
            double start = _engine.NowS;
            do
            {
                int i = _next;
                _next = (_next + 1) % _points.Length;
                var keep = _warm[i] ? _samples[i] : null;
                _warm[i] = true;
                int before = keep?.Repetitions ?? 0;
                ServingProfile.RunPoint(_engine, _points[i], () => --_id, keep, _cancel);
                if (keep is not null && keep.Repetitions > before && ServingProfile.LastVisitMeanStepUs(keep) is var mean && !double.IsNaN(mean))
                    _visits.Add((at, i, mean));
            }
            while (Wanted(_engine.NowS - start));
        });
    }

    /// <summary>The profile's iteration rows (the schema of <c>rlms profile</c>'s iterations.parquet).</summary>
    public List<IterationRow> Rows(ServingProfileIdentity who) =>
        _samples.SelectMany(s => ServingProfile.Rows(s, who, _options.Grid.Policy.UnstableCv)).ToList();

    /// <summary>
    /// Every kept visit, in order: when it ran on the replay's clock (the idle moment, or the run's end for the top-up)
    /// and its speed against the point's mean over its visits.
    /// </summary>
    public List<ProfileVisitRow> Visits()
    {
        var means = _visits.GroupBy(v => v.Point).ToDictionary(g => g.Key, g => g.Average(v => v.MeanStepUs));
        return _visits.Select(v => new ProfileVisitRow
        {
            TimeS = v.TimeS,
            Batch = _points[v.Point].Batch,
            PromptTokens = _points[v.Point].Prompt,
            DecodeSteps = _points[v.Point].Steps,
            FirstStep = ServingProfile.FirstMeanStep(_points[v.Point]),
            MeanStepUs = v.MeanStepUs,
            Slowdown = v.MeanStepUs / means[v.Point],
        }).ToList();
    }

    /// <summary>The grid's generation points an engine of this size can run (batch within its requests, length within a slot).</summary>
    public static List<GenerationPoint> Fitting(ProfileGrid grid, int maxSeqs) =>
        grid.Generation.Where(p => p.Batch <= maxSeqs).ToList();
}
