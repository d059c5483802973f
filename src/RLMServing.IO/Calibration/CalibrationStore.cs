using System.Text.Json;
using RLMServing.Calibration;
using RLMServing.IO.Results;

namespace RLMServing.IO.Calibration;

/// <summary>Reads and writes calibration/*.json; a bad file is a user error naming it.</summary>
public static class CalibrationStore
{
    public static CalibrationFile Read(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: calibration file not found");
        CalibrationFile? file;
        try { file = JsonSerializer.Deserialize<CalibrationFile>(Files.InputFile.ReadAllText(path)); }
        catch (JsonException e) { throw new UserInputException($"{path}: not a calibration file: {e.Message}"); }
        if (file is null || file.Form != CalibrationFile.FormName)
            throw new UserInputException($"{path}: unsupported calibration form '{file?.Form}' (expected {CalibrationFile.FormName})");
        foreach (var name in IterationCoefficients.Names)
            if (file.Coefficients.TryGetValue(name, out var v) && (v < 0 || !double.IsFinite(v) || v > InputLimits.MaxCalibrationCoefficientUs))
                throw new UserInputException($"{path}: coefficients.{name}: must be a number in [0, {InputLimits.MaxCalibrationCoefficientUs:G3}] µs (docs/limits.md), got {v:G4}");
        foreach (var (phase, table) in file.Residuals ?? [])
            if (phase is not ("prefill" or "decode")) throw new UserInputException($"{path}: residuals.{phase}: unknown phase (prefill, decode)");
            else if (table.Problem() is { } problem) throw new UserInputException($"{path}: residuals.{phase}: {problem}");
        if (file.OperatorTables?.Problem() is { } bad) throw new UserInputException($"{path}: operator_tables.{bad}");
        return file;
    }

    public static void Write(string path, CalibrationFile file)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = TempFiles.For(path);
        try
        {
            File.WriteAllText(tmp, JsonSerializer.Serialize(file, ResultWriter.Json) + "\n");
            File.Move(tmp, path, overwrite: true);
        }
        finally { TempFiles.Delete(tmp); }
    }
}
