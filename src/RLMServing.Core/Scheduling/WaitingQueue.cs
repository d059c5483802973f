using RLMServing.Scenarios;
using RLMServing.Simulation;

namespace RLMServing.Scheduling;

/// <summary>
/// Requests waiting for admission, in the scenario's queue order. FCFS keeps arrival order and puts preempted
/// requests back at the front (as vLLM does); SJF orders by remaining work; priority by (priority, arrival).
/// </summary>
internal sealed class WaitingQueue
{
    private readonly QueueOrder _order;
    private readonly LinkedList<SimRequest> _fifo = new();
    private readonly SortedSet<SimRequest> _sorted;

    public WaitingQueue(QueueOrder order)
    {
        _order = order;
        _sorted = new SortedSet<SimRequest>(Comparer<SimRequest>.Create(order == QueueOrder.Sjf ? CompareSjf : ComparePriority));
    }

    public int Count => _order == QueueOrder.Fcfs ? _fifo.Count : _sorted.Count;

    public void Enqueue(SimRequest r)
    {
        if (_order == QueueOrder.Fcfs) _fifo.AddLast(r);
        else _sorted.Add(r);
    }

    /// <summary>A preempted request goes back ahead of new arrivals.</summary>
    public void EnqueuePreempted(SimRequest r)
    {
        if (_order == QueueOrder.Fcfs) _fifo.AddFirst(r);
        else _sorted.Add(r);
    }

    public SimRequest Peek() => _order == QueueOrder.Fcfs ? _fifo.First!.Value : _sorted.Min!;

    public SimRequest Dequeue()
    {
        var r = Peek();
        if (_order == QueueOrder.Fcfs) _fifo.RemoveFirst();
        else _sorted.Remove(r);
        return r;
    }

    public double OldestArrivalS() =>
        (_order == QueueOrder.Fcfs ? (IEnumerable<SimRequest>)_fifo : _sorted).Min(r => r.ArrivalTimeS);

    private static int CompareSjf(SimRequest? a, SimRequest? b)
    {
        int c = a!.RemainingWork.CompareTo(b!.RemainingWork);
        return c != 0 ? c : Tie(a, b);
    }

    private static int ComparePriority(SimRequest? a, SimRequest? b)
    {
        int c = a!.Spec.Priority.CompareTo(b!.Spec.Priority);
        return c != 0 ? c : Tie(a, b);
    }

    private static int Tie(SimRequest a, SimRequest b)
    {
        int c = a.ArrivalTimeS.CompareTo(b.ArrivalTimeS);
        return c != 0 ? c : a.Spec.Id.CompareTo(b.Spec.Id);
    }
}
