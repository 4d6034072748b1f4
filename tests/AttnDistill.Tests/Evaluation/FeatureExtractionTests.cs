using AttnDistill.Evaluation;
using TorchSharp;
using AttnDistill.Tests.TestSupport;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

public class FeatureExtractionTests
{
    [Fact]
    public void Rows_follow_data_set_order_whatever_the_loader_order_and_mode_is_restored()
    {
        using var scope = NewDisposeScope();
        using var vit = LinearProbeTests.TinyVit();
        vit.train();
        var ds = new ClassTemplateDataset(40, 4);
        using var ordered = FeatureExtractor.Extract(vit, LinearProbeTests.Loader(ds, shuffle: false, batch: 16));
        using var shuffled = FeatureExtractor.Extract(vit, LinearProbeTests.Loader(ds, shuffle: true, batch: 7));
        Assert.True(vit.training);
        Assert.Equal(new long[] { 40, 32 }, ordered.Features.shape);
        Assert.Equal(Enumerable.Range(0, 40).Select(ds.Label).Select(l => (long)l), ordered.Labels.data<long>().ToArray());
        Assert.True(ordered.Features.allclose(shuffled.Features, rtol: 1e-5, atol: 1e-5));
        Assert.Equal(ordered.Indices.data<long>().ToArray(), Enumerable.Range(0, 40).Select(i => (long)i));
        Assert.False(ordered.Features.requires_grad);
    }

    [Fact]
    public void Unreadable_items_get_no_row()
    {
        using var scope = NewDisposeScope();
        using var vit = LinearProbeTests.TinyVit();
        var ds = new ClassTemplateDataset(20, 4, unreadable: new[] { 3, 11 });
        using var set = FeatureExtractor.Extract(vit, LinearProbeTests.Loader(ds, batch: 8));
        Assert.Equal(18, set.Count);
        Assert.DoesNotContain(3L, set.Indices.data<long>().ToArray());
        Assert.DoesNotContain(11L, set.Indices.data<long>().ToArray());
    }

    [Fact]
    public void Function_over_in_memory_batches_concatenates_in_order()
    {
        using var scope = NewDisposeScope();
        var w = randn(12, 5);
        var batches = Enumerable.Range(0, 3).Select(i => (full(new long[] { 4, 12 }, (float)i, dtype: ScalarType.Float32), full(new long[] { 4 }, (long)i, dtype: ScalarType.Int64))).ToArray();
        using var set = FeatureExtractor.Extract(x => x.mm(w), batches);
        Assert.Equal(new long[] { 12, 5 }, set.Features.shape);
        Assert.Equal(new long[] { 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2 }, set.Labels.data<long>().ToArray());
        Assert.True(set.Features.select(0, 8).allclose(w.sum(0, false) * 2));
    }

    [Fact]
    public void Subset_selects_labelled_rows_by_data_set_index()
    {
        using var scope = NewDisposeScope();
        var f = arange(10, dtype: ScalarType.Float32).view(5, 2);
        using var set = new FeatureSet(f, tensor(new long[] { 0, 1, 0, 1, 2 }), tensor(new long[] { 0, 2, 3, 7, 9 }));
        using var sub = set.Subset(new[] { 3, 9 });
        Assert.Equal(new float[] { 4, 5, 8, 9 }, sub.Features.data<float>().ToArray());
        Assert.Equal(new long[] { 0, 2 }, sub.Labels.data<long>().ToArray());
        Assert.Throws<ArgumentException>(() => set.Subset(new[] { 1 }));
        Assert.Throws<ArgumentException>(() => set.Subset(new[] { 12 }));
    }

    [Fact]
    public void Cache_key_depends_on_checkpoint_bytes_split_and_size_and_round_trips()
    {
        using var scope = NewDisposeScope();
        string dir = Path.Combine(Path.GetTempPath(), "attndistill-featcache-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string ckpt = Path.Combine(dir, "a.pth");
            File.WriteAllBytes(ckpt, new byte[] { 1, 2, 3 });
            string key = FeatureCache.Key(ckpt, "train", 224);
            Assert.StartsWith("train-224px-", key);
            Assert.Equal(key, FeatureCache.Key(ckpt, "train", 224));
            Assert.NotEqual(key, FeatureCache.Key(ckpt, "val", 224));
            Assert.NotEqual(key, FeatureCache.Key(ckpt, "train", 32));
            Assert.NotEqual(key, FeatureCache.Key(ckpt, "train", 224, extra: "layer 2"));
            File.WriteAllBytes(ckpt, new byte[] { 1, 2, 4 });
            Assert.NotEqual(key, FeatureCache.Key(ckpt, "train", 224));

            var cache = new FeatureCache(Path.Combine(dir, "cache"));
            int computed = 0;
            FeatureSet Compute()
            {
                computed++;
                return new FeatureSet(randn(6, 3), tensor(new long[] { 0, 1, 2, 0, 1, 2 }), arange(6, dtype: ScalarType.Int64));
            }
            using var first = cache.GetOrCompute(key, Compute);
            using var second = cache.GetOrCompute(key, Compute);
            Assert.Equal(1, computed);
            Assert.True(first.Features.eq(second.Features).all().item<bool>());
            Assert.True(first.Labels.eq(second.Labels).all().item<bool>());
            Assert.True(first.Indices.eq(second.Indices).all().item<bool>());
            Assert.Null(cache.TryLoad("missing"));
            File.WriteAllText(cache.PathFor("broken"), "not a zip");
            Assert.Throws<InvalidDataException>(() => cache.TryLoad("broken"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
