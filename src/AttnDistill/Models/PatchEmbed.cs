using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>Image to patch tokens: Conv2d with kernel = stride = patch. (B, C, H, W) -> (B, N, D).</summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    // Field names are PyTorch's attribute names: they become state-dict keys.
#pragma warning disable IDE1006
    private readonly Conv2d proj;
#pragma warning restore IDE1006

    public int PatchSize { get; }

    public PatchEmbed(int patchSize, int inChans, int embedDim) : base(nameof(PatchEmbed))
    {
        PatchSize = patchSize;
        proj = nn.Conv2d(inChans, embedDim, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    public Conv2d Proj => proj;

    public override Tensor forward(Tensor x)
    {
        long h = x.shape[2], w = x.shape[3];
        if (h % PatchSize != 0 || w % PatchSize != 0)
            throw new ArgumentException(
                $"input {h}x{w} is not a multiple of the patch size {PatchSize}: resize or crop the images to a multiple of {PatchSize}.");
        // A backbone cast to bf16 (inference, the bf16-teacher bench lever) still takes float32 images;
        // under autocast the weights stay fp32 and the conv casts both sides itself.
        using var input = x.dtype == proj.weight!.dtype ? x.alias() : x.to(proj.weight.dtype);
        using var y = Autocast.Conv2d(proj, input);          // (B, D, H/p, W/p)
        return y.flatten(2).transpose(1, 2);        // (B, N, D), raster order
    }
}
