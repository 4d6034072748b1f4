using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Runs;
using AttnDistill.Training;
using TorchSharp;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Distributed;

/// <summary>A tiny ViT classifier on synthetic 16 px images: the task every data-parallel scenario trains.</summary>
sealed class TinyVitClassifierTask : ITrainingTask
{
    public TinyVitClassifierTask(int seed, double dropPath)
    {
        torch.manual_seed(seed);
        Model = new Net(dropPath);
    }

    public nn.Module Model { get; }
    public string Kind => "test";

    public StepLoss Loss(DataBatch batch)
    {
        var loss = nn.functional.cross_entropy(((Net)Model).forward(batch.Images), batch.Labels);
        return new StepLoss(loss, new Dictionary<string, Tensor> { ["ce"] = loss });
    }

    sealed class Net : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly VisionTransformer backbone;
        private readonly TorchSharp.Modules.Linear head;
#pragma warning restore IDE1006
        public Net(double dropPath) : base("tiny_vit_classifier")
        {
            backbone = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2, DropPathRate = dropPath });
            head = nn.Linear(32, 4);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => head.forward(backbone.forward(x));
    }
}

/// <summary>
/// The data-parallel scenarios, run by each rank under mpirun (<see cref="MpiWorker"/>) and by the
/// test process alone as the reference: the same code, only the context differs.
/// </summary>
static class DataParallelScenarios
{
    public const int B = 8;
    public const int Seed = 5;

    public static DataLoader Loader(int count, int batch, IDistributedContext dist, bool train = true) =>
        new(new SyntheticImageDataset(count), train ? TransformPresets.Train(16, 0.5) : TransformPresets.Eval(16), new DataLoaderOptions
        {
            BatchSize = batch, Seed = 3, DropLast = train, Shuffle = train, Workers = 1, Rank = dist.Rank, WorldSize = dist.WorldSize,
        });

    public static TrainerOptions Options(int epochs, int batch, int effective = 0) => new()
    {
        Epochs = epochs, WarmupEpochs = 0, BatchSize = batch, EffectiveBatch = effective, Lr = 1e-3, LogEverySteps = 1,
        CheckpointEveryEpochs = 100, Seed = Seed,
    };

    /// <summary>Trains a fresh task and returns a copy of its weights.</summary>
    public static Dictionary<string, Tensor> Train(IDistributedContext dist, string outDir, int count, int batch, int effective, int epochs,
        double dropPath = 0, bool resume = false, int initSeed = Seed, CancellationToken stop = default, IProgress<TrainProgress>? progress = null,
        Func<IReadOnlyList<ParameterGroup>, TrainerOptions, double, TorchSharp.Modules.OptimizerHelper>? optimizer = null)
    {
        var task = new TinyVitClassifierTask(initSeed, dropPath);
        Last = new Trainer(task, Loader(count, batch, dist), Options(epochs, batch, effective), new TrainerRun
        { Context = new RunContext { OutDir = outDir, Distributed = dist, Stop = stop, Progress = progress is null ? SilentProgress.Instance : new TrainingProgressSink(progress) }, TensorBoard = false, Resume = resume }, optimizer).Run();
        return Weights(task.Model);
    }

    /// <summary>The result of the last <see cref="Train"/> call.</summary>
    public static TrainResult? Last { get; private set; }

    /// <summary>Plain SGD: the update is lr x the averaged gradient, so it shows the averaging itself (Adam rescales noise, see TrainerTests).</summary>
    public static TorchSharp.Modules.OptimizerHelper Sgd(IReadOnlyList<ParameterGroup> groups, TrainerOptions opt, double lr) =>
        optim.SGD(groups.SelectMany(g => g.Parameters.Select(p => p.Param)), lr);

    /// <summary>Features of a 37-image set (not a multiple of the ranks: exercises the shard padding).</summary>
    public static Dictionary<string, Tensor> Features(IDistributedContext dist)
    {
        torch.manual_seed(Seed);
        using var vit = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2 });
        using var set = FeatureExtractor.Extract(vit, Loader(37, 5, dist, train: false), dist: dist);
        return new Dictionary<string, Tensor> { ["features"] = set.Features.clone(), ["labels"] = set.Labels.clone(), ["indices"] = set.Indices.clone() };
    }

    public static Dictionary<string, Tensor> Weights(nn.Module m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    public static void Save(Dictionary<string, Tensor> tensors, string path) => SafetensorsFile.Write(path, tensors);

    public static Dictionary<string, Tensor> Load(string path) => new(SafetensorsFile.Read(path).Tensors);
}
