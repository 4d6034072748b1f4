using AttnDistill.Tensors;
using AttnDistill.Data;
using AttnDistill.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Runs a frozen backbone over a split, under no_grad and in eval mode, and gathers one feature
/// row per image into a [N, D] float32 tensor on the backbone's device, as DINO's eval_knn does
/// with its default use_cuda=True (features of ImageNet-1K at D = 384 are 1.9 GB).
/// </summary>
public static class FeatureExtractor
{
    /// <summary>
    /// Features of every image the loader yields, placed at the row of its data set index (as DINO
    /// does with index_copy_), so the loader's order does not matter. Use one epoch of an eval
    /// transform (<c>TransformPresets.Eval</c>). Items the loader replaced because they could not
    /// be read get no row (see <see cref="FeatureSet.Indices"/>).
    /// <para>
    /// Several ranks (<paramref name="dist"/>, the loader built for the same rank and size): each
    /// rank computes its shard's rows, then rows and per-row counts are summed over ranks in place
    /// and divided by the counts (an item the shard padding gave to two ranks is averaged, i.e.
    /// kept), so every rank returns the whole set, as DINO's all-gather does.
    /// </para>
    /// </summary>
    /// <param name="backbone">Module mapping images [B, C, H, W] to features [B, D] (the ViT: normalized CLS).</param>
    /// <param name="progress">Receives (batches done, batches in total).</param>
    public static FeatureSet Extract(nn.Module<Tensor, Tensor> backbone, DataLoader loader, Device? device = null,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellation = default, IDistributedContext? dist = null)
    {
        bool wasTraining = backbone.training;
        backbone.eval();
        try
        {
            device ??= backbone is EvaluatedBackbone e ? e.Device : backbone.parameters().FirstOrDefault()?.device ?? CPU;
            return Extract(backbone.forward, loader, device, progress, cancellation, dist);
        }
        finally
        {
            if (wasTraining) backbone.train();
        }
    }

    /// <summary>As above for any function images -> features (the caller sets eval mode).</summary>
    public static FeatureSet Extract(Func<Tensor, Tensor> backbone, DataLoader loader, Device? device = null,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellation = default, IDistributedContext? dist = null)
    {
        dist ??= SingleProcess.Instance;
        if (loader.Options.WorldSize != dist.WorldSize || loader.Options.Rank != dist.Rank)
            throw new ArgumentException(
                $"the loader reads shard {loader.Options.Rank} of {loader.Options.WorldSize} but this process is rank {dist.Rank} of {dist.WorldSize}: build the loader with the context's Rank and WorldSize.");
        int n = loader.Dataset.Count, total = loader.BatchesPerEpoch, done = 0;
        var on = device ?? CPU;
        var labels = tensor(Enumerable.Range(0, n).Select(i => (long)loader.Dataset.Label(i)).ToArray(), dtype: ScalarType.Int64, device: on);
        var filled = zeros(n, dtype: ScalarType.Float32, device: on);                        // times each row was computed
        Tensor? features = null;
        using var noGrad = torch.no_grad();
        try
        {
            foreach (var batch in DeviceFeed.ToDevice(loader.Epoch(0, 0, cancellation), on))
            {
                using var scope = NewDisposeScope();
                var feats = Forward(backbone, batch.Images, on);                                // (B, D) on the device
                features ??= zeros(n, feats.shape[1], dtype: ScalarType.Float32, device: on).DetachFromDisposeScope();
                var index = tensor(batch.Indices.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: on);
                features.index_copy_(0, index, feats);
                using var one = 1f.ToScalar();
                filled.index_fill_(0, index, one);
                progress?.Report((++done, total));
            }
            if (features is null) throw new InvalidDataException("the loader yielded no batch.");
            if (dist.WorldSize > 1)
            {
                dist.SumInPlace(features);
                dist.SumInPlace(filled);
                using var scope = NewDisposeScope();
                using var one = 1f.ToScalar();   // held across the call (see Tensors/KeptScalars)
                features.div_(filled.clamp_min(one).unsqueeze(1));
            }
            return Compact(features, labels, filled);
        }
        finally
        {
            features?.Dispose();
            labels.Dispose();
            filled.Dispose();
        }
    }

    /// <summary>
    /// Features of batches given in order (images [B, C, H, W], labels [B]); rows are numbered
    /// in arrival order. The caller owns the batch tensors and sets eval mode.
    /// </summary>
    public static FeatureSet Extract(Func<Tensor, Tensor> backbone, IEnumerable<(Tensor Images, Tensor Labels)> batches, Device? device = null)
    {
        var feats = new List<Tensor>();
        var labels = new List<Tensor>();
        using var noGrad = torch.no_grad();
        try
        {
            foreach (var (images, y) in batches)
            {
                using var scope = NewDisposeScope();
                var f = Forward(backbone, images, device);
                feats.Add(f.DetachFromDisposeScope());
                labels.Add(y.to(ScalarType.Int64, f.device).clone().DetachFromDisposeScope());
            }
            if (feats.Count == 0) throw new ArgumentException("no batch given.");
            var all = cat(feats, 0);
            return new FeatureSet(all, cat(labels, 0), KeptScalars.Arange(all.shape[0], ScalarType.Int64, all.device));
        }
        finally
        {
            foreach (var t in feats.Concat(labels)) t.Dispose();
        }
    }

    static Tensor Forward(Func<Tensor, Tensor> backbone, Tensor images, Device? device)
    {
        var x = device is null ? images : images.to(device);
        var f = backbone(x);
        if (f.dim() != 2 || f.shape[0] != images.shape[0])
            throw new InvalidOperationException($"the backbone returned [{string.Join(", ", f.shape)}] for {images.shape[0]} images; expected [B, D].");
        return f.detach().to(ScalarType.Float32);
    }

    /// <summary>Drops rows that no batch filled (unreadable items).</summary>
    static FeatureSet Compact(Tensor features, Tensor labels, Tensor filled)
    {
        using var scope = NewDisposeScope();
        using var zero = 0f.ToScalar();
        var rows = filled.gt(zero).nonzero().view(-1);                                         // (N',)
        return new FeatureSet(
            features.index_select(0, rows).DetachFromDisposeScope(),
            labels.index_select(0, rows).DetachFromDisposeScope(),
            rows.to(ScalarType.Int64).DetachFromDisposeScope());
    }
}
