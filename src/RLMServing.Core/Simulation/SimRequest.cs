using RLMServing.Metrics;
using RLMServing.Workloads;

namespace RLMServing.Simulation;

internal enum RequestState { Pending, Waiting, Prefilling, Decoding, Done }

/// <summary>
/// A request inside one replica. While it decodes, its progress is kept lazily: generated tokens and KV length
/// are affine in the replica's decode-iteration counter, so a stretch of iterations costs nothing per request.
/// KV entries = prompt + generated - 1 while decoding (the newest token is fed at the next step).
/// </summary>
internal sealed class SimRequest(RequestSpec spec, double arrivalTimeS)
{
    /// <summary>Replaced only by a thinking budget (on arrival; under an adaptive budget, whenever the replica's budget moves while it thinks).</summary>
    public RequestSpec Spec { get; set; } = spec;
    public double ArrivalTimeS { get; set; } = arrivalTimeS;
    public int Target => Spec.OutputTokens;
    public RequestState State { get; set; } = RequestState.Pending;

    /// <summary>Order of (re)admission; the latest admitted is preempted first.</summary>
    public long AdmitSeq { get; set; } = -1;

    /// <summary>Tokens emitted, valid while not decoding (see <see cref="GeneratedAt"/>).</summary>
    public int Generated { get; set; }

    /// <summary>Tokens to run through prefill: the prompt, plus earlier output after a recompute preemption.</summary>
    public int PrefillTarget { get; set; }
    public int Prefilled { get; set; }

    /// <summary>Private KV blocks while prefilling (cached prefix blocks are counted in <see cref="PrefixBlocks"/>).</summary>
    public int BlocksHeld { get; set; }

    /// <summary>Leading blocks of the context this request references in the prefix cache.</summary>
    public int PrefixBlocks { get; set; }

    /// <summary>Prefix-cache hit found for the head of the queue, taken at admission (tokens, whole blocks).</summary>
    public int PendingPrefixTokens { get; set; }

    /// <summary>Most prompt tokens served from the prefix cache at one admission.</summary>
    public int CachedPromptTokens { get; set; }

    /// <summary>KV entries held in host memory after a swap-out (0 when not swapped).</summary>
    public long SwappedKv { get; set; }

    /// <summary>The KV in <see cref="SwappedKv"/> came from a prefill replica over the network, not from this replica's swap space.</summary>
    public bool TransferredIn { get; set; }

    /// <summary>When the request reached the cluster, when <see cref="ArrivalTimeS"/> is its arrival at a decode replica.</summary>
    public double? ClusterArrivalS { get; set; }

    public int PrefillLeft => PrefillTarget - Prefilled - PendingPrefixTokens;

    // Lazy decode progress.
    public long JoinDc { get; set; }
    public int GenAtJoin { get; set; }
    public long KvAtJoin { get; set; }
    public int Version { get; set; }

    // Reference (stepping) mode: the same progress counted one token at a time.
    public int NaiveGenerated { get; set; }
    public long NaiveKv { get; set; }

    /// <summary>When this request last emitted a token (for inter-token latencies across stalls and preemptions).</summary>
    public double LastEmitS { get; set; }

    public double? FirstScheduledS { get; set; }
    public double? FirstTokenS { get; set; }
    public double? FirstAnswerS { get; set; }
    public double? CompletionS { get; set; }
    public int Preemptions { get; set; }
    public string? RejectReason { get; set; }
    public int ClientId { get; set; } = -1;

    // Serving policies' per-request state (Policies/): null while the policy has not touched the request.
    public Policies.ThinkingBudgetState? Thinking { get; set; }
    public Policies.KvCompressionState? Compression { get; set; }
    public Policies.SpeculativeState? Speculation { get; set; }

    public int GeneratedAt(long dc) => State == RequestState.Decoding ? GenAtJoin + (int)(dc - JoinDc) : Generated;
    public long KvAt(long dc) => KvAtJoin + (dc - JoinDc);

    /// <summary>Job length for shortest-job-first: prefill left plus output left (the simulator knows the oracle length).</summary>
    public long RemainingWork => PrefillTarget - Prefilled + Target - Generated;

    public RequestRecord ToRecord(int replica) => new(
        Spec.Id, ClusterArrivalS ?? ArrivalTimeS, Spec.PromptTokens,
        RejectReason is null ? Target : 0,
        RejectReason is null ? Spec.ThinkingTokens : 0,
        RejectReason is null ? RequestStatus.Completed : RequestStatus.Rejected,
        FirstScheduledS, FirstTokenS, FirstAnswerS, CompletionS, Preemptions, replica, RejectReason,
        Spec.ThinkingTruncated) { CachedPromptTokens = CachedPromptTokens, PromptId = Spec.PromptId, SampleIndex = Spec.SampleIndex };
}
