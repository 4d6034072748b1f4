using AttnDistill.Optim;
using AttnDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Linear probing on precomputed features (the fast path: cached features, no augmentation).
/// MAE's recipe otherwise: LARS, per-iteration warm-up + cosine, BatchNorm-without-affine +
/// Linear heads, one head per lr of the sweep, all trained in the same pass. With augmentation
/// (RandomResizedCrop + flip, features recomputed every epoch) use <see cref="LinearProbeTask"/>
/// with the shared <see cref="Trainer"/>.
/// </summary>
public static class LinearProbe
{
    /// <param name="progress">Receives (epoch done, epochs).</param>
    /// <param name="sweepOut">Receives the trained sweep and takes ownership of it (null: disposed here).</param>
    public static LinearProbeResult TrainOnFeatures(FeatureSet train, FeatureSet test, int numClasses, LinearProbeOptions options,
        Device? device = null, IProgress<(int Epoch, int Epochs)>? progress = null, CancellationToken cancellation = default,
        Action<LinearProbeSweep>? sweepOut = null)
    {
        options.Validate();
        if (train.Dim != test.Dim) throw new ArgumentException($"train and test feature widths differ: {train.Dim} vs {test.Dim}.");
        device ??= CPU;
        torch.manual_seed(options.Seed);
        // Handed to sweepOut (which then owns it) to save the best head; disposed here otherwise.
        var sweep = new LinearProbeSweep(train.Dim, numClasses, options.BaseLrs);
        using var owned = sweepOut is null ? sweep : null;
        sweepOut?.Invoke(sweep);
        sweep.to(device);
        var groups = options.BaseLrs.Select((b, i) => new Lars.ParamGroup(
            sweep.Heads[i].parameters(), lr: options.PeakLr(b), weightDecay: options.WeightDecay)).ToArray();
        using var lars = new Lars(groups, momentum: options.Momentum);

        using var x = train.Features.to(ScalarType.Float32, device);
        using var y = train.Labels.to(ScalarType.Int64, device);
        long n = x.shape[0];
        int batchesPerEpoch = (int)((n + options.BatchSize - 1) / options.BatchSize);
        var gen = new Generator((ulong)options.Seed);
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            cancellation.ThrowIfCancellationRequested();
            sweep.train();
            using var order = randperm(n, generator: gen).to(device);
            for (int b = 0; b < batchesPerEpoch; b++)
            {
                using var scope = NewDisposeScope();
                double at = epoch + (double)b / batchesPerEpoch;
                int gi = 0;
                foreach (var g in lars.ParamGroups)
                    g.LearningRate = LrSchedule.At(at, options.PeakLr(options.BaseLrs[gi++]), options.MinLr, options.WarmupEpochs, options.Epochs);
                long start = (long)b * options.BatchSize, size = Math.Min(options.BatchSize, n - start);
                var idx = order.narrow(0, start, size);
                var loss = sweep.Loss(x.index_select(0, idx), y.index_select(0, idx));
                lars.zero_grad();
                loss.backward();
                lars.step();
            }
            progress?.Report((epoch + 1, options.Epochs));
        }
        return Evaluate(sweep, test, options, device);
    }

    /// <summary>Top-1/top-5 of every head of the sweep on <paramref name="test"/>, in percent.</summary>
    public static LinearProbeResult Evaluate(LinearProbeSweep sweep, FeatureSet test, LinearProbeOptions options, Device? device = null, int chunk = 4096)
    {
        device ??= CPU;
        bool wasTraining = sweep.training;
        sweep.eval();
        int k = sweep.BaseLrs.Count;
        var top1 = new long[k];
        var top5 = new long[k];
        using (var noGrad = torch.no_grad())
        {
            for (long start = 0; start < test.Count; start += chunk)
            {
                using var scope = NewDisposeScope();
                long size = Math.Min(chunk, test.Count - start);
                var feats = test.Features.narrow(0, start, size).to(ScalarType.Float32, device);
                var labels = test.Labels.narrow(0, start, size).to(device);
                var logits = sweep.forward(feats);                                           // (K, B, C)
                for (int h = 0; h < k; h++)
                {
                    var (c1, c5) = TopKAccuracy.Count(logits[h], labels);
                    top1[h] += c1;
                    top5[h] += c5;
                }
            }
        }
        if (wasTraining) sweep.train();
        double total = test.Count;
        return LinearProbeResult.FromSweep(sweep.BaseLrs.Select((b, h) =>
            new LinearProbeHeadResult(b, options.PeakLr(b), top1[h] * 100.0 / total, top5[h] * 100.0 / total)).ToArray());
    }
}
