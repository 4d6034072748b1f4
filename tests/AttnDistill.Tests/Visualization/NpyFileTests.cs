using AttnDistill.Visualization;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Visualization;

/// <summary>.npy v1.0 files: byte for byte what numpy.save writes (fixtures from tests/fixtures/visualization/make_npy.py).</summary>
public class NpyFileTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "visualization", name);

    [Theory]
    [InlineData("matrix_2x3.npy")]
    [InlineData("vector_5.npy")]
    [InlineData("cube_2x3x4.npy")]
    public void WritesWhatNumpyWrites(string name)
    {
        var (values, shape) = NpyFile.Read(Fixture(name));
        string path = Path.Combine(Directory.CreateTempSubdirectory("npy").FullName, name);
        NpyFile.Write(path, values, shape);
        Assert.Equal(File.ReadAllBytes(Fixture(name)), File.ReadAllBytes(path));
    }

    [Fact]
    public void ReadsNumpysValuesAndShape()
    {
        var (values, shape) = NpyFile.Read(Fixture("matrix_2x3.npy"));
        Assert.Equal(new long[] { 2, 3 }, shape);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => i / 7f), values);
    }

    [Fact]
    public void TensorRoundTripKeepsShapeAndValues()
    {
        using var t = rand(3, 17);
        string path = Path.Combine(Directory.CreateTempSubdirectory("npy").FullName, "t.npy");
        NpyFile.Write(path, t);
        var (values, shape) = NpyFile.Read(path);
        Assert.Equal(new long[] { 3, 17 }, shape);
        Assert.Equal(t.contiguous().data<float>().ToArray(), values);
        Assert.Equal(0, (new FileInfo(path).Length - values.Length * 4) % 64);    // header padded to 64 bytes, as numpy
    }

    [Fact]
    public void RefusesOtherFiles()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("npy").FullName, "x.npy");
        File.WriteAllText(path, "not numpy");
        Assert.Throws<InvalidDataException>(() => NpyFile.Read(path));
        Assert.Throws<ArgumentException>(() => NpyFile.Write(path, new float[5], new long[] { 2, 3 }));
    }
}
