using RLMServing.IO.Scenarios;
using RLMServing.Tests.Simulation;
using Xunit;

namespace RLMServing.Tests.Scenarios;

public class ScenarioInputsTests
{
    private static string RepositoryFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RLMServing.sln"))) dir = dir.Parent;
        return Path.Combine([dir!.FullName, .. parts]);
    }

    [Fact]
    public void ACalibrationIsReadOnceForEveryBindingThatSharesTheInputs()
    {
        var inputs = new ScenarioInputs(TestScenarios.Catalog);
        string path = RepositoryFile("calibration", "cpu-tiny-tp1.json");
        Assert.Same(inputs.Calibration(path), inputs.Calibration(path));
        // Two bindings of a calibrated scenario through the same inputs hold the very same calibration.
        string scenario = RepositoryFile("scenarios", "fidelity-cpu.yaml");
        var file = ScenarioLoader.Load(scenario);
        var a = ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, inputs);
        var b = ScenarioLoader.Bind((RLMServing.IO.Scenarios.ConfigMap)file.Runs[0].Tree.Clone(), file.Path, inputs);
        Assert.Same(a.CostModel.Calibration, b.CostModel.Calibration);
    }

    [Fact]
    public void AFileThatFailsToReadIsReportedAgainNotRemembered()
    {
        var inputs = new ScenarioInputs(TestScenarios.Catalog);
        string path = Path.Combine(Path.GetTempPath(), $"rlms-missing-{Guid.NewGuid():N}.json");
        Assert.Throws<UserInputException>(() => inputs.Calibration(path));
        File.Copy(RepositoryFile("calibration", "cpu-tiny-tp1.json"), path);
        try { Assert.Equal("tiny", inputs.Calibration(path).Model); }
        finally { File.Delete(path); }
    }
}
