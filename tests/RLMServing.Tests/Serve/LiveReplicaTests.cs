using RLMServing.Serve.Engine;
using RLMServing.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Serve;

/// <summary>The live replica's engine loop, with executors whose clocks behave as a real engine's do.</summary>
public class LiveReplicaTests
{
    /// <summary>
    /// A clock that moves by itself, as the ONNX Runtime engine's wall clock does: every read is a microsecond later
    /// than the one before. An iteration takes a millisecond.
    /// </summary>
    private sealed class MovingClock : IIterationExecutor, ILiveClock
    {
        private double _t;
        public int Iterations;

        public double NowS
        {
            get { lock (this) return _t += 1e-6; }
        }

        public double ArrivalS => NowS;
        public void CatchUp() { }
        public void Interrupt() { }

        public void WaitUntil(double timeS)
        {
            lock (this) _t = Math.Max(_t, timeS);
        }

        public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
        {
            Interlocked.Increment(ref Iterations);
            lock (this) return _t += 1e-3;
        }

        public void Release(long requestId, bool finished) { }
    }

    [Fact]
    public void BatchesThatWaitedAreSentAsOneKeepingThinkingBeforeTheAnswer()
    {
        var merged = new TokenBatch(0, 3, 0, 1.0, null).Then(new TokenBatch(3, 1, 2, 1.5, null)).Then(new TokenBatch(6, 0, 4, 2.0, null));
        Assert.Equal(new TokenBatch(0, 4, 6, 2.0, null), merged);
        var ids = new TokenBatch(5, 1, 0, 0, [7]).Then(new TokenBatch(6, 0, 2, 1, [8, 9]));
        Assert.Equal([7L, 8, 9], ids.TokenIds!);
        Assert.Throws<ArgumentException>(() => new TokenBatch(0, 2, 0, 0, null).Then(new TokenBatch(3, 1, 0, 1, null)));   // a gap
        Assert.Throws<ArgumentException>(() => new TokenBatch(0, 0, 2, 0, null).Then(new TokenBatch(2, 1, 0, 1, null)));   // thinking after the answer
    }

    [Fact]
    public async Task AnEngineWhoseClockMovesByItselfRunsAnIterationEveryTurn()
    {
        // Each scheduler turn's horizon lies just past the clock as the turn starts. Read again inside the turn, a
        // clock that moves by itself is already past it: the turn ended before its iteration, and the thread idled
        // a scheduler wait per token (per iteration ~5 ms instead of the ONNX engine's ~0.1 ms on the tiny model;
        // with this clock, which moves at every read, no iteration ever ran).
        var run = RunningServer.Prepare(RunningServer.Twin);
        var clock = new MovingClock();
        using var replica = new LiveReplica(run, run.Cost, clock, clock, null, null, keepRecords: true);
        replica.Start();
        var request = replica.Submit(new RequestSpec(0, 0, PromptTokens: 16, ThinkingTokens: 12, AnswerTokens: 8), lengthCapped: false);
        var done = await Task.WhenAny(request.Outcome, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.True(done == request.Outcome, $"the request did not finish: {clock.Iterations} iterations ran");
        var outcome = await request.Outcome;
        Assert.Equal((LiveFinish.Stop, 20, 12), (outcome.Finish, outcome.CompletionTokens, outcome.ReasoningTokens));
        Assert.Equal(20, clock.Iterations);   // one prefill that samples the first token, then 19 decode steps
    }
}
