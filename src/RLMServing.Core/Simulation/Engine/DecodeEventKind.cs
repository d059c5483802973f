namespace RLMServing.Simulation.Engine;

/// <summary>
/// What happens to a decoding request at a known decode step. The values order events of one request on the same
/// step only through the event queue's priority (step, admission order), never by kind.
/// </summary>
internal enum DecodeEventKind
{
    /// <summary>The request emits its last token and leaves.</summary>
    Finish = 0,

    /// <summary>Its first answer token (thinking has ended).</summary>
    Answer = 1,

    /// <summary>A KV-compression check is due.</summary>
    Compress = 2,
}
