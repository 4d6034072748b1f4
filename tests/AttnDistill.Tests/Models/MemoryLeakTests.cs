using AttnDistill.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Models;

[CollectionDefinition(nameof(ProcessWideMeasurements), DisableParallelization = true)]
public class ProcessWideMeasurements { }

// Resident memory is a process-wide figure: run alone, not beside other tests.
[Collection(nameof(ProcessWideMeasurements))]
public class MemoryLeakTests
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    /// <summary>
    /// VmRSS after returning the allocator's free pages to the OS: what live tensors and objects
    /// hold. Without the trim, glibc's arenas keep growing slowly while they warm up, which is not
    /// a leak and would hide or fake one.
    /// </summary>
    public static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        MallocTrim(0);
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:"));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    [Fact]
    public void TwoHundredTrainingStepsDoNotGrowResidentMemory()
    {
        using var m = new VisionTransformer(new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 96, Depth = 3, NumHeads = 3 });
        using var opt = optim.AdamW(m.parameters(), lr: 1e-4);
        long afterWarmup = 0;
        var trace = new List<long>();
        for (int step = 0; step < 200; step++)
        {
            using (var scope = NewDisposeScope())
            {
                var x = randn(8, 3, 32, 32);
                var f = m.ForwardFeatures(x, AttentionRequest.LastBlock, valueNorms: true);
                var loss = m.Norm.forward(f.Hidden).select(1, 0).pow(2).mean() - f.Attention[0].ClsAttention.log().mean();
                opt.zero_grad();
                loss.backward();
                opt.step();
            }
            if (step % 20 == 19) trace.Add(ResidentBytes() >> 20);
            if (step == 19) { GC.Collect(); GC.WaitForPendingFinalizers(); afterWarmup = ResidentBytes(); }
        }
        GC.Collect(); GC.WaitForPendingFinalizers();
        long end = ResidentBytes();
        Assert.True(end < afterWarmup * 1.05, $"RSS grew from {afterWarmup >> 20} MiB to {end >> 20} MiB over 180 steps; trace {string.Join(",", trace)} MiB");
    }
}
