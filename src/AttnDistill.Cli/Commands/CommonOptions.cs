using System.CommandLine;
using System.CommandLine.Parsing;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>Options every training command shares (the trainer core's recipe, supplement Table 8).</summary>
public sealed class TrainerOptionSet
{
    public readonly Option<int> Epochs;
    public readonly Option<double> WarmupEpochs;
    public readonly Option<int> BatchSize;
    public readonly Option<int> EffectiveBatch = new("--effective-batch") { Description = "Images per optimizer step over all processes, reached by gradient accumulation (paper: 4096). 0 = no accumulation.", DefaultValueFactory = _ => 0 };
    public readonly Option<double> BaseLr;
    /// <summary>--blr as a list (finetune's lr sweep): replaces <see cref="BaseLr"/> on the command when present.</summary>
    public readonly NumberListOption<double>? BaseLrSweep;
    public readonly Option<double?> Lr = new("--lr") { Description = "Absolute peak learning rate (overrides --blr)." };
    public readonly Option<double> MinLr;
    public readonly Option<double> WeightDecay;
    public readonly Option<double> ClipGrad = new("--clip-grad") { Description = "Max global gradient norm; 0 = off.", DefaultValueFactory = _ => 0 };
    public readonly Option<int> CheckpointEvery = Positive("--checkpoint-every", "Write checkpoint-*.ckpt every N epochs (and at the end).", 1);
    public readonly Option<int> CheckpointHist = new("--checkpoint-hist") { Description = "Checkpoints kept in --out, oldest removed first (timm's name); 0 keeps every one (to evaluate each saved epoch afterwards).", DefaultValueFactory = _ => 2 };
    public readonly Option<int> LogEvery = Positive("--log-every", "Log a JSON line to log.txt every N batches.", 10);
    public readonly Option<int> Seed = new("--seed") { Description = "One seed for data order, augmentation, init and masks.", DefaultValueFactory = _ => 0 };
    public readonly Option<int> Workers = WorkerCount("--workers", "Data loading threads.");
    public readonly Option<int?> Threads = new("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)." };
    public readonly Option<string> Out = new("--out") { Description = "Run folder: config.yaml, log.txt, tensorboard/, checkpoints, backbone.pth/.safetensors, metrics.json.", Required = true };
    public readonly Option<bool> Resume = new("--resume") { Description = "Continue from the newest readable checkpoint in --out (none there at all: start from the beginning; only unreadable ones: an error, nothing overwritten). "
        + "Compared with --out's config.yaml: a changed data, teacher, student/projector shape, aggregation, loss, seed, batch layout, precision or image size is refused; "
        + "a changed epochs, lr, blr, min-lr, warmup-epochs, weight-decay, clip-grad or weight-* is allowed with a warning and recorded in config.yaml's history; workers, threads, device and logging may change freely. "
        + "Another run holding --out (its run.lock) is refused." };
    public readonly Option<string> Device = Run.DeviceOption();
    private readonly bool _lrOptions;
    private readonly TrainerOptions _defaults;

    /// <param name="defaults">The command's recipe defaults (epochs, warm-up, batch, base lr, weight decay, betas).</param>
    /// <param name="lrOptions">False for linear probing, whose lrs come from its sweep and whose weight decay is 0.</param>
    /// <param name="blrSweep">--blr takes several values (one run each, see <see cref="BaseLrs"/>).</param>
    public TrainerOptionSet(TrainerOptions? defaults = null, bool lrOptions = true, bool blrSweep = false)
    {
        _defaults = defaults ?? new TrainerOptions();
        _lrOptions = lrOptions;
        var d = _defaults;
        Epochs = Positive("--epochs", $"Training epochs (default {d.Epochs}).", d.Epochs);
        MinLr = new("--min-lr") { Description = "Learning rate at the end of the cosine.", DefaultValueFactory = _ => d.MinLr };
        WarmupEpochs = new("--warmup-epochs") { Description = "Linear lr warm-up epochs.", DefaultValueFactory = _ => d.WarmupEpochs };
        BatchSize = Positive("--batch-size", "Images per process per micro-batch.", d.BatchSize);
        BaseLr = PositiveDouble("--blr", $"Base learning rate: lr = blr x effective batch / 256 (default {d.BaseLr:G3}).", d.BaseLr);
        if (blrSweep)
            BaseLrSweep = new NumberListOption<double>("--blr", "Base learning rate(s): lr = blr x effective batch / 256; several values (--blr 1e-4,5e-4,1e-3) run one fine-tuning each, in OUT/blr-VALUE, and write one summary table (OUT/blr-sweep.md):", new[] { d.BaseLr });
        WeightDecay = new("--weight-decay") { Description = $"AdamW weight decay on weights (not biases/norms) (default {d.WeightDecay}).", DefaultValueFactory = _ => d.WeightDecay };
    }

    /// <summary>The base lrs given: one, or a finetune sweep's several (each must be positive).</summary>
    public IReadOnlyList<double> BaseLrs(ParseResult r)
    {
        if (BaseLrSweep is null) return new[] { r.GetValue(BaseLr) };
        var values = BaseLrSweep.Read(r);
        foreach (double v in values)
            if (!(v > 0) || !double.IsFinite(v)) throw new ArgumentException($"--blr values must be positive, got {v}.");
        return values;
    }

    public void AddTo(Command c)
    {
        var all = _lrOptions
            ? new Option[] { Epochs, WarmupEpochs, BatchSize, EffectiveBatch, (Option?)BaseLrSweep ?? BaseLr, Lr, MinLr, WeightDecay, ClipGrad, CheckpointEvery, CheckpointHist, LogEvery, Seed, Workers, Threads, Out, Resume, Device }
            : new Option[] { Epochs, WarmupEpochs, BatchSize, EffectiveBatch, MinLr, CheckpointEvery, CheckpointHist, LogEvery, Seed, Workers, Threads, Out, Resume, Device };
        foreach (var o in all) c.Options.Add(o);
    }

    public TrainerOptions Read(ParseResult r)
    {
        // A warm-up asked for explicitly that is longer than the run never reaches the peak lr: refused (a default one is warned about by the trainer).
        if (r.GetResult(WarmupEpochs) is { Implicit: false } && r.GetValue(WarmupEpochs) > r.GetValue(Epochs))
            throw new ArgumentException($"--warmup-epochs {r.GetValue(WarmupEpochs)} is longer than --epochs {r.GetValue(Epochs)}: the lr would never reach its peak; shorten the warm-up.");
        return ReadChecked(r);
    }

    private TrainerOptions ReadChecked(ParseResult r) => (_defaults with
    {
        Epochs = r.GetValue(Epochs), WarmupEpochs = r.GetValue(WarmupEpochs), BatchSize = r.GetValue(BatchSize),
        EffectiveBatch = r.GetValue(EffectiveBatch), MinLr = r.GetValue(MinLr),
        BaseLr = _lrOptions ? BaseLrs(r)[0] : _defaults.BaseLr, Lr = _lrOptions ? r.GetValue(Lr) : null,
        WeightDecay = _lrOptions ? r.GetValue(WeightDecay) : 0, ClipGrad = _lrOptions ? r.GetValue(ClipGrad) : 0, CheckpointEveryEpochs = r.GetValue(CheckpointEvery), CheckpointHistory = r.GetValue(CheckpointHist),
        LogEverySteps = r.GetValue(LogEvery), Seed = r.GetValue(Seed),
    }).Validate();

    /// <summary>--precision fp32|bf16 of the training commands that support bf16 (distill, pretrain-mae).</summary>
    public static Option<string> PrecisionOption()
    {
        var o = new Option<string>("--precision") { Description = "fp32, or bf16: autocast as PyTorch's: matrix products and attention in bf16; LayerNorm, softmax, losses, weights, gradients and optimizer in fp32 (see docs/RESULTS.md, 'bf16 autocast').", DefaultValueFactory = _ => "fp32" };
        o.AcceptOnlyFromAmong("fp32", "bf16");
        return o;
    }

    public static ComputePrecision ReadPrecision(ParseResult r, Option<string> o) => r.GetValue(o) == "bf16" ? ComputePrecision.BFloat16 : ComputePrecision.Float32;

    /// <summary>Most data loading threads a run may ask for: each takes a stack and a batch slot, and 100,000 of them abort the runtime natively.</summary>
    public const int MaxWorkers = 256;

    /// <summary>--workers: 0 (decode on the training thread) to <see cref="MaxWorkers"/>.</summary>
    public static Option<int> WorkerCount(string name, string description, int defaultValue = 2)
    {
        var o = new Option<int>(name) { Description = $"{description} 0 decodes on the training thread; at most {MaxWorkers}.", DefaultValueFactory = _ => defaultValue };
        o.Validators.Add(r => { if (TryValue(r, out int v) && (v < 0 || v > MaxWorkers)) r.AddError($"{name} must be between 0 and {MaxWorkers}, got {v}."); });
        return o;
    }

    public static Option<int> Positive(string name, string description, int defaultValue)
    {
        var o = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        o.Validators.Add(r => { if (TryValue(r, out int v) && v <= 0) r.AddError($"{name} must be positive, got {v}."); });
        return o;
    }

    public static Option<double> PositiveDouble(string name, string description, double defaultValue)
    {
        var o = new Option<double>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        o.Validators.Add(r => { if (TryValue(r, out double v) && !(v > 0)) r.AddError($"{name} must be positive, got {v}."); });
        return o;
    }

    /// <summary>
    /// The option's value, or false when its text does not parse (e.g. `--epochs ten`): the parser
    /// reports that error itself, and reading the value in a validator would throw instead.
    /// </summary>
    static bool TryValue<T>(System.CommandLine.Parsing.OptionResult r, out T value)
    {
        try { value = r.GetValueOrDefault<T>(); return true; }
        catch (InvalidOperationException) { value = default!; return false; }
    }
}
