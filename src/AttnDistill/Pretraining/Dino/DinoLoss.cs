using AttnDistill.Tensors;
using AttnDistill.Distributed;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>
/// main_dino.DINOLoss: cross-entropy between the centred, sharpened teacher distribution of each
/// global crop and the student distribution of every other crop, averaged over the pairs; the
/// centre is an EMA (center_momentum) of the teacher outputs' batch mean over all ranks.
/// </summary>
public sealed class DinoLoss : IDisposable
{
    private readonly double[] _teacherTemp;

    public DinoLoss(int outDim, int nCrops, double warmupTeacherTemp, double teacherTemp, int warmupTeacherTempEpochs, int epochs,
        double studentTemp = 0.1, double centerMomentum = 0.9, Device? device = null)
    {
        if (nCrops < 2) throw new ArgumentException($"DINO needs at least the 2 global crops, got {nCrops} crops.");
        NCrops = nCrops;
        StudentTemp = studentTemp;
        CenterMomentum = centerMomentum;
        _teacherTemp = DinoSchedules.TeacherTemperature(warmupTeacherTemp, teacherTemp, warmupTeacherTempEpochs, epochs);
        Center = zeros(new long[] { 1, outDim }, device: device);
    }

    public int NCrops { get; }
    public double StudentTemp { get; }
    public double CenterMomentum { get; }
    /// <summary>(1, out_dim), the buffer DINO saves as dino_loss.center.</summary>
    public Tensor Center { get; private set; }
    public IReadOnlyList<double> TeacherTemperatures => _teacherTemp;

    /// <summary>
    /// The loss (0-d); <paramref name="studentOutput"/> is (nCrops x B, out_dim), crops stacked in
    /// order, <paramref name="teacherOutput"/> (2 x B, out_dim) for the two global crops. Does not
    /// update the centre: call <see cref="UpdateCenter"/> after (DINO does it in the same call).
    /// </summary>
    public Tensor Compute(Tensor studentOutput, Tensor teacherOutput, int epoch)
    {
        using var scope = NewDisposeScope();
        var studentChunks = studentOutput.DividedBy(StudentTemp).chunk(NCrops);
        double temp = _teacherTemp[Math.Min(epoch, _teacherTemp.Length - 1)];
        Tensor[] teacherChunks;
        using (no_grad())
            teacherChunks = (teacherOutput - Center).DividedBy(temp).softmax(-1).detach().chunk(2);
        Tensor? total = null;
        int terms = 0;
        for (int iq = 0; iq < teacherChunks.Length; iq++)
            for (int v = 0; v < studentChunks.Length; v++)
            {
                if (v == iq) continue;
                var loss = (-teacherChunks[iq] * studentChunks[v].log_softmax(-1)).sum(-1).mean();
                total = total is null ? loss : total.Plus(loss);
                terms++;
            }
        return total!.DividedBy((long)terms).MoveToOuterDisposeScope();
    }

    /// <summary>center = m x center + (1 - m) x (sum of teacher outputs over all ranks) / (B x world).</summary>
    public void UpdateCenter(Tensor teacherOutput, IDistributedContext? dist = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batchCenter = teacherOutput.detach().sum(0, keepdim: true);
        int world = 1;
        if (dist is { WorldSize: > 1 })
        {
            batchCenter = AllReduceSum(batchCenter, dist);
            world = dist.WorldSize;
        }
        batchCenter = batchCenter.DividedBy(teacherOutput.shape[0] * world);
        var updated = Center.Times(CenterMomentum).Plus(batchCenter.Times(1 - CenterMomentum));
        Center.copy_(updated);
    }

    static Tensor AllReduceSum(Tensor t, IDistributedContext dist)
    {
        using var gathered = dist.AllGather(t.contiguous());   // (W, 1, out_dim) or (W x 1, out_dim)
        return gathered.reshape(dist.WorldSize, -1).sum(0, keepdim: true).reshape(t.shape);
    }

    /// <summary>Restores a saved centre (a checkpoint's dino_loss.center).</summary>
    public void LoadCenter(Tensor center)
    {
        using var _ = no_grad();
        Center.copy_(center);
    }

    public void Dispose() => Center.Dispose();
}
