using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using AttnDistill.Workflows;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Workflows;

/// <summary>
/// The committed reference teachers (models/, what the quickstart distills from by default): each
/// is found by the quickstart for its image size, is fp16 and at most 8 MB, loads as the ViT its
/// recipe trains, gives finite features, and has the SHA-256 models/README.md records.
/// </summary>
public class ReferenceTeacherTests
{
    public static TheoryData<int, string, int> Teachers => new()
    {
        { 28, "fashion-mnist-dino-", 7 },   // recipes/fashion-mnist-dino-teacher.yaml
        { 32, "cifar10-dino-", 4 },         // recipes/cifar10-dino-teacher.yaml
    };

    [Theory]
    [MemberData(nameof(Teachers))]
    public void TheCommittedTeacherIsFoundLoadsAndMatchesItsRecordedHash(int imageSize, string prefix, int patch)
    {
        string path = Quickstart.ReferenceTeacher(imageSize)
            ?? throw new Xunit.Sdk.XunitException($"no models/{prefix}*.safetensors found from {AppContext.BaseDirectory}");
        Assert.StartsWith(prefix, Path.GetFileName(path));
        Assert.True(new FileInfo(path).Length <= 8 << 20, $"{path}: {new FileInfo(path).Length} bytes");

        var file = SafetensorsFile.Read(path);
        Assert.All(file.Tensors.Values, t => Assert.Equal(ScalarType.Float16, t.dtype));
        foreach (var t in file.Tensors.Values) t.Dispose();

        var (model, config) = VitCheckpointLoader.Load(path);
        using (model)
        {
            Assert.Equal((patch, 192, 4, 3, imageSize), (config.PatchSize, config.EmbedDim, config.Depth, config.NumHeads, config.ImageSize));
            model.eval();
            using var scope = NewDisposeScope();
            manual_seed(0);
            using var _ = no_grad();
            var features = model.forward(randn(2, 3, imageSize, imageSize));
            Assert.Equal(new long[] { 2, 192 }, features.shape);
            Assert.True(features.isfinite().all().item<bool>());
        }

        string readme = File.ReadAllText(Path.Combine(Path.GetDirectoryName(path)!, "README.md"));
        string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
        var recorded = Regex.Match(readme, Regex.Escape(Path.GetFileName(path)) + @"[^\n]*?`([0-9a-f]{64})`");
        Assert.True(recorded.Success, $"models/README.md records no SHA-256 for {Path.GetFileName(path)}");
        Assert.Equal(recorded.Groups[1].Value, sha);
    }
}
