using Google.Protobuf;

namespace RLMServing.Profiling.Onnx;

/// <summary>
/// One protobuf message under construction. Nested messages are built bottom-up and embedded as length-delimited
/// fields, which is all the ONNX writer needs; field numbers come from the public onnx.proto.
/// </summary>
internal sealed class ProtoMessage
{
    private readonly MemoryStream _buffer = new();
    private readonly CodedOutputStream _out;

    public ProtoMessage() => _out = new CodedOutputStream(_buffer, leaveOpen: true);

    public ProtoMessage Int64(int field, long value)
    {
        _out.WriteTag(field, WireFormat.WireType.Varint);
        _out.WriteInt64(value);
        return this;
    }

    public ProtoMessage Float(int field, float value)
    {
        _out.WriteTag(field, WireFormat.WireType.Fixed32);
        _out.WriteFloat(value);
        return this;
    }

    public ProtoMessage String(int field, string value)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteString(value);
        return this;
    }

    public ProtoMessage Bytes(int field, ReadOnlySpan<byte> value)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteBytes(ByteString.CopyFrom(value));
        return this;
    }

    public ProtoMessage Message(int field, ProtoMessage message) => Bytes(field, message.ToArray());

    public ProtoMessage PackedInt64(int field, IReadOnlyList<long> values)
    {
        var inner = new ProtoMessage();
        foreach (var v in values) { inner._out.WriteInt64(v); }
        return Bytes(field, inner.ToArray());
    }

    public ProtoMessage PackedFloat(int field, IReadOnlyList<float> values)
    {
        var inner = new ProtoMessage();
        foreach (var v in values) { inner._out.WriteFloat(v); }
        return Bytes(field, inner.ToArray());
    }

    public byte[] ToArray()
    {
        _out.Flush();
        return _buffer.ToArray();
    }
}
