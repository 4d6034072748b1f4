using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;

namespace AttnDistill.Tests.Checkpoints;

/// <summary>Which upstream rule a checkpoint's position table is resampled by, told from the file.</summary>
public class PosEmbedSourceTests
{
    static PosEmbedSource Of(string path)
    {
        using var c = CheckpointReader.Read(path);
        return PosEmbedSource.Of(c);
    }

    [Theory]
    [InlineData("vit_a.pth", PosEmbedRule.Dino, "a plain state dict")]
    [InlineData("vit_a_dino.pth", PosEmbedRule.Dino, "a DINO/iBOT training checkpoint ('teacher')")]
    [InlineData("vit_b_mae.pth", PosEmbedRule.Mae, "an MAE/DeiT checkpoint under 'model'")]
    [InlineData("vit_a.safetensors", PosEmbedRule.Timm, "timm's format")]
    public void TheFilesLayoutNamesItsSource(string fixture, PosEmbedRule rule, string why)
    {
        var source = Of(VitFixtures.Path(fixture));
        Assert.Equal(rule, source.Rule);
        Assert.Contains(why, source.Why);
    }

    [Theory]
    [InlineData("dino_deitsmall16_pretrain.pth", PosEmbedRule.Dino, "dino teacher dino_vits16")]
    [InlineData("mae_pretrain_vit_base.pth", PosEmbedRule.Mae, "mae teacher mae_vitb16")]
    [InlineData("vit_small_backbone_800ep.pth", PosEmbedRule.Dino, "mugs teacher mugs_vits16")]
    public void AZooFileIsKnownByItsCacheName(string fileName, PosEmbedRule rule, string why)
    {
        string dir = Directory.CreateTempSubdirectory("posembed-source-").FullName;
        try
        {
            string path = Path.Combine(dir, fileName);
            File.Copy(VitFixtures.Path("vit_a.pth"), path);
            var source = Of(path);
            Assert.Equal(rule, source.Rule);
            Assert.False(source.RebuildSinCos);
            Assert.Contains(why, source.Why);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void AFileThisProjectWroteKeepsItsOwnRuleAndExactSinCosTables()
    {
        string dir = Directory.CreateTempSubdirectory("posembed-source-").FullName;
        try
        {
            string path = Path.Combine(dir, "backbone.safetensors");
            using (var m = new VisionTransformer(VitFixtures.Config("vit_b"))) BackboneExport.SaveSafetensors(m, path, m.Config);
            var source = Of(path);
            Assert.Equal(PosEmbedRule.Dino, source.Rule);
            Assert.True(source.RebuildSinCos);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
