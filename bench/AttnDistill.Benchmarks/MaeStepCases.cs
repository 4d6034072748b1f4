using AttnDistill.Pretraining;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// One MAE pre-training step (workload 3): the real <see cref="MaskedAutoencoder"/> and
/// <see cref="MaeTrainingTask"/> (mask 0.75, norm-pix loss, MaeConfig.For's decoder) driven by the
/// product's <see cref="Trainer"/>; bf16 is the trainer's autocast (<c>--precision bf16</c>).
/// </summary>
public static class MaeStepCases
{
    public static BenchCase Create(BenchShapes shapes, bool bf16, long seed = 0)
    {
        manual_seed(seed);
        var config = MaeConfig.For(shapes.MaeEncoder);
        var mae = new MaskedAutoencoder(config);
        var harness = new TrainingStepHarness(new MaeTrainingTask(mae), shapes.MaeBatch, config.Encoder.ImageSize, seed,
            bf16 ? ComputePrecision.BFloat16 : ComputePrecision.Float32);
        double flops = shapes.MaeBatch * FlopCount.MaeStepPerImage(config);
        return new BenchCase("mae-224", bf16 ? "bf16" : "fp32", flops, shapes.MaeBatch, () => harness.Step(),
            () => { harness.Dispose(); mae.Dispose(); });
    }
}
