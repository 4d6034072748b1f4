using AttnDistill.Evaluation;
using AttnDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>How a frozen backbone computes features.</summary>
public enum FeatureVariant
{
    /// <summary>The product: fp32 under no_grad (FeatureExtractor).</summary>
    Fp32,
    /// <summary>Lever: the same inside inference_mode.</summary>
    Fp32InferenceMode,
    /// <summary>Lever: fp32 with one libtorch thread instead of the default (the core count).</summary>
    Fp32OneThread,
    /// <summary>The backbone cast to bf16 (images stay fp32; features come back as fp32).</summary>
    Bf16,
}

/// <summary>Feature extraction (workload 5): one batch through <see cref="FeatureExtractor"/>, as k-NN and linear probing run it.</summary>
public static class FeatureExtractionCases
{
    public static string Name(FeatureVariant v) => v switch
    {
        FeatureVariant.Fp32 => "fp32",
        FeatureVariant.Fp32InferenceMode => "fp32-inference-mode",
        FeatureVariant.Fp32OneThread => "fp32-1-thread",
        FeatureVariant.Bf16 => "bf16",
        _ => v.ToString(),
    };

    public static BenchCase Create(BenchShapes shapes, FeatureVariant variant, long seed = 0)
    {
        manual_seed(seed);
        var cfg = shapes.FeatureBackbone;
        var vit = new VisionTransformer(cfg);
        vit.eval();
        if (variant == FeatureVariant.Bf16) vit.to(ScalarType.BFloat16);
        var images = randn(new long[] { shapes.FeatureBatch, cfg.InChans, cfg.ImageSize, cfg.ImageSize }, generator: new Generator((ulong)seed));
        var labels = zeros(shapes.FeatureBatch, dtype: ScalarType.Int64);
        var batches = new[] { (images, labels) };
        void Run()
        {
            using var mode = variant == FeatureVariant.Fp32InferenceMode ? inference_mode() : null;
            int threads = get_num_threads();
            if (variant == FeatureVariant.Fp32OneThread) set_num_threads(1);
            try
            {
                using var features = FeatureExtractor.Extract(vit.forward, batches);
            }
            finally
            {
                set_num_threads(threads);
            }
        }
        return new BenchCase("features-224", Name(variant), shapes.FeatureBatch * FlopCount.VitForward(cfg), shapes.FeatureBatch, Run,
            () => { vit.Dispose(); images.Dispose(); labels.Dispose(); });
    }
}
