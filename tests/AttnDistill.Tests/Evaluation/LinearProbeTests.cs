using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using TorchSharp;
using AttnDistill.Tests.TestSupport;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

public class LinearProbeTests
{
    internal static VisionTransformer TinyVit()
    {
        torch.manual_seed(7);
        return new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2 });
    }

    internal static DataLoader Loader(IImageDataset ds, bool shuffle = false, int batch = 32) =>
        new(ds, TransformPresets.Eval(16), new DataLoaderOptions { BatchSize = batch, Shuffle = shuffle, Workers = 0, Seed = 3 });

    [Fact]
    public void Linear_probe_on_frozen_random_vit_features_of_a_separable_set_exceeds_95_percent()
    {
        using var scope = NewDisposeScope();
        using var vit = TinyVit();
        using var train = FeatureExtractor.Extract(vit, Loader(new ClassTemplateDataset(600, 10, seed: 1)));
        using var test = FeatureExtractor.Extract(vit, Loader(new ClassTemplateDataset(200, 10, seed: 2)));
        var options = new LinearProbeOptions { Epochs = 30, WarmupEpochs = 3, BatchSize = 64, BaseLrs = new[] { 0.1, 1.0, 10.0 } };
        var result = LinearProbe.TrainOnFeatures(train, test, 10, options);
        Assert.Equal(3, result.Sweep.Count);
        Assert.Equal(result.Sweep.Max(r => r.Top1), result.Best.Top1);
        Assert.True(result.Best.Top1 > 95, $"best linear-probe top-1 {result.Best.Top1}% (sweep: {string.Join(", ", result.Sweep.Select(r => $"{r.BaseLr}: {r.Top1}"))})");
        Assert.Equal(0.1 * 64 / 256, result.Sweep[0].Lr, 12);

        // The same features through k-NN: also far above chance.
        var knn = Knn.Classify(train.Features, train.Labels, test.Features, test.Labels, 10, ks: new[] { 10, 20 });
        Assert.All(knn, r => Assert.True(r.Top1 > 50, $"k={r.K}: {r.Top1}%"));
    }

    [Fact]
    public void Head_is_mae_batchnorm_without_affine_then_linear()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(0);
        using var head = new LinearProbeHead(64, 100);
        var keys = head.state_dict().Keys.Order().ToArray();
        Assert.Equal(new[] { "0.num_batches_tracked", "0.running_mean", "0.running_var", "1.bias", "1.weight" }, keys);
        Assert.Equal(2, head.parameters().Count());
        double std = head.Linear.weight!.std().item<float>();
        Assert.InRange(std, 0.009, 0.011);
        Assert.Equal(0f, head.Linear.bias!.abs().max().item<float>());
    }

    [Fact]
    public void Sweep_heads_get_only_their_own_gradient()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(0);
        using var sweep = new LinearProbeSweep(8, 3, new[] { 0.1, 0.2 });
        var x = randn(16, 8);
        var y = randint(0, 3, new long[] { 16 }, dtype: ScalarType.Int64);
        sweep.Loss(x, y).backward();
        var joint = sweep.Heads[1].Linear.weight!.grad!.clone();
        sweep.zero_grad();
        nn.functional.cross_entropy(sweep.Heads[1].forward(x), y).backward();
        Assert.True(joint.allclose(sweep.Heads[1].Linear.weight!.grad!, rtol: 1e-5, atol: 1e-7));
        var groups = sweep.ParameterGroups(referenceBaseLr: 0.1);
        Assert.Equal(new[] { 1.0, 2.0 }, groups.Select(g => Math.Round(g.LrScale, 12)));
        Assert.All(groups, g => Assert.Equal(0.0, g.WeightDecay));
    }

    [Fact]
    public void Options_reject_bad_sweeps()
    {
        Assert.Throws<ArgumentException>(() => new LinearProbeOptions { BaseLrs = Array.Empty<double>() }.Validate());
        Assert.Throws<ArgumentException>(() => new LinearProbeOptions { BaseLrs = new[] { 0.1, -1 } }.Validate());
        Assert.Throws<ArgumentException>(() => new LinearProbeOptions { WarmupEpochs = 100, Epochs = 90 }.Validate());
        Assert.Equal(0.1 * 1024 / 256, new LinearProbeOptions { BatchSize = 1024 }.PeakLr(0.1), 12);
    }
}
