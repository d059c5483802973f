using RLMServing.Scheduling;

namespace RLMServing.Simulation.Engine;

/// <summary>
/// Parallel sampling: samples 1..n-1 of a prompt wait until its first sample has prefilled the prompt, then queue
/// and are admitted with the prompt's full blocks shared (a prefix-cache hit); each computes only the prompt's
/// last partial block, then decodes its own output into its own blocks.
/// </summary>
internal sealed class SampleParking
{
    private readonly Dictionary<long, List<SimRequest>> _parked = new();   // samples waiting for their prompt's prefill
    private readonly HashSet<long> _promptsReady = new();                  // prompts whose first sample has prefilled (or was rejected)

    public int Count { get; private set; }

    /// <summary>Holds a sample back until its prompt is prefilled; false when the request is not held back.</summary>
    public bool TryPark(SimRequest r)
    {
        if (r.Spec.SampleIndex == 0 || r.Spec.PromptId is not { } prompt || _promptsReady.Contains(prompt)) return false;
        if (!_parked.TryGetValue(prompt, out var list)) _parked[prompt] = list = new List<SimRequest>();
        list.Add(r);
        Count++;
        return true;
    }

    /// <summary>The first sample of a prompt has prefilled it (or was rejected): its other samples queue now.</summary>
    public void Release(SimRequest first, WaitingQueue waiting)
    {
        if (first.Spec.SampleIndex != 0 || first.Spec.PromptId is not { } prompt || !_promptsReady.Add(prompt)) return;
        if (!_parked.Remove(prompt, out var list)) return;
        Count -= list.Count;
        foreach (var r in list) waiting.Enqueue(r);
    }

    public void Verify()
    {
        if (_parked.Keys.Any(_promptsReady.Contains) || _parked.Values.Sum(l => l.Count) != Count)
            throw new InvalidOperationException("a sample waits for a prompt that has already been prefilled");
    }
}
