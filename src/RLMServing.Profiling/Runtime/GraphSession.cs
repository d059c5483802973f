using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using RLMServing.Profiling.Onnx;

namespace RLMServing.Profiling.Runtime;

/// <summary>A buffer allocated once on the device; configurations view it with the shapes they need.</summary>
public sealed class DeviceBuffer(OrtMemoryAllocation allocation, long bytes) : IDisposable
{
    public OrtMemoryAllocation Allocation { get; } = allocation;
    public long Bytes { get; } = bytes;
    // The allocation is a SafeHandle over the device pointer; the buffer outlives every view made from it.
    public IntPtr Pointer => Allocation.DangerousGetHandle();
    public void Dispose() => Allocation.Dispose();
}

/// <summary>
/// One ONNX Runtime session with IO binding: weights and large inputs live in device buffers allocated once and
/// filled on the device by a small RandomNormal graph; each configuration binds views of those buffers; a run
/// returns only after the device has finished. Optionally a twin session with ORT's profiler for kernel traces.
/// </summary>
public sealed class GraphSession : IDisposable
{
    private readonly DeviceContext _device;
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly OrtAllocator _allocator;
    private readonly bool _ownsAllocator;
    private readonly List<DeviceBuffer> _buffers = [];
    private readonly Dictionary<string, OrtValue> _bound = new(StringComparer.Ordinal);
    private readonly List<OrtValue> _weightViews = [];
    private readonly HashSet<string> _borrowed = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deviceOutputs = new(StringComparer.Ordinal);
    private readonly InferenceSession? _profiled;
    private readonly OrtIoBinding? _profiledBinding;

    public string Kind { get; }
    public long WeightBytes { get; }
    public InferenceSession Session => _session;

    public GraphSession(DeviceContext device, string kind, byte[] model, IReadOnlyList<WeightSpec> weights, OnnxType weightType,
        string? profilePrefix = null)
    {
        _device = device;
        Kind = kind;
        using (var options = device.CreateSessionOptions())
            _session = new InferenceSession(model, options);
        try
        {
            _binding = _session.CreateIoBinding();
            if (device.Spec.Cuda)
            {
                _allocator = new OrtAllocator(_session, device.MemoryInfo);
                _ownsAllocator = true;
            }
            else
            {
                _allocator = OrtAllocator.DefaultInstance;
            }
            if (profilePrefix is not null)
            {
                using var popt = device.CreateSessionOptions(profilePrefix);
                _profiled = new InferenceSession(model, popt);
                _profiledBinding = _profiled.CreateIoBinding();
            }
            var fills = new List<(DeviceBuffer Buffer, OnnxType Type, long[] Shape, float Mean, float Std)>();
            foreach (var w in weights)
            {
                var buffer = Allocate(w.Elements * TransformerGraphs.ElementBytes(weightType));
                fills.Add((buffer, weightType, w.Shape, w.Mean, w.Std));
                WeightBytes += buffer.Bytes;
            }
            Fill(fills);
            foreach (var (f, w) in fills.Zip(weights))
            {
                var view = View(f.Buffer, weightType, w.Shape);
                _weightViews.Add(view);
                BindInputValue(w.Name, view);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public DeviceBuffer Allocate(long bytes)
    {
        if (bytes > uint.MaxValue)
            throw new UserInputException($"profile: a {bytes / (1L << 30)} GiB buffer exceeds the 4 GiB a single allocation may hold; use a smaller grid");
        var buffer = new DeviceBuffer(_allocator.Allocate((uint)Math.Max(bytes, 16)), bytes);
        _buffers.Add(buffer);
        return buffer;
    }

    /// <summary>Fills buffers with normal random values on the device (RandomNormal over the last dimension, expanded).</summary>
    public void Fill(IReadOnlyList<(DeviceBuffer Buffer, OnnxType Type, long[] Shape, float Mean, float Std)> fills)
    {
        if (fills.Count == 0) return;
        var g = new GraphBuilder("fill");
        var outputs = new List<(string Name, DeviceBuffer Buffer, OnnxType Type, long[] Shape)>();
        for (int i = 0; i < fills.Count; i++)
        {
            var (buffer, type, shape, mean, std) = fills[i];
            long last = shape.Length == 0 ? 1 : shape[^1];
            long rows = shape.Aggregate(1L, (a, b) => a * b) / Math.Max(1, last);
            var r = g.Op("RandomNormal", [], null, "", GraphBuilder.Attr("shape", new[] { last }), GraphBuilder.Attr("dtype", 1L),
                GraphBuilder.Attr("mean", mean), GraphBuilder.Attr("scale", std), GraphBuilder.Attr("seed", (float)(17 + i)));
            var cast = type == OnnxType.Float ? r : g.Op("Cast", [r], null, "", GraphBuilder.Attr("to", (long)type));
            var name = $"out{i}";
            g.Op("Expand", [cast, g.ConstInt64("shape", rows, last)], name);
            g.Output(name, type, rows, last);
            outputs.Add((name, buffer, type, [rows, last]));
        }
        using var options = _device.CreateSessionOptions();
        using var session = new InferenceSession(g.ToModelBytes(), options);
        using var binding = session.CreateIoBinding();
        using var run = new RunOptions();
        var views = new List<OrtValue>();
        try
        {
            foreach (var o in outputs)
            {
                var v = View(o.Buffer, o.Type, o.Shape);
                views.Add(v);
                binding.BindOutput(o.Name, v);
            }
            session.RunWithBinding(run, binding);
            binding.SynchronizeBoundOutputs();
        }
        finally
        {
            foreach (var v in views) v.Dispose();
        }
    }

    /// <summary>A tensor over (the start of) a device buffer; the caller disposes the view, the session the buffer.</summary>
    public OrtValue View(DeviceBuffer buffer, OnnxType type, long[] shape) => View(buffer, 0, type, shape);

    /// <summary>A tensor over a device buffer from <paramref name="offsetBytes"/> (e.g. one slot of a KV buffer).</summary>
    public OrtValue View(DeviceBuffer buffer, long offsetBytes, OnnxType type, long[] shape)
    {
        long bytes = shape.Aggregate(1L, (a, b) => a * b) * TransformerGraphs.ElementBytes(type);
        if (offsetBytes < 0 || offsetBytes + bytes > buffer.Bytes)
            throw new InvalidOperationException($"view of {bytes} bytes at {offsetBytes} over a {buffer.Bytes}-byte buffer");
        return OrtValue.CreateTensorValueWithData(_device.MemoryInfo, (TensorElementType)(int)type, shape, buffer.Pointer + (nint)offsetBytes, Math.Max(bytes, 1));
    }

    /// <summary>
    /// Binds an input, replacing any value bound before. An owned value is disposed by the session when replaced or
    /// at the end; a borrowed one (a previous step's output) stays the caller's.
    /// </summary>
    public void BindInput(string name, OrtValue value, bool owned = true)
    {
        if (_bound.Remove(name, out var old) && !_weightViews.Contains(old)) old.Dispose();
        _borrowed.Remove(name);
        if (!owned) _borrowed.Add(name);
        BindInputValue(name, value);
    }

    private void BindInputValue(string name, OrtValue value)
    {
        if (_borrowed.Contains(name)) _bound.Remove(name);
        else _bound[name] = value;
        _binding.BindInput(name, value);
        _profiledBinding?.BindInput(name, value);
    }

    /// <summary>Frees a buffer before the session ends (e.g. a generation point's KV cache).</summary>
    public void Free(DeviceBuffer buffer)
    {
        if (_buffers.Remove(buffer)) buffer.Dispose();
    }

    public void BindInput(string name, int[] data, long[] shape) => BindInput(name, OrtValue.CreateTensorValueFromMemory(data, shape));

    public void BindInput(string name, long[] data, long[] shape) => BindInput(name, OrtValue.CreateTensorValueFromMemory(data, shape));

    /// <summary>Binds host memory the caller reuses between calls (a slice of a pooled array; pinned while bound).</summary>
    public void BindInput(string name, Memory<long> data, long[] shape) =>
        BindInput(name, OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data, shape));

    /// <summary>Binds an output to a value the caller owns (used for KV buffers shared between past and present).</summary>
    public void BindOutput(string name, OrtValue value)
    {
        _binding.BindOutput(name, value);
        _profiledBinding?.BindOutput(name, value);
    }

    /// <summary>
    /// Lets ONNX Runtime allocate the output on the device (its arena reuses the memory between runs). The binding
    /// keeps the first run's output, so <see cref="RebindDeviceOutputs"/> must follow every change of shape.
    /// </summary>
    public void BindOutputToDevice(string name)
    {
        _deviceOutputs.Add(name);
        _binding.BindOutputToDevice(name, _device.MemoryInfo);
        _profiledBinding?.BindOutputToDevice(name, _device.MemoryInfo);
    }

    /// <summary>Binds the device-allocated outputs afresh, for a configuration with new shapes.</summary>
    public void RebindDeviceOutputs()
    {
        foreach (var name in _deviceOutputs)
        {
            _binding.BindOutputToDevice(name, _device.MemoryInfo);
            _profiledBinding?.BindOutputToDevice(name, _device.MemoryInfo);
        }
    }

    /// <summary>Runs once; returns after the device has finished and the outputs are synchronised.</summary>
    public void Run()
    {
        _session.RunWithBinding(_runOptions, _binding);
        _binding.SynchronizeBoundOutputs();
    }

    /// <summary>The values bound to the outputs after the last run (the caller disposes the collection).</summary>
    public IDisposableReadOnlyCollection<OrtValue> OutputValues() => _binding.GetOutputValues();

    public string[] OutputNames() => _binding.GetOutputNames();

    public bool HasKernelTrace => _profiled is not null;

    /// <summary>Runs the profiled twin <paramref name="count"/> times (kernel trace only).</summary>
    public void RunProfiled(int count)
    {
        if (_profiled is null || _profiledBinding is null) return;
        for (int i = 0; i < count; i++)
        {
            _profiled.RunWithBinding(_runOptions, _profiledBinding);
            _profiledBinding.SynchronizeBoundOutputs();
        }
    }

    /// <summary>Stops ORT's profiler and returns the JSON file it wrote, or null without a kernel trace.</summary>
    public string? EndProfiling() => _profiled?.EndProfiling();

    public void Dispose()
    {
        foreach (var v in _bound.Values.Concat(_weightViews).Distinct()) v.Dispose();
        _bound.Clear();
        _weightViews.Clear();
        _binding?.Dispose();
        _profiledBinding?.Dispose();
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        if (_ownsAllocator) _allocator?.Dispose();
        _profiled?.Dispose();
        _runOptions.Dispose();
        _session?.Dispose();
    }
}
