using AttnDistill.Checkpoints;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

public class SafetensorsFileTests
{
    [Fact]
    public void EveryDtypeShapeAndMetadataRoundTrips()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("st").FullName, "t.safetensors");
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(2, 3),
            ["f64"] = randn(4, dtype: ScalarType.Float64),
            ["f16"] = randn(3).to(ScalarType.Float16),
            ["bf16"] = randn(3).to(ScalarType.BFloat16),
            ["i64"] = arange(5L),
            ["u8"] = tensor(new byte[] { 1, 2, 255 }),
            ["bool"] = tensor(new[] { true, false }),
            ["scalar"] = tensor(2.5f),
            ["empty"] = zeros(0, 4),
            ["strided"] = randn(3, 4).t(),
        };
        var meta = new Dictionary<string, string> { ["note"] = "hello \"json\"" };
        SafetensorsFile.Write(path, tensors, meta);
        Assert.Equal(0, BitConverter.ToInt64(File.ReadAllBytes(path), 0) % 8); // header padded: data 8-byte aligned
        var back = SafetensorsFile.Read(path, hashData: true);
        Assert.Equal(tensors.Keys, back.Tensors.Keys);
        foreach (var (k, t) in tensors)
        {
            Assert.Equal(t.dtype, back.Tensors[k].dtype);
            Assert.Equal(t.shape, back.Tensors[k].shape);
            Assert.True(t.equal(back.Tensors[k]).all().item<bool>(), k);
        }
        Assert.Equal("hello \"json\"", back.Metadata["note"]);
        Assert.Equal(64, back.DataSha256!.Length);
        var (header, _) = SafetensorsFile.ReadHeader(path);
        Assert.Equal(new long[] { 4, 3 }, header.Single(h => h.Name == "strided").Shape);
    }

    [Fact]
    public void ImplausibleHeaderLengthIsReported()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("st").FullName, "bad.safetensors");
        File.WriteAllBytes(path, BitConverter.GetBytes(long.MaxValue).Concat("{}"u8.ToArray()).ToArray());
        Assert.Contains("implausible", Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Read(path)).Message);
    }
}
