namespace RLMServing.Profiling.Onnx;

/// <summary>ONNX tensor element types (TensorProto.DataType values) that the harness uses.</summary>
public enum OnnxType
{
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    BFloat16 = 16,
}

/// <summary>One dimension of a declared input or output: a fixed size or a symbolic name.</summary>
public readonly record struct Dim(long? Value, string? Param)
{
    public static implicit operator Dim(long value) => new(value, null);
    public static implicit operator Dim(int value) => new(value, null);
    public static implicit operator Dim(string param) => new(null, param);
    public override string ToString() => Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Param ?? "?";
}

/// <summary>A declared graph input or output.</summary>
public sealed record ValueInfo(string Name, OnnxType Type, IReadOnlyList<Dim> Shape);

/// <summary>A node attribute value: int, float, string, ints or floats (the kinds the synthesised graphs need).</summary>
public sealed record OnnxAttribute(string Name, object Value);

/// <summary>One graph node.</summary>
public sealed record OnnxNode(string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, string Name, string Domain,
    IReadOnlyList<OnnxAttribute> Attributes);

/// <summary>A small constant stored in the model file (shapes, axes, scalars); never a weight.</summary>
public sealed record OnnxConstant(string Name, OnnxType Type, IReadOnlyList<long> Dims, long[]? Int64s, float[]? Floats, int[]? Int32s,
    byte[]? Raw = null);

/// <summary>
/// Builds an ONNX model in memory and serialises it with the project's own protobuf writer. Weights are never stored
/// here: they are graph inputs that the runner allocates once on the device and fills with random values, so a
/// 70B-class layer's graph is a few kilobytes.
/// </summary>
public sealed class GraphBuilder(string name)
{
    public const string MicrosoftDomain = "com.microsoft";
    public const long IrVersion = 8;
    public const long DefaultOpset = 17;

    private readonly List<OnnxNode> _nodes = [];
    private readonly List<ValueInfo> _inputs = [];
    private readonly List<ValueInfo> _outputs = [];
    private readonly List<OnnxConstant> _constants = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _counter;

    public string Name { get; } = name;
    public IReadOnlyList<ValueInfo> Inputs => _inputs;
    public IReadOnlyList<ValueInfo> Outputs => _outputs;
    public IReadOnlyList<OnnxNode> Nodes => _nodes;

    public string Input(string name, OnnxType type, params Dim[] shape)
    {
        Claim(name);
        _inputs.Add(new ValueInfo(name, type, shape));
        return name;
    }

    public void Output(string name, OnnxType type, params Dim[] shape) => _outputs.Add(new ValueInfo(name, type, shape));

    public string ConstInt64(string hint, params long[] values) => ConstInt64Shaped(hint, [values.Length], values);

    public string ScalarInt64(string hint, long value) => ConstInt64Shaped(hint, [], [value]);

    private string ConstInt64Shaped(string hint, long[] dims, long[] values)
    {
        var n = Fresh(hint);
        _constants.Add(new OnnxConstant(n, OnnxType.Int64, dims, values, null, null));
        return n;
    }

    /// <summary>A float tensor stored in the file (raw little-endian data): for small self-contained test models.</summary>
    public string InitializerFloat(string name, long[] dims, float[] values)
    {
        Claim(name);
        var raw = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw_data is little-endian");
        _constants.Add(new OnnxConstant(name, OnnxType.Float, dims, null, null, null, raw));
        return name;
    }

    public string ScalarFloat(string hint, float value)
    {
        var n = Fresh(hint);
        _constants.Add(new OnnxConstant(n, OnnxType.Float, [], null, [value], null));
        return n;
    }

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Op(string opType, string[] inputs, string? output = null, string domain = "", params OnnxAttribute[] attributes) =>
        output is null ? OpMulti(opType, inputs, 1, domain, attributes)[0] : OpMulti(opType, inputs, new string?[] { output }, domain, attributes)[0];

    public string[] OpMulti(string opType, string[] inputs, int outputCount, string domain = "", params OnnxAttribute[] attributes) =>
        OpMulti(opType, inputs, Enumerable.Range(0, outputCount).Select(_ => (string?)null).ToArray(), domain, attributes);

    public string[] OpMulti(string opType, string[] inputs, string?[] outputs, string domain = "", params OnnxAttribute[] attributes)
    {
        var outs = outputs.Select(o => o is null ? Fresh(opType.ToLowerInvariant()) : Claim(o)).ToArray();
        _nodes.Add(new OnnxNode(opType, inputs, outs, Fresh("n_" + opType), domain, attributes));
        return outs;
    }

    public static OnnxAttribute Attr(string name, object value) => new(name, value);

    private string Fresh(string hint)
    {
        string n;
        do { n = $"{hint}_{_counter++}"; } while (_names.Contains(n));
        return Claim(n);
    }

    private string Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"graph '{Name}': name '{name}' is used twice");
        return name;
    }

    /// <summary>Serialises the model (ModelProto) with opset imports for the default and com.microsoft domains.</summary>
    public byte[] ToModelBytes(long opset = DefaultOpset)
    {
        var graph = new ProtoMessage();
        foreach (var node in _nodes) graph.Message(1, NodeProto(node));
        graph.String(2, Name);
        foreach (var c in _constants) graph.Message(5, TensorProto(c));
        foreach (var i in _inputs) graph.Message(11, ValueInfoProto(i));
        foreach (var o in _outputs) graph.Message(12, ValueInfoProto(o));

        var model = new ProtoMessage()
            .Int64(1, IrVersion)
            .String(2, "rlms-profile")
            .String(3, typeof(GraphBuilder).Assembly.GetName().Version?.ToString() ?? "0")
            .Message(7, graph)
            .Message(8, new ProtoMessage().String(1, "").Int64(2, opset))
            .Message(8, new ProtoMessage().String(1, MicrosoftDomain).Int64(2, 1));
        return model.ToArray();
    }

    private static ProtoMessage NodeProto(OnnxNode n)
    {
        var m = new ProtoMessage();
        foreach (var i in n.Inputs) m.String(1, i);
        foreach (var o in n.Outputs) m.String(2, o);
        m.String(3, n.Name).String(4, n.OpType);
        foreach (var a in n.Attributes) m.Message(5, AttributeProto(a));
        if (n.Domain.Length > 0) m.String(7, n.Domain);
        return m;
    }

    // AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, type=20 (FLOAT=1, INT=2, STRING=3, FLOATS=6, INTS=7).
    private static ProtoMessage AttributeProto(OnnxAttribute a)
    {
        var m = new ProtoMessage().String(1, a.Name);
        switch (a.Value)
        {
            case int i: m.Int64(3, i).Int64(20, 2); break;
            case long l: m.Int64(3, l).Int64(20, 2); break;
            case float f: m.Float(2, f).Int64(20, 1); break;
            case double d: m.Float(2, (float)d).Int64(20, 1); break;
            case string s: m.Bytes(4, System.Text.Encoding.UTF8.GetBytes(s)).Int64(20, 3); break;
            case long[] ls: m.PackedInt64(8, ls).Int64(20, 7); break;
            case float[] fs: m.PackedFloat(7, fs).Int64(20, 6); break;
            default: throw new ArgumentException($"attribute '{a.Name}': unsupported value type {a.Value.GetType().Name}");
        }
        return m;
    }

    // TensorProto: dims=1, data_type=2, float_data=4, int32_data=5, int64_data=7, name=8, raw_data=9.
    private static ProtoMessage TensorProto(OnnxConstant c)
    {
        var m = new ProtoMessage().PackedInt64(1, c.Dims).Int64(2, (long)c.Type);
        if (c.Floats is not null) m.PackedFloat(4, c.Floats);
        if (c.Int64s is not null) m.PackedInt64(7, c.Int64s);
        if (c.Int32s is not null) m.PackedInt64(5, c.Int32s.Select(v => (long)v).ToArray());
        m.String(8, c.Name);
        if (c.Raw is not null) m.Bytes(9, c.Raw);
        return m;
    }

    // ValueInfoProto: name=1, type=2; TypeProto.tensor_type=1; Tensor: elem_type=1, shape=2; Shape.dim=1; Dim: value=1, param=2.
    private static ProtoMessage ValueInfoProto(ValueInfo v)
    {
        var shape = new ProtoMessage();
        foreach (var d in v.Shape)
            shape.Message(1, d.Value is long value ? new ProtoMessage().Int64(1, value) : new ProtoMessage().String(2, d.Param!));
        var tensor = new ProtoMessage().Int64(1, (long)v.Type).Message(2, shape);
        return new ProtoMessage().String(1, v.Name).Message(2, new ProtoMessage().Message(1, tensor));
    }
}
