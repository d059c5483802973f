using Parquet;
using Parquet.Schema;

namespace RLMServing.IO.ParquetFiles;

/// <summary>Typed column writes and reads over Parquet.Net's row-group API, so writers stay one line per column.</summary>
public static class ParquetColumns
{
    public static Task Write<T>(this ParquetRowGroupWriter g, DataField field, T[] values) where T : struct =>
        g.WriteAsync(field, (ReadOnlyMemory<T>)values);

    public static Task WriteNullable<T>(this ParquetRowGroupWriter g, DataField field, T?[] values) where T : struct =>
        g.WriteAsync(field, (ReadOnlyMemory<T?>)values);

    public static Task WriteStrings(this ParquetRowGroupWriter g, DataField field, string?[] values) =>
        g.WriteAsync(field, values!);

    public static async Task<T[]> Read<T>(this ParquetRowGroupReader g, DataField field) where T : struct
    {
        var a = new T[g.RowCount];
        await g.ReadAsync(field, (Memory<T>)a);
        return a;
    }

    public static async Task<T?[]> ReadNullable<T>(this ParquetRowGroupReader g, DataField field) where T : struct
    {
        var a = new T?[g.RowCount];
        await g.ReadAsync(field, (Memory<T?>)a);
        return a;
    }

    public static async Task<string?[]> ReadStrings(this ParquetRowGroupReader g, DataField field)
    {
        var a = new string?[g.RowCount];
        await g.ReadAsync(field, (Memory<string?>)a);
        return a;
    }

    /// <summary>The file's field of that name, or a clear error naming the file and the missing column.</summary>
    public static DataField Field(this ParquetReader reader, string name, string path) =>
        reader.Schema.DataFields.FirstOrDefault(f => f.Name == name)
        ?? throw new UserInputException($"{path}: missing column '{name}'");

    public static DataField? OptionalField(this ParquetReader reader, string name) =>
        reader.Schema.DataFields.FirstOrDefault(f => f.Name == name);
}
