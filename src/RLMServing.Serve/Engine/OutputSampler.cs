using RLMServing.Scenarios;
using RLMServing.Workloads;

namespace RLMServing.Serve.Engine;

/// <summary>
/// Draws each live request's thinking and answer lengths (and priority) from the scenario's workload: the k-th request
/// served gets the k-th request the simulator generates from the seed, so a live run with the simulator's arrivals is
/// the simulated run. After the workload's last request the draw continues with the next seed.
/// </summary>
public sealed class OutputSampler
{
    private readonly Scenario _scenario;
    private readonly object _lock = new();
    private IReadOnlyList<RequestSpec> _pool;
    private int _next;
    private int _round;

    public OutputSampler(Scenario scenario)
    {
        _scenario = scenario;
        _pool = Draw(0);
        if (_pool.Count == 0) throw new UserInputException($"{scenario.Name}: the workload has no requests to draw output lengths from");
    }

    public (int Thinking, int Answer, int Priority) Next()
    {
        lock (_lock)
        {
            if (_next == _pool.Count)
            {
                _pool = Draw(++_round);
                _next = 0;
            }
            var s = _pool[_next++];
            return (s.ThinkingTokens, s.AnswerTokens, s.Priority);
        }
    }

    private IReadOnlyList<RequestSpec> Draw(int round) =>
        round == 0 || _scenario.Workload is null ? _scenario.Requests() : _scenario.Workload.Generate(_scenario.Seed + round);
}
