using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Models;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// One distillation step (docs/METHOD.md, section 1): the frozen teacher (eval, no grad) and the student
/// see the same augmented batch; the loss compares CLS features and last-block (or every-block)
/// CLS attention rows. The trainer does the rest.
/// </summary>
public sealed class DistillationTask : ITrainingTask
{
    private readonly VisionTransformer _teacher;
    private readonly DistillStudent _student;
    private readonly DistillLossOptions _loss;
    private readonly CompressLoss? _compress;
    private readonly TeacherCache.TeacherTargetCache? _cache;

    public DistillationTask(VisionTransformer teacher, DistillStudent student, DistillLossOptions loss,
        DistillationMethod method = DistillationMethod.AttnDistill, int compressQueue = CompressLoss.DefaultQueueSize, double compressTau = CompressLoss.DefaultTau, long seed = 0,
        TeacherCache.TeacherTargetCache? cache = null)
    {
        var device = Runs.RunDevice.Of(student);
        if (!Runs.RunDevice.Same(Runs.RunDevice.Of(teacher), device))
            throw new ArgumentException($"the teacher is on {Runs.RunDevice.Name(Runs.RunDevice.Of(teacher))} and the student on {Runs.RunDevice.Name(device)}: put both on the run's device.");
        _teacher = teacher;
        _student = student;
        _loss = loss;
        _cache = cache;
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        teacher.eval();
        if (method == DistillationMethod.CompRess)
            _compress = new CompressLoss(student.FeatureDim, compressQueue, compressTau, seed, device: device);
    }

    public nn.Module Model => _student;
    public DistillStudent Student => _student;
    public string Kind => _compress is null ? "distill" : "distill-compress";

    public void Train()
    {
        _student.train();
        _teacher.eval();
    }

    private AttentionRequest Request =>
        _compress is not null || !_loss.UsesAttention ? AttentionRequest.None
        : _loss.AllBlocks ? AttentionRequest.AllBlocks : AttentionRequest.LastBlock;

    // What the teacher computes: the loss's request, or, when a cache is filled, what the cache stores
    // (the last block's rows at least, so that one cache serves lambda 0 and every attention row).
    private AttentionRequest TeacherRequest =>
        _cache is null ? Request
        : _cache.Header.AttentionShape[0] > 1 ? AttentionRequest.AllBlocks : AttentionRequest.LastBlock;

    private bool TeacherValueNorms => _cache is null ? _loss.WeightByValue : _cache.Header.ValueNorms;

    public StepLoss Loss(DataBatch batch)
    {
        var x = batch.Images;
        var request = Request;
        Tensor fT;
        IReadOnlyList<BlockAttention> aT;
        if (_cache is not null && _cache.Holds(batch.Epoch))
        {
            // A filled epoch of the teacher-target cache: the teacher does not run.
            (fT, aT) = _cache.Read(batch, Runs.RunDevice.Of(_student));
        }
        else
        {
            (fT, aT) = TeacherTargets(x);
            _cache?.Write(batch, fT, aT);
        }
        var s = Float32(_student.Forward(x, request, _loss.WeightByValue, _loss.PatchTokenAlign));

        if (_compress is not null)
        {
            // The batch's teacher features join the queue FIFO right after the loss uses it.
            var c = _compress.Compute(s.Feature, fT, update: true);
            return new StepLoss(c, new Dictionary<string, Tensor> { ["compress"] = c }, () => Describe(s.Feature, fT, s.Attention, aT));
        }
        var parts = AttentionDistillLoss.Compute(_loss, s.Feature, fT,
            s.Attention.Select(a => a.ClsAttention).ToArray(), aT.Select(a => a.ClsAttention).ToArray(),
            _loss.WeightByValue ? s.Attention.Select(a => a.ValueNorms!).ToArray() : null,
            _loss.WeightByValue ? aT.Select(a => a.ValueNorms!).ToArray() : null);
        return new StepLoss(parts.Total, new Dictionary<string, Tensor> { ["cls"] = parts.Cls, ["attn"] = parts.Attn },
            () => Describe(s.Feature, fT, s.Attention, aT));
    }

    /// <summary>Runs the teacher on <paramref name="batch"/> and stores its targets in the cache (attndistill teacher-cache); the student does not run.</summary>
    public void FillCache(DataBatch batch)
    {
        if (_cache is null) throw new InvalidOperationException("this task has no teacher cache to fill.");
        using var scope = NewDisposeScope();
        var (fT, aT) = TeacherTargets(batch.Images);
        _cache.Write(batch, fT, aT);
    }

    /// <summary>The teacher's feature and attention targets for a batch, computed online.</summary>
    (Tensor Feature, IReadOnlyList<BlockAttention> Attention) TeacherTargets(Tensor x)
    {
        Tensor fT;
        IReadOnlyList<BlockAttention> aT;
        using (no_grad())
        using (NewDisposeScope())
        {
            var t = _teacher.ForwardFeatures(x, TeacherRequest, TeacherValueNorms);
            // LayerNorm is per token: normalize only the CLS token unless all tokens are compared.
            using var hidden = t.Hidden;
            using var kept = _loss.PatchTokenAlign ? hidden.alias() : hidden.select(1, 0);
            fT = Float32(Autocast.LayerNorm(_teacher.Norm, kept)).MoveToOuterDisposeScope();
            aT = t.Attention.Select(Float32).ToArray();
            foreach (var a in aT)
            {
                a.ClsAttention.MoveToOuterDisposeScope();
                a.ValueNorms?.MoveToOuterDisposeScope();
            }
        }
        return (fT, aT);
    }

    // The loss entry: every loss computes in fp32. Under Autocast the features (LayerNorm) and the
    // CLS rows (softmax) already are fp32 and this is a no-op; a module cast to bf16 (the bench's
    // bf16-teacher lever) hands bf16 here, and the KL of clamped maps and the feature MSE stay fp32.
    static Tensor Float32(Tensor t) => t.dtype == ScalarType.Float32 ? t : t.to(ScalarType.Float32);

    static BlockAttention Float32(BlockAttention a) => new(Float32(a.ClsAttention), a.ValueNorms is null ? null : Float32(a.ValueNorms));

    static StudentOutput Float32(StudentOutput o) =>
        o.Feature.dtype == ScalarType.Float32 ? o : new StudentOutput(Float32(o.Feature), o.Attention.Select(Float32).ToArray());

    /// <summary>Min/max of features and maps, for the log line of a skipped batch.</summary>
    private static string Describe(Tensor fS, Tensor fT, IReadOnlyList<BlockAttention> aS, IReadOnlyList<BlockAttention> aT)
    {
        static string Range(string name, Tensor t) =>
            $"{name} [{t.min().item<float>():G4}, {t.max().item<float>():G4}] nan={t.isnan().any().item<bool>()}";
        var parts = new List<string> { Range("student feature", fS), Range("teacher feature", fT) };
        if (aS.Count > 0) parts.Add(Range("student attention", aS[^1].ClsAttention));
        if (aT.Count > 0) parts.Add(Range("teacher attention", aT[^1].ClsAttention));
        return string.Join("; ", parts);
    }

    public CheckpointSection? SaveState() => _compress is null ? null : new CheckpointSection
    {
        Tensors = { ["compress_queue"] = _compress.Queue },
        Json = System.Text.Json.JsonSerializer.Serialize(new { compress_pointer = _compress.Pointer }),
    };

    public void LoadState(CheckpointSection state)
    {
        if (_compress is null) return;
        using var doc = System.Text.Json.JsonDocument.Parse(state.Json);
        _compress.LoadState(state.Tensors["compress_queue"], doc.RootElement.GetProperty("compress_pointer").GetInt64());
    }
}
