namespace RLMServing.Simulation;

/// <summary>
/// Disaggregated serving (Splitwise, DistServe): a prefill replica hands each request over when its prompt is
/// prefilled (the first token is out); a decode replica receives the KV over the link and decodes without
/// prefilling, like a swap-in. After a recompute preemption the decode replica prefills locally.
/// </summary>
internal sealed partial class ReplicaEngine
{
    /// <summary>Set on prefill replicas: receives each request whose prefill finished, with the time it finished.</summary>
    public Action<SimRequest, double>? OnPrefilled { get; set; }

    private bool HandOffAfterPrefill(SimRequest r)
    {
        if (OnPrefilled is null) return false;
        _ledger.Release(r, r.BlocksHeld, r.PrefillTarget);
        r.BlocksHeld = 0;
        r.State = RequestState.Done;
        OnPrefilled(r, _clock);
        return true;
    }

    /// <summary>A request whose KV (its prefilled prompt) arrives here at <paramref name="readyS"/>.</summary>
    public void AddTransferred(SimRequest r, double readyS)
    {
        r.ClusterArrivalS ??= r.ArrivalTimeS;
        r.ArrivalTimeS = readyS;
        r.SwappedKv = r.PrefillTarget;
        r.Prefilled = r.PrefillTarget;
        r.TransferredIn = true;
        r.State = RequestState.Pending;
        AddArrival(r);
    }
}
