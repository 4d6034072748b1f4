using AttnDistill.Pretraining;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// One MAE pre-training step (workload 3): the real <see cref="MaskedAutoencoder"/> and
/// <see cref="MaeTrainingTask"/> (mask 0.75, norm-pix loss, MaeConfig.For's decoder) driven by the
/// product's <see cref="Trainer"/>.
/// </summary>
public static class MaeStepCases
{
    public static BenchCase Create(BenchShapes shapes, bool bf16, long seed = 0)
    {
        manual_seed(seed);
        var config = MaeConfig.For(shapes.MaeEncoder);
        var mae = new MaskedAutoencoder(config);
        MaskedAutoencoder? copy = null;
        ITrainingTask task = new MaeTrainingTask(mae);
        if (bf16)
        {
            copy = BFloat16Task.CopyInBFloat16(mae, () => new MaskedAutoencoder(config));
            task = new BFloat16Task(new MaeTrainingTask(copy), mae);
        }
        var harness = new TrainingStepHarness(task, shapes.MaeBatch, config.Encoder.ImageSize, seed);
        double flops = shapes.MaeBatch * FlopCount.MaeStepPerImage(config);
        return new BenchCase("mae-224", bf16 ? "bf16" : "fp32", flops, shapes.MaeBatch, () => harness.Step(),
            () => { harness.Dispose(); mae.Dispose(); copy?.Dispose(); });
    }
}
