using Parquet;
using Parquet.Schema;

namespace RLMServing.IO.ParquetFiles;

/// <summary>Typed column writes and reads over Parquet.Net's row-group API, so writers stay one line per column.</summary>
public static class ParquetColumns
{
    /// <summary>
    /// Options for every Parquet file rlms writes, in one place: Snappy, and whether a column is dictionary-encoded
    /// decided on a sample of its values rather than by hashing all of them (a million unique latencies hashed only
    /// to learn that a dictionary does not pay; encoding nine million-row columns took half the time in isolation).
    /// Columns of few distinct values (status, replica) still show it in the sample; the files written are the same.
    /// </summary>
    public static ParquetOptions WriterOptions() => new() { CompressionMethod = CompressionMethod.Snappy, DictionaryEncodingSampleSize = 1000 };

    /// <summary>
    /// Writes one Parquet file of one row group: the file, the writer with <see cref="WriterOptions"/>, the run's
    /// metadata and the row group, then <paramref name="columns"/> writes the columns in schema order.
    /// </summary>
    public static async Task WriteFileAsync(string path, ParquetSchema schema, IReadOnlyDictionary<string, string> metadata,
        Func<ParquetRowGroupWriter, Task> columns)
    {
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, stream, WriterOptions());
        writer.CustomMetadata = new Dictionary<string, string>(metadata);
        using var g = writer.CreateRowGroup();
        await columns(g);
    }

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

    /// <summary>Largest footer (file metadata) read: 64 MiB, hundreds of times what a trace of millions of rows carries.</summary>
    public const int MaxFooterBytes = 64 << 20;

    /// <summary>Opens a Parquet file for reading, or one clear error naming the file (missing, or not Parquet).</summary>
    public static ParquetReader Open(string path)
    {
        CheckFile(path);
        return Guard(path, () => ParquetReader.CreateAsync(path).GetAwaiter().GetResult());
    }

    /// <summary>
    /// Checks what a Parquet reader trusts before it allocates: a regular file that starts and ends with the PAR1
    /// magic and whose footer length fits inside the file and <see cref="MaxFooterBytes"/> (a 28-byte file claiming a
    /// 2 GiB footer would otherwise be read as one).
    /// </summary>
    public static void CheckFile(string path)
    {
        Files.InputFile.CheckRegular(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long size = stream.Length;
        if (size < 12) throw new UserInputException($"{path}: not a readable Parquet file ({size} bytes; a Parquet file has at least 12)");
        Span<byte> head = stackalloc byte[4], tail = stackalloc byte[8];
        stream.ReadExactly(head);
        stream.Seek(-8, SeekOrigin.End);
        stream.ReadExactly(tail);
        if (!head.SequenceEqual("PAR1"u8) || !tail[4..].SequenceEqual("PAR1"u8))
            throw new UserInputException($"{path}: not a readable Parquet file (no PAR1 magic at its start and end)");
        long footer = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(tail);
        if (footer <= 0 || footer > size - 12)
            throw new UserInputException($"{path}: not a readable Parquet file (its footer claims {footer:N0} bytes, the file has {size:N0})");
        if (footer > MaxFooterBytes)
            throw new UserInputException($"{path}: a Parquet footer of {footer:N0} bytes; at most {MaxFooterBytes:N0} are read (docs/limits.md)");
    }

    /// <summary>
    /// Runs a read of a checked file and turns whatever a corrupt file makes the reader throw (Thrift protocol errors,
    /// bad pages, truncated column chunks) into one line naming the file.
    /// </summary>
    public static T Guard<T>(string path, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is not UserInputException and not OutOfMemoryException and not OperationCanceledException)
        {
            throw new UserInputException($"{path}: not a readable Parquet file ({Files.ErrorText.Clip(e.Message.ReplaceLineEndings(" "), 120)})", e);
        }
    }

    /// <summary><see cref="Guard{T}(string, Func{T})"/> for asynchronous reads.</summary>
    public static async Task<T> GuardAsync<T>(string path, Func<Task<T>> read)
    {
        try { return await read(); }
        catch (Exception e) when (e is not UserInputException and not OutOfMemoryException and not OperationCanceledException)
        {
            throw new UserInputException($"{path}: not a readable Parquet file ({Files.ErrorText.Clip(e.Message.ReplaceLineEndings(" "), 120)})", e);
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
