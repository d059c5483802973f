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

    /// <summary>Opens a Parquet file for reading, or one clear error naming the file (missing, or not Parquet).</summary>
    public static ParquetReader Open(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: file not found");
        try
        {
            return ParquetReader.CreateAsync(path).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or Parquet.ParquetException)
        {
            throw new UserInputException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
    }

    /// <summary>
    /// A numeric column of one row group as nullable doubles, whatever its numeric type (files written by other tools
    /// use int64, float and nullable columns freely); a non-numeric column is a clear error.
    /// </summary>
    public static double?[] ReadNumbers(string path, ParquetRowGroupReader group, DataField field, int n)
    {
        var type = field.ClrType;
        if (type == typeof(double)) return ReadNumeric<double>(group, field, n, v => v);
        if (type == typeof(float)) return ReadNumeric<float>(group, field, n, v => v);
        if (type == typeof(long)) return ReadNumeric<long>(group, field, n, v => v);
        if (type == typeof(int)) return ReadNumeric<int>(group, field, n, v => v);
        throw new UserInputException($"{path}: column '{field.Name}' has type {type.Name}; expected a number");
    }

    private static double?[] ReadNumeric<T>(ParquetRowGroupReader group, DataField field, int n, Func<T, double> convert) where T : struct
    {
        var result = new double?[n];
        if (field.IsNullable)
        {
            var raw = new T?[n];
            group.ReadAsync<T>(field, raw.AsMemory()).GetAwaiter().GetResult();
            for (int i = 0; i < n; i++) result[i] = raw[i] is T v ? convert(v) : null;
        }
        else
        {
            var raw = new T[n];
            group.ReadAsync<T>(field, raw.AsMemory()).GetAwaiter().GetResult();
            for (int i = 0; i < n; i++) result[i] = convert(raw[i]);
        }
        return result;
    }
}
