using System.Text.Json.Nodes;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Evaluation;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using AttnDistill.Runs;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

/// <summary>`--checkpoint pixels`: the identity backbone (the evaluation view's normalized pixels, flattened) through the same k-NN and probe code.</summary>
public class PixelFloorTests
{
    static readonly Lazy<string> Folder = new(() => SyntheticImageFolder.Write(trainPerClass: 12, testPerClass: 5));

    /// <summary>Split of the folder through the eval transform, flattened by hand: [N, 3*S*S] and labels.</summary>
    static (Tensor X, Tensor Y) Pixels(DataSplit split, int size)
    {
        var ds = DatasetFactory.Open(Folder.Value, split);
        var loader = new DataLoader(ds, TransformPresets.Eval(size), new DataLoaderOptions { BatchSize = 7, Shuffle = false, Workers = 0 });
        var xs = new List<Tensor>();
        var ys = new List<Tensor>();
        foreach (var b in loader.Epoch(0, 0))
        {
            xs.Add(b.Images.reshape(b.Images.shape[0], -1).clone());
            ys.Add(tensor(b.Indices.Select(i => (long)ds.Label(i)).ToArray()));
        }
        return (cat(xs, 0), cat(ys, 0));
    }

    [Fact]
    public void KnnOfPixelsEqualsADirectWeightedVote()
    {
        const int size = 16, k = 5;
        const double t = 0.07;
        string outDir = Directory.CreateTempSubdirectory("pixels-knn").FullName, cache = Path.Combine(outDir, "cache");
        var cfg = new KnnJobConfig { Checkpoint = EvaluatedBackbone.Pixels, DataRoot = Folder.Value, ImageSize = size, Ks = new[] { k }, BatchSize = 16, FeatureCacheDir = cache };
        var result = KnnJob.Run(cfg, RunContext.Cpu(outDir))[0];

        // DINO's vote written out: cosine similarities, top k, weights exp(s / T), class with the largest sum.
        var (trainX, trainY) = Pixels(DataSplit.Train, size);
        var (testX, testY) = Pixels(DataSplit.Val, size);
        Assert.Equal(3 * size * size, trainX.shape[1]);
        var sim = nn.functional.normalize(testX, dim: 1).matmul(nn.functional.normalize(trainX, dim: 1).t());
        var (top, idx) = sim.topk(k, dim: 1);
        var votes = zeros(testX.shape[0], 4).scatter_add_(1, trainY[idx], (top / t).exp());
        double direct = votes.argmax(1).eq(testY).to(ScalarType.Float32).mean().item<float>() * 100;
        Assert.Equal(direct, result.Top1, 3);

        // Cached under a key of its own, read back equal, and recorded as the pixel floor.
        Assert.Equal(2, Directory.GetFiles(cache, "features-*.pt").Length);
        Assert.Equal(result.Top1, KnnJob.Run(cfg, RunContext.Cpu(outDir))[0].Top1);
        var setup = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!["knn_setup"]!;
        Assert.Equal("pixels", setup["checkpoint"]!.GetValue<string>());
        Assert.Equal(Path.GetFullPath(Folder.Value), setup["data"]!.GetValue<string>());
    }

    [Fact]
    public void LinearProbeOfPixelsRunsAndAProjectorLayerIsRefused()
    {
        var result = LinearJob.Run(new LinearJobConfig
        {
            Checkpoint = EvaluatedBackbone.Pixels, DataRoot = Folder.Value, ImageSize = 16, Augment = false,
            Trainer = new TrainerOptions { Epochs = 3, WarmupEpochs = 1, BatchSize = 16 }, BaseLrs = new[] { 1.0, 10.0 },
        }, RunContext.Cpu(Directory.CreateTempSubdirectory("pixels-linear").FullName));
        Assert.Equal(2, result.Sweep.Count);
        var ex = Assert.Throws<ArgumentException>(() => EvaluatedBackbone.Load(EvaluatedBackbone.Pixels, 16, layer: 1));
        Assert.Contains("--eval-layer", ex.Message);
    }
}
