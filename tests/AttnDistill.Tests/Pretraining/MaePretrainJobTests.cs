using System.Text.Json.Nodes;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using SkiaSharp;
using AttnDistill.Runs;
using Xunit;

namespace AttnDistill.Tests.Pretraining;

public class MaePretrainJobTests
{
    [Fact]
    public void WritesReconstructionPicturesEveryNEpochsAndATeacherDistillCanLoad()
    {
        string root = SyntheticImageFolder.Write(trainPerClass: 16, testPerClass: 4);
        string outDir = Directory.CreateTempSubdirectory("mae-job").FullName;
        var encoder = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2, PosEmbed = PosEmbedKind.SinCos };
        var result = MaePretrainJob.Run(new MaePretrainJobConfig
        {
            DataRoot = root, Mae = MaeConfig.For(encoder) with { DecoderEmbedDim = 32, DecoderDepth = 1, DecoderNumHeads = 2 },
            Trainer = new TrainerOptions { Epochs = 3, WarmupEpochs = 1, BatchSize = 16, Lr = 1e-3 },
            PictureEvery = 2, PictureImages = 3,
        }, RunContext.Cpu(outDir) with { ConfigText = "test" });
        // Every 2nd epoch and after the last.
        Assert.Equal(new[] { "reconstruction-0002.png", "reconstruction-0003.png" },
            Directory.GetFiles(outDir, "reconstruction-*.png").Select(Path.GetFileName).Order().ToArray());
        using var png = SKBitmap.Decode(Path.Combine(outDir, "reconstruction-0003.png"));
        // Three rows (images) of three tiles (original, masked, reconstruction), each enlarged to >= 96 px.
        Assert.Equal(png.Width, png.Height);
        Assert.True(png.Width >= 3 * MaeReconstructionPicture.MinTileSize, $"{png.Width} px wide");
        var (teacher, cfg) = VitCheckpointLoader.Load(result.TeacherPath);
        using var _ = teacher;
        Assert.Equal(PosEmbedKind.SinCos, cfg.PosEmbed);
        Assert.NotNull(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!["pretrain_mae"]);
    }
}
