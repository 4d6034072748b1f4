using AttnDistill.Tests.TestSupport;
using Xunit;
using Xunit.Abstractions;

namespace AttnDistill.Tests.Reliability;

public class KillAndResumeTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void KilledAndSignalledRunsResumeToTheUninterruptedWeightsBitForBit()
    {
        RealData.RequireFashionMnist();
        // bench/soak/kill runs the same harness with more kills on a longer run.
        var outcome = new KillHarness(new KillHarness.Settings
        {
            CliDll = Path.Combine(AppContext.BaseDirectory, "attndistill.dll"),
            WorkDir = Directory.CreateTempSubdirectory("kill").FullName,
            Images = 256, Epochs = 3, BatchSize = 32, Kills = 3, Signals = 2, MidWriteEvery = 2,
            Log = output.WriteLine,
        }).Run();
        output.WriteLine(outcome.ToString());
        Assert.Equal(new[] { 143, 130 }, outcome.SignalExitCodes);
        Assert.Empty(outcome.Unreadable);
        Assert.True(outcome.FinalWeightsEqual, outcome.Detail);
        Assert.Equal(3, outcome.Kills);
    }
}
