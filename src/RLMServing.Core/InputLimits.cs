using System.Globalization;

namespace RLMServing;

/// <summary>
/// Bounds on values no real run comes near, refused at load with the key and the bound (docs/limits.md), so that
/// memory and time follow the work asked for: a typo of a few orders of magnitude fails in a line, not after hours.
/// </summary>
public static class InputLimits
{
    /// <summary>Simulated time a workload's arrivals may span: one year (the longest public traces span months).</summary>
    public const double MaxHorizonS = 365 * 86_400.0;

    /// <summary>Requests of one run (a scenario's <c>workload.requests</c> or a trace's rows, samples included).</summary>
    public const int MaxRequests = 20_000_000;

    /// <summary>Tokens of one request's prompt or output: far beyond any model's context window.</summary>
    public const long MaxRequestTokens = 1L << 24;

    /// <summary>A machine-speed factor (<c>cost_model.slowdown</c>): a machine 1,000 times slower than its profile is not that machine.</summary>
    public const double MaxSlowdown = 1_000;

    /// <summary>
    /// A calibration coefficient in microseconds (per iteration, token, KV token or attention pair): 10^9 µs is
    /// 1,000 s, more than any measured iteration takes.
    /// </summary>
    public const double MaxCalibrationCoefficientUs = 1e9;

    /// <summary>Seconds as an error line shows them: grouped digits, or a short exponent for absurd values.</summary>
    public static string Seconds(double s) => s.ToString(Math.Abs(s) < 1e12 ? "#,0" : "G4", CultureInfo.InvariantCulture) + " s";
}
