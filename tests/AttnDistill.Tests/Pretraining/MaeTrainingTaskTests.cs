using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Runs;
using AttnDistill.Training;
using SkiaSharp;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Pretraining;

public class MaeTrainingTaskTests
{
    static MaeConfig Tiny => new()
    {
        Encoder = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 4, PosEmbed = PosEmbedKind.SinCos },
        DecoderEmbedDim = 32,
        DecoderDepth = 1,
        DecoderNumHeads = 4,
    };

    sealed class Collect : IProgress<TrainProgress>
    {
        public List<TrainProgress> Reports { get; } = new();
        public void Report(TrainProgress value) => Reports.Add(value);
    }

    [Fact]
    public void TrainerLowersTheMaskedReconstructionLossAndItsCheckpointReadsAsATeacher()
    {
        torch.manual_seed(1);
        var task = new MaeTrainingTask(new MaskedAutoencoder(Tiny));
        Assert.Equal("pretrain-mae", task.Kind);
        // Only the two sin-cos tables are left out of the optimizer.
        int trainable = ((ITrainingTask)task).ParameterGroups(0.05).Sum(g => g.Parameters.Count);
        Assert.Equal(task.Model.parameters().Count() - 2, trainable);

        var loader = new DataLoader(new SyntheticImageDataset(64), TransformPresets.Eval(16, 16),
            new DataLoaderOptions { BatchSize = 16, Seed = 2, DropLast = true, Workers = 1 });
        var progress = new Collect();
        string dir = Directory.CreateTempSubdirectory("mae").FullName;
        var result = new Trainer(task, loader,
            new TrainerOptions { Epochs = 8, WarmupEpochs = 1, BatchSize = 16, Lr = 2e-3, LogEverySteps = 4, Seed = 1 },
            new TrainerRun { Context = new RunContext { OutDir = dir, Progress = new TrainingProgressSink(progress) }, TensorBoard = false, ModelConfig = task.Mae.Config.Encoder }).Run();

        double first = progress.Reports.First(r => r.Epoch == 0 && r.Batch == r.BatchesPerEpoch).Loss["mae"];
        double last = result.LastEpochLoss["mae"];
        Assert.True(last < 0.8 * first, $"masked reconstruction loss {first:g4} -> {last:g4}");

        // The run's checkpoint holds encoder.* and decoder keys; read as a backbone it is the encoder.
        using var backbone = CheckpointReader.Read(result.LastCheckpoint!);
        var encoder = task.Mae.Encoder.state_dict();
        Assert.Equal(encoder.Keys.Order(), backbone.Tensors.Keys.Order());
        foreach (var (k, t) in encoder) Assert.True(t.equal(backbone.Tensors[k]).all().item<bool>(), k);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void ReconstructionPictureShowsOriginalMaskedAndReconstructed()
    {
        torch.manual_seed(6);
        using var mae = new MaskedAutoencoder(Tiny);
        mae.train();
        using var scope = NewDisposeScope();
        var mean = new[] { 0.5f, 0.4f, 0.3f };
        var std = new[] { 0.2f, 0.25f, 0.3f };
        var pixels = rand(3, 3, 16, 16);                                        // in [0, 1]
        var images = (pixels - tensor(mean).reshape(1, 3, 1, 1)) / tensor(std).reshape(1, 3, 1, 1);
        var noise = rand(3, 16);
        var rgb = MaeReconstructionPicture.Render(mae, images, mean, std, noise);
        Assert.True(mae.training, "the model's mode is restored");

        int scale = 6, tile = 16 * scale, gap = 2;                             // 16 px enlarged to >= 96
        Assert.Equal(new long[] { 3 * (tile + gap) + gap, 3 * (tile + gap) + gap, 3 }, rgb.shape);
        Assert.Equal(ScalarType.Byte, rgb.dtype);
        for (int row = 0; row < 3; row++)
        {
            var tileOf = (int col) => rgb.narrow(0, gap + row * (tile + gap), tile).narrow(1, gap + col * (tile + gap), tile);
            var expected = (pixels[row].permute(1, 2, 0) * 255).round().to(ScalarType.Byte);
            // Original column: the de-normalized image (every scale-th pixel).
            var original = tileOf(0)[TensorIndex.Slice(0, null, scale), TensorIndex.Slice(0, null, scale)];
            Assert.True((original.to(int32) - expected.to(int32)).abs().max().item<int>() <= 1);
            // Masked column: 12 of 16 patches grey, the rest equal to the original.
            var masked = tileOf(1)[TensorIndex.Slice(0, null, scale), TensorIndex.Slice(0, null, scale)];
            var grey = masked.eq(128).all(-1);                                  // (16, 16)
            Assert.Equal(12 * 16, grey.sum().item<long>());
            // Reconstruction: visible pixels are the original's, pasted.
            var recon = tileOf(2)[TensorIndex.Slice(0, null, scale), TensorIndex.Slice(0, null, scale)];
            var visible = grey.logical_not().unsqueeze(-1);
            Assert.True(((recon.to(int32) - original.to(int32)).abs() * visible).max().item<int>() <= 1);
        }

        string path = Path.Combine(Directory.CreateTempSubdirectory("maepng").FullName, "recon.png");
        MaeReconstructionPicture.Write(mae, images, path, mean, std, noise);
        using var decoded = SKBitmap.Decode(path);
        Assert.Equal((int)rgb.shape[1], decoded.Width);
        Assert.Equal((int)rgb.shape[0], decoded.Height);
        var px = decoded.GetPixel(gap + 5, gap + 7);                            // row 0, original tile, pixel (0, 0) enlarged
        Assert.Equal(rgb[gap + 7, gap + 5, 0].item<byte>(), px.Red);
        Assert.Equal(rgb[gap + 7, gap + 5, 2].item<byte>(), px.Blue);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public void ReconstructionPictureHandlesOneChannelImages()
    {
        torch.manual_seed(8);
        var cfg = Tiny with { Encoder = Tiny.Encoder with { InChans = 1, ImageSize = 28, PatchSize = 7 } };
        using var mae = new MaskedAutoencoder(cfg);
        using var scope = NewDisposeScope();
        var rgb = MaeReconstructionPicture.Render(mae, randn(2, 1, 28, 28), new[] { 0.5f }, new[] { 0.5f });
        Assert.Equal(3, rgb.shape[2]);
        Assert.Equal(2 * (28 * 4 + 2) + 2, rgb.shape[0]);
        Assert.Throws<ArgumentException>(() => MaeReconstructionPicture.Render(mae, randn(2, 1, 28, 28), new[] { 0.5f, 0.5f }, new[] { 0.5f }));
    }
}
