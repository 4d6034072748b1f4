using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Models;
using AttnDistill.Runs;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// The real <c>--resume</c> path (<see cref="Trainer"/> with Resume) on a run small enough to
/// repeat thousands of times: an 8-pixel ViT of width 8, 16 synthetic images, batches of 4 (4 per
/// epoch), 2 epochs. A crafted checkpoint is only meaningful where the trainer reads it: the file
/// format alone accepts any section that is valid JSON.
/// </summary>
public static class ResumeProbe
{
    public const int Epochs = 2, BatchesPerEpoch = 4;

    public static VitConfig Config => new() { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2 };

    /// <summary>A loss on the backbone's features: enough for gradients and an optimizer state.</summary>
    sealed class FeatureTask : ITrainingTask
    {
        public FeatureTask()
        {
            manual_seed(5);
            Model = new VisionTransformer(Config);
        }

        public nn.Module Model { get; }
        public string Kind => "fuzz";

        public StepLoss Loss(DataBatch batch)
        {
            var loss = ((VisionTransformer)Model).forward(batch.Images).pow(2).mean();
            return new StepLoss(loss, new Dictionary<string, Tensor> { ["l2"] = loss });
        }
    }

    /// <summary>The probe's trainer over <paramref name="outDir"/>, not yet run: its optimizer has the groups a resume loads into.</summary>
    public static Trainer Make(string outDir, bool resume, int? stopAfter) => new(new FeatureTask(),
        new DataLoader(new SyntheticImageDataset(16, size: 8), TransformPresets.Eval(8), new DataLoaderOptions { BatchSize = 4, Seed = 1, DropLast = true, Workers = 0 }),
        new TrainerOptions { Epochs = Epochs, WarmupEpochs = 0, BatchSize = 4, Lr = 1e-3, LogEverySteps = 100, Seed = 1, CheckpointHistory = 1 },
        new TrainerRun { Context = new RunContext { OutDir = outDir }, ModelConfig = Config, Resume = resume, TensorBoard = false, StopAfterEpochs = stopAfter });

    /// <summary>Trains one epoch of the two in <paramref name="dir"/> and returns its checkpoint (epoch 1, step 0, every section).</summary>
    public static string WriteSeed(string dir)
    {
        Make(dir, resume: false, stopAfter: 1).Run();
        return CheckpointFiles.List(dir)[0];
    }

    /// <summary>Resumes the run in <paramref name="dir"/> (its newest checkpoint) to the end.</summary>
    public static void Resume(string dir) => Make(dir, resume: true, stopAfter: null).Run();
}
