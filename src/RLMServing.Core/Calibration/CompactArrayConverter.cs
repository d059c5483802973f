using System.Text.Json;
using System.Text.Json.Serialization;

namespace RLMServing.Calibration;

/// <summary>
/// Writes a numeric array on one line even in an indented file: operator tables hold tens of thousands of numbers,
/// one per line they would make a calibration file 100,000 lines long.
/// </summary>
public sealed class CompactArrayConverter<T> : JsonConverter<T[]>
{
    public override T[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonSerializer.Deserialize<T[]>(ref reader) ?? [];

    public override void Write(Utf8JsonWriter writer, T[] value, JsonSerializerOptions options) =>
        writer.WriteRawValue(JsonSerializer.Serialize(value), skipInputValidation: true);
}
