namespace AttnDistill.Tests.TestSupport;

/// <summary>Real data sets the tests may use: Debian's dataset-fashion-mnist (installed by .ci/run).</summary>
public static class RealData
{
    public const string FashionMnist = "/usr/share/datasets/fashion-mnist";

    public static void RequireFashionMnist() =>
        Xunit.Skip.IfNot(File.Exists(Path.Combine(FashionMnist, "train-images-idx3-ubyte.gz")),
            $"Fashion-MNIST not installed at {FashionMnist}: apt-get install dataset-fashion-mnist");
}
