using MathNet.Numerics.Statistics;

namespace RLMServing.Metrics;

/// <summary>Percentiles as vLLM reports them (numpy's default: linear interpolation, MathNet's R7).</summary>
public static class Percentiles
{
    public static double[] Sorted(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        Sort(a);
        return a;
    }

    /// <summary>The q-quantile (0..1) of sorted values; 0 for no values.</summary>
    public static double Of(double[] sorted, double q) =>
        sorted.Length == 0 ? 0 : SortedArrayStatistics.QuantileCustom(sorted, q, QuantileDefinition.R7);

    /// <summary>Below this many values the comparison sort is as fast and needs no extra arrays.</summary>
    internal const int RadixMinimum = 4096;

    /// <summary>
    /// Sorts ascending into exactly the array <see cref="Array.Sort(Array)"/> gives. A summary sorts ten arrays of
    /// latencies (the run's and the steady window's), a few percent of a 100k-request command and more at a million, so
    /// large arrays go through a least-significant-digit radix sort of their bit patterns (linear, where the comparison
    /// sort is n log n). Equal doubles have equal bits, so the order is the same, with two exceptions the radix order
    /// does not share: NaN (the comparison sort puts it first) and -0.0 beside 0.0 (equal to the comparison sort, so
    /// their order is its own). An array holding either is sorted by the comparison sort.
    /// </summary>
    public static void Sort(double[] a)
    {
        int n = a.Length;
        if (n < RadixMinimum) { Array.Sort(a); return; }
        // The ten sorts of a summary share two buffers (fresh ones of a million values each made the collector run
        // more often than the sorting saved).
        var keyBuffer = System.Buffers.ArrayPool<ulong>.Shared.Rent(n);
        var toBuffer = System.Buffers.ArrayPool<ulong>.Shared.Rent(n);
        try { RadixSort(a, keyBuffer.AsSpan(0, n), toBuffer.AsSpan(0, n)); }
        finally
        {
            System.Buffers.ArrayPool<ulong>.Shared.Return(keyBuffer);
            System.Buffers.ArrayPool<ulong>.Shared.Return(toBuffer);
        }
    }

    private static void RadixSort(double[] a, Span<ulong> keys, Span<ulong> to)
    {
        int n = a.Length;
        const ulong sign = 0x8000_0000_0000_0000UL;
        const int bits = 11, buckets = 1 << bits, passes = 6;   // 6 x 11 = 66 bits cover the 64
        Span<int> counts = new int[passes * buckets];
        for (int i = 0; i < n; i++)
        {
            ulong b = BitConverter.DoubleToUInt64Bits(a[i]);
            if (double.IsNaN(a[i]) || b == sign) { Array.Sort(a); return; }
            // Negative numbers: all bits flipped (larger magnitude sorts first); others: the sign bit set.
            ulong k = (b & sign) != 0 ? ~b : b | sign;
            keys[i] = k;
            for (int p = 0; p < passes; p++) counts[p * buckets + (int)((k >> (p * bits)) & (buckets - 1))]++;
        }
        var from = keys;
        for (int p = 0; p < passes; p++)
        {
            var c = counts.Slice(p * buckets, buckets);
            int shift = p * bits;
            // A digit every key shares (the high bits of latencies of one magnitude) moves nothing.
            if (c[(int)((from[0] >> shift) & (buckets - 1))] == n) continue;
            int sum = 0;
            for (int d = 0; d < buckets; d++) { int t = c[d]; c[d] = sum; sum += t; }
            for (int i = 0; i < n; i++)
            {
                ulong k = from[i];
                to[c[(int)((k >> shift) & (buckets - 1))]++] = k;
            }
            var swap = from; from = to; to = swap;
        }
        for (int i = 0; i < n; i++)
        {
            ulong k = from[i];
            a[i] = BitConverter.UInt64BitsToDouble((k & sign) != 0 ? k ^ sign : ~k);
        }
    }
}
