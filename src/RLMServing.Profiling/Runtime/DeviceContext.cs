using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace RLMServing.Profiling.Runtime;

/// <summary>Where the graphs run: the CPU execution provider or one CUDA device.</summary>
public sealed record DeviceSpec(bool Cuda, int DeviceId)
{
    public static DeviceSpec Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return new DeviceSpec(false, 0);
        if (t == "cuda") return new DeviceSpec(true, 0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t[5..], out var id) && id >= 0) return new DeviceSpec(true, id);
        throw new UserInputException($"--device: '{text}' is not cpu, cuda or cuda:N");
    }

    public override string ToString() => Cuda ? $"cuda:{DeviceId}" : "cpu";
}

/// <summary>Names and versions recorded in every trace file's metadata.</summary>
public sealed record DeviceInfo(string DeviceName, string Driver, string CudaVersion, string OrtVersion, string Host, int CpuCores);

/// <summary>
/// Session options, memory placement and memory queries for one device. CPU memory is the process's resident set
/// (Linux /proc); CUDA memory is cudaMemGetInfo from the CUDA runtime that ONNX Runtime loaded.
/// </summary>
public sealed class DeviceContext : IDisposable
{
    public DeviceSpec Spec { get; }
    public OrtMemoryInfo MemoryInfo { get; }
    public int IntraOpThreads { get; }

    public DeviceContext(DeviceSpec spec, int intraOpThreads = 0)
    {
        Spec = spec;
        IntraOpThreads = intraOpThreads;
        // Failures surface as exceptions with the same text; the runtime's own red log lines would only repeat them.
        OrtEnv.Instance().EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
        if (spec.Cuda)
        {
            var providers = OrtEnv.Instance().GetAvailableProviders();
            if (!providers.Contains("CUDAExecutionProvider"))
                throw new UserInputException(
                    "--device cuda: this build of rlms has no CUDA execution provider; build or publish with -p:OrtGpu=true " +
                    $"(available: {string.Join(", ", providers)})");
            MemoryInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, spec.DeviceId, OrtMemType.Default);
        }
        else
        {
            MemoryInfo = OrtMemoryInfo.DefaultInstance;
        }
        if (spec.Cuda)
        {
            // Fail before any row is attempted when the provider or its libraries cannot load.
            try
            {
                using var probe = CreateSessionOptions();
            }
            catch
            {
                MemoryInfo.Dispose();
                throw;
            }
        }
    }

    /// <summary>Fresh session options for this device; the caller disposes them (and they are disposed here on failure).</summary>
    public SessionOptions CreateSessionOptions(string? profilePrefix = null)
    {
        var options = new SessionOptions();
        try
        {
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
            options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL;
            if (IntraOpThreads > 0) options.IntraOpNumThreads = IntraOpThreads;
            if (profilePrefix is not null)
            {
                options.EnableProfiling = true;
                options.ProfileOutputPathPrefix = profilePrefix;
            }
            if (Spec.Cuda)
            {
                try
                {
                    // Creating the provider options already loads libonnxruntime_providers_cuda.so and its CUDA libraries.
                    using var cuda = new OrtCUDAProviderOptions();
                    cuda.UpdateOptions(new Dictionary<string, string>
                    {
                        ["device_id"] = Spec.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        // Grow the arena by what is asked for, so device memory tracks the configuration being measured.
                        ["arena_extend_strategy"] = "kSameAsRequested",
                    });
                    options.AppendExecutionProvider_CUDA(cuda);
                }
                catch (OnnxRuntimeException e)
                {
                    var why = e.Message.Split('\n')[0];
                    int at = why.IndexOf("Failed to load library", StringComparison.Ordinal);
                    throw new UserInputException($"--device {Spec}: the CUDA execution provider could not start: {(at >= 0 ? why[at..] : why)} " +
                        "(libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and cuDNN 9 must be on LD_LIBRARY_PATH; " +
                        "scripts/gpu-run-on-device.sh finds them)");
                }
            }
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>Device memory in use now (bytes): CUDA used = total − free; CPU: resident set size.</summary>
    public long? MemoryUsedBytes()
    {
        if (!Spec.Cuda) return ProcessMemory.ResidentBytes();
        return CudaRuntime.MemoryUsed(Spec.DeviceId);
    }

    /// <summary>Peak memory since the last reset: CPU VmHWM; CUDA has no peak counter, so the current use stands in.</summary>
    public long? PeakMemoryBytes() => Spec.Cuda ? CudaRuntime.MemoryUsed(Spec.DeviceId) : ProcessMemory.PeakResidentBytes();

    public void ResetPeakMemory()
    {
        if (!Spec.Cuda) ProcessMemory.ResetPeak();
    }

    public DeviceInfo Describe()
    {
        string ort = OrtEnv.Instance().GetVersionString();
        string host = Environment.MachineName;
        if (!Spec.Cuda)
            return new DeviceInfo(CpuName(), "", "", ort, host, Environment.ProcessorCount);
        var (name, driver) = NvidiaSmi(Spec.DeviceId);
        return new DeviceInfo(name ?? $"cuda:{Spec.DeviceId}", driver ?? CudaRuntime.DriverVersion() ?? "",
            CudaRuntime.RuntimeVersion() ?? "", ort, host, Environment.ProcessorCount);
    }

    private static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static (string? Name, string? Driver) NvidiaSmi(int device)
    {
        try
        {
            var psi = new ProcessStartInfo("nvidia-smi", $"--query-gpu=name,driver_version --format=csv,noheader -i {device}")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var p = Process.Start(psi);
            if (p is null) return (null, null);
            var text = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(10_000) || p.ExitCode != 0) return (null, null);
            var parts = text.Trim().Split(',', StringSplitOptions.TrimEntries);
            return parts.Length >= 2 ? (parts[0], parts[1]) : (null, null);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (null, null);
        }
    }

    public void Dispose()
    {
        if (Spec.Cuda) MemoryInfo.Dispose();
    }
}

/// <summary>Process memory from Linux /proc/self (resident set and its high-water mark).</summary>
public static class ProcessMemory
{
    public static long? ResidentBytes() => StatusKb("VmRSS:");

    public static long? PeakResidentBytes() => StatusKb("VmHWM:");

    /// <summary>Resets VmHWM to the current resident set (Linux clear_refs value 5); silently does nothing elsewhere.</summary>
    public static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static long? StatusKb(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}

/// <summary>The few CUDA runtime calls the harness needs, bound to the libcudart that ONNX Runtime's CUDA provider loads.</summary>
internal static partial class CudaRuntime
{
    private const string Lib = "libcudart.so.13";

    [LibraryImport(Lib, EntryPoint = "cudaMemGetInfo")]
    private static partial int CudaMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(Lib, EntryPoint = "cudaSetDevice")]
    private static partial int CudaSetDevice(int device);

    [LibraryImport(Lib, EntryPoint = "cudaRuntimeGetVersion")]
    private static partial int CudaRuntimeGetVersion(out int version);

    [LibraryImport(Lib, EntryPoint = "cudaDriverGetVersion")]
    private static partial int CudaDriverGetVersion(out int version);

    [LibraryImport(Lib, EntryPoint = "cudaMemcpy")]
    private static partial int CudaMemcpy(nint dst, nint src, nuint count, int kind);

    private const int DeviceToDevice = 3;

    /// <summary>Copies within device memory (synchronous with respect to the host).</summary>
    public static void CopyDeviceToDevice(nint dst, nint src, long bytes)
    {
        int rc = CudaMemcpy(dst, src, (nuint)bytes, DeviceToDevice);
        if (rc != 0) throw new InvalidOperationException($"cudaMemcpy device to device failed with CUDA error {rc}");
    }

    public static long? MemoryUsed(int device)
    {
        try
        {
            if (CudaSetDevice(device) != 0) return null;
            return CudaMemGetInfo(out var free, out var total) == 0 ? (long)(total - free) : null;
        }
        catch (DllNotFoundException) { return null; }
        catch (EntryPointNotFoundException) { return null; }
    }

    public static string? RuntimeVersion() => Version(CudaRuntimeGetVersion);

    public static string? DriverVersion() => Version(CudaDriverGetVersion);

    private delegate int VersionCall(out int version);

    private static string? Version(VersionCall call)
    {
        try
        {
            return call(out var v) == 0 ? $"{v / 1000}.{v % 1000 / 10}" : null;
        }
        catch (DllNotFoundException) { return null; }
        catch (EntryPointNotFoundException) { return null; }
    }
}
