using AttnDistill.Checkpoints;
using AttnDistill.Export;
using AttnDistill.Tests.TestSupport;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Export;

/// <summary>Head state dicts are read by role: MAE's Sequential(BatchNorm1d, Linear), a bare Linear, a whole model.</summary>
public class ClassifierHeadFileTests
{
    [Fact]
    public void LinearProbeHeadStateDictKeepsItsBatchNorm()
    {
        using var probe = OnnxExportTests.ProbeHead(16, 3, seed: 21);
        using var head = ClassifierHeadFile.FromStateDict(probe.state_dict());
        Assert.True(head.HasBatchNorm);
        Assert.Equal("1.weight", head.Keys["weight"]);
        Assert.Equal("0.running_var", head.Keys["running_var"]);
        Assert.Null(head.BnWeight);
        using var scope = NewDisposeScope();
        var x = randn(4, 16);
        using var _ = no_grad();
        TensorAssert.Close(probe.forward(x), head.Forward(x), "head", 0, 1e-6);
    }

    [Fact]
    public void PlainLinearAndWholeModelDictsAreRead()
    {
        using var scope = NewDisposeScope();
        var plain = new Dictionary<string, Tensor> { ["weight"] = randn(5, 8), ["bias"] = randn(5) };
        using (var head = ClassifierHeadFile.FromStateDict(plain))
        {
            Assert.False(head.HasBatchNorm);
            Assert.Equal(5, head.NumClasses);
        }
        var whole = new Dictionary<string, Tensor>
        {
            ["module.blocks.0.mlp.fc1.weight"] = randn(32, 8), ["module.norm.weight"] = ones(8),
            ["module.head.weight"] = randn(5, 8), ["module.head.bias"] = randn(5),
        };
        using (var head = ClassifierHeadFile.FromStateDict(whole))
            Assert.Equal("module.head.weight", head.Keys["weight"]);
        var mae = new Dictionary<string, Tensor>
        {
            ["head.0.running_mean"] = zeros(8), ["head.0.running_var"] = ones(8), ["head.0.num_batches_tracked"] = tensor(3L),
            ["head.1.weight"] = randn(5, 8), ["head.1.bias"] = randn(5),
        };
        using (var head = ClassifierHeadFile.FromStateDict(mae))
            Assert.True(head.HasBatchNorm);
    }

    [Fact]
    public void WhatIsNotALinearHeadIsRefused()
    {
        using var scope = NewDisposeScope();
        var mlp = new Dictionary<string, Tensor> { ["0.weight"] = randn(8, 8), ["2.weight"] = randn(5, 8) };
        var e = Assert.Throws<CheckpointFormatException>(() => ClassifierHeadFile.FromStateDict(mlp, "mlp.pth"));
        Assert.Contains("exactly one 2-D tensor", e.Message);
        var badBias = new Dictionary<string, Tensor> { ["weight"] = randn(5, 8), ["bias"] = randn(4) };
        Assert.Contains("expected [5]", Assert.Throws<CheckpointFormatException>(() => ClassifierHeadFile.FromStateDict(badBias)).Message);
        var stray = new Dictionary<string, Tensor> { ["weight"] = randn(5, 8), ["temperature"] = ones(1) };
        Assert.Contains("temperature", Assert.Throws<CheckpointFormatException>(() => ClassifierHeadFile.FromStateDict(stray)).Message);
    }
}
