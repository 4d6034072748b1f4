using System.CommandLine;
using AttnDistill.Evaluation;

namespace AttnDistill.Cli.Commands;

/// <summary>Options shared by knn, linear and finetune: what to evaluate, on which data, with which labels.</summary>
public sealed class EvaluationOptionSet
{
    public readonly Option<string> Config = new(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names); flags given here override it." };
    public readonly Option<string> Data = new("--data") { Description = "Data root with a train and a val/ or test/ split (ImageFolder, IDX, CIFAR binary); any data set works (transfer).", Required = true };
    public readonly Option<string> Checkpoint = new("--checkpoint") { Description = "Backbone: ours (backbone.safetensors/.pth, teacher.safetensors), a DINO/MAE/Mugs/timm checkpoint (architecture inferred), a zoo name (dino_vits16, mae_vitb16, ...: downloaded once into the torch.hub cache), or 'pixels': the pixel floor (the evaluation view's normalized pixels, flattened to 3*S*S), which `report` prints beside every model.", Required = true };
    public readonly Option<int> ImageSize = TrainerOptionSet.Positive("--image-size", "Evaluation crop S: resize the short side to S*256/224 (bicubic), center-crop S (224 as DINO; 32 for CIFAR-10).", 224);
    public readonly Option<double?> LabelFraction = new("--label-fraction") { Description = "Semi-supervised: use only this class-balanced fraction of the training labels (0.01 or 0.1 in the paper)." };
    public readonly Option<string?> LabelFile = new("--label-file") { Description = "Semi-supervised: use only the training images named in this file (one name per line, SimCLR's subset files)." };
    public readonly Option<int> LabelSeed = new("--label-seed") { Description = "Seed of the --label-fraction draw.", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> PosEmbedResample = PosEmbedResampleOption.Create();
    private readonly Option<int>? _evalLayer;

    /// <param name="evalLayer">Offer --eval-layer (k-NN and linear probing of a projector layer).</param>
    public EvaluationOptionSet(bool evalLayer)
    {
        if (evalLayer)
            _evalLayer = new Option<int>("--eval-layer") { Description = "0: the backbone's output (default); k: the k-th projector layer of a distilled student (Table 10(d)); needs the distill run's checkpoint-*.ckpt.", DefaultValueFactory = _ => 0 };
    }

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Config, Data, Checkpoint, ImageSize, PosEmbedResample, LabelFraction, LabelFile, LabelSeed }) c.Options.Add(o);
        if (_evalLayer is not null) c.Options.Add(_evalLayer);
    }

    public LabelSelection Labels(ParseResult r) =>
        new LabelSelection { Fraction = r.GetValue(LabelFraction), FileList = r.GetValue(LabelFile), Seed = r.GetValue(LabelSeed) }.Validate();

    public Models.PosEmbedRule? Resampling(ParseResult r) => PosEmbedResampleOption.Read(r, PosEmbedResample);

    public int EvalLayer(ParseResult r) => _evalLayer is null ? 0 : r.GetValue(_evalLayer);

    /// <summary>--feature-cache: where frozen features are kept between runs.</summary>
    public static Option<string?> FeatureCacheOption() =>
        new("--feature-cache") { Description = "Folder for cached features (keyed by the checkpoint's hash, split, size, layer); default OUT/feature-cache; 'none' to disable." };

    public static string? FeatureCacheDir(ParseResult r, Option<string?> option, string outDir) =>
        r.GetValue(option) switch { null => Path.Combine(outDir, "feature-cache"), "none" => null, var d => d };
}
