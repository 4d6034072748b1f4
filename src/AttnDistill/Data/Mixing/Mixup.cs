using AttnDistill.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Data.Mixing;

/// <summary>
/// Mixup and CutMix with soft targets, as timm's <c>timm.data.Mixup</c> (the fine-tuning recipes
/// of MAE, DeiT, BEiT, iBOT and Mugs): per batch, per pair or per element, the image is blended
/// with its mirror in the batch (element B-1-i) with weight lambda ~ Beta(alpha, alpha), or a box
/// of the mirror is pasted in (lambda corrected to the pasted area), and the one-hot targets,
/// label-smoothed, are blended with the same lambda. Draws come from an <see cref="IMixingRandom"/>
/// in timm's order, so a replay of timm's draws gives timm's images and targets.
/// </summary>
public sealed class Mixup
{
    private readonly MixupOptions _o;
    private readonly IMixingRandom _random;
    private readonly int _classes;
    private readonly double _mixupAlpha, _cutmixAlpha;

    public Mixup(MixupOptions options, int numClasses, IMixingRandom? random = null)
    {
        _o = options.Validate();
        if (!_o.Active) throw new ArgumentException("Mixup needs --mixup > 0, --cutmix > 0 or --cutmix-minmax.");
        if (numClasses < 2) throw new ArgumentException($"mixing targets needs at least 2 classes, got {numClasses}.");
        _classes = numClasses;
        _random = random ?? TorchMixingRandom.Instance;
        _mixupAlpha = _o.MixupAlpha;
        // timm forces alpha 1 when min/max boxes are asked for.
        _cutmixAlpha = _o.CutmixMinMax is null ? _o.CutmixAlpha : 1.0;
    }

    /// <summary>Mixed images [B, C, H, W] (a new tensor) and soft targets [B, classes] in the images' dtype and device.</summary>
    public (Tensor Images, Tensor Targets) Apply(Tensor images, Tensor labels)
    {
        long b = images.shape[0];
        if (b % 2 != 0) throw new ArgumentException($"Mixup/CutMix mixes each image with its mirror in the batch: the batch size must be even, got {b}; change --batch-size.");
        var x = images.clone();
        Tensor targets;
        switch (_o.Mode)
        {
            case MixupMode.Batch:
            {
                double lam = MixBatch(x);
                targets = MixTargets(labels, x.dtype, t => t.Times(lam), t => t.Times(1.0 - lam));
                break;
            }
            default:
            {
                var lam = _o.Mode == MixupMode.Elem ? MixElem(x) : MixPair(x);
                using var column = tensor(lam, dtype: x.dtype, device: x.device).unsqueeze(1);   // (B, 1)
                targets = MixTargets(labels, x.dtype, t => t * column, t => t * column.SubtractedFrom(1.0));
                break;
            }
        }
        return (x, targets);
    }

    /// <summary>timm's mixup_target: smoothed one-hot of the labels and of the mirrored labels, blended.</summary>
    private Tensor MixTargets(Tensor labels, ScalarType dtype, Func<Tensor, Tensor> weight, Func<Tensor, Tensor> rest)
    {
        using var scope = NewDisposeScope();
        double off = _o.LabelSmoothing / _classes, on = 1.0 - _o.LabelSmoothing + off;
        Tensor OneHot(Tensor y)
        {
            using var onValue = on.ToScalar();
            return KeptScalars.Full(new long[] { y.shape[0], _classes }, off, ScalarType.Float32, labels.device)
                .masked_fill_(nn.functional.one_hot(y.to(ScalarType.Int64), _classes).to(ScalarType.Bool), onValue);
        }
        var y1 = OneHot(labels);
        var y2 = OneHot(labels.flip(0));
        return weight(y1).Plus(rest(y2)).to(dtype).MoveToOuterDisposeScope();
    }

    private (double Lam, bool UseCutmix) ParamsPerBatch()
    {
        if (!(_random.Unit() < _o.Prob)) return (1.0, false);
        if (_mixupAlpha > 0 && _cutmixAlpha > 0)
        {
            bool cut = _random.Unit() < _o.SwitchProb;
            return (_random.Beta(cut ? _cutmixAlpha : _mixupAlpha), cut);
        }
        return _mixupAlpha > 0 ? (_random.Beta(_mixupAlpha), false) : (_random.Beta(_cutmixAlpha), true);
    }

    /// <summary>timm's _params_per_elem: whole arrays drawn in turn (switches, CutMix lambdas, Mixup lambdas, then the apply draws).</summary>
    private (float[] Lam, bool[] UseCutmix) ParamsPerElem(int n)
    {
        var lam = Enumerable.Repeat(1f, n).ToArray();
        var cut = new bool[n];
        double[] mix;
        if (_mixupAlpha > 0 && _cutmixAlpha > 0)
        {
            for (int i = 0; i < n; i++) cut[i] = _random.Unit() < _o.SwitchProb;
            var cutLam = Enumerable.Range(0, n).Select(_ => _random.Beta(_cutmixAlpha)).ToArray();
            var mixLam = Enumerable.Range(0, n).Select(_ => _random.Beta(_mixupAlpha)).ToArray();
            mix = Enumerable.Range(0, n).Select(i => cut[i] ? cutLam[i] : mixLam[i]).ToArray();
        }
        else if (_mixupAlpha > 0) mix = Enumerable.Range(0, n).Select(_ => _random.Beta(_mixupAlpha)).ToArray();
        else
        {
            Array.Fill(cut, true);
            mix = Enumerable.Range(0, n).Select(_ => _random.Beta(_cutmixAlpha)).ToArray();
        }
        for (int i = 0; i < n; i++)
            if (_random.Unit() < _o.Prob) lam[i] = (float)mix[i];
        return (lam, cut);
    }

    private double MixBatch(Tensor x)
    {
        var (lam, cut) = ParamsPerBatch();
        if (lam == 1.0) return 1.0;
        using var scope = NewDisposeScope();
        if (cut)
        {
            var (box, corrected) = BoxAndLam(x.shape[^2], x.shape[^1], lam);
            var flipped = x.flip(0);
            Region(x, box).copy_(Region(flipped, box));
            return corrected;
        }
        var mirrored = x.flip(0).TimesInPlace(1.0 - lam);
        x.TimesInPlace(lam).PlusInPlace(mirrored);
        return lam;
    }

    private float[] MixElem(Tensor x)
    {
        int b = (int)x.shape[0];
        var (lam, cut) = ParamsPerElem(b);
        using var scope = NewDisposeScope();
        using var original = x.clone();
        for (int i = 0; i < b; i++)
        {
            int j = b - i - 1;
            if (lam[i] == 1f) continue;
            if (cut[i])
            {
                var (box, corrected) = BoxAndLam(x.shape[^2], x.shape[^1], lam[i]);
                Region(x[i], box).copy_(Region(original[j], box));
                lam[i] = (float)corrected;
            }
            else x[i].copy_(x[i].Times(lam[i]).Plus(original[j].Times(1 - lam[i])));
        }
        return lam;
    }

    private float[] MixPair(Tensor x)
    {
        int b = (int)x.shape[0];
        var (lam, cut) = ParamsPerElem(b / 2);
        using var scope = NewDisposeScope();
        using var original = x.clone();
        for (int i = 0; i < b / 2; i++)
        {
            int j = b - i - 1;
            if (lam[i] == 1f) continue;
            if (cut[i])
            {
                var (box, corrected) = BoxAndLam(x.shape[^2], x.shape[^1], lam[i]);
                Region(x[i], box).copy_(Region(original[j], box));
                Region(x[j], box).copy_(Region(original[i], box));
                lam[i] = (float)corrected;
            }
            else
            {
                x[i].copy_(x[i].Times(lam[i]).Plus(original[j].Times(1 - lam[i])));
                x[j].copy_(x[j].Times(lam[i]).Plus(original[i].Times(1 - lam[i])));
            }
        }
        return lam.Concat(lam.Reverse()).ToArray();
    }

    private readonly record struct Box(long Top, long Bottom, long Left, long Right);

    /// <summary>The last two dimensions' [top, bottom) x [left, right) of x.</summary>
    private static Tensor Region(Tensor x, Box box) =>
        x.narrow(-2, box.Top, box.Bottom - box.Top).narrow(-1, box.Left, box.Right - box.Left);

    /// <summary>
    /// timm's cutmix_bbox_and_lam (in float64, as numpy computes it; the per-element modes pass
    /// their float32 lambda, as timm's float32 arrays do).
    /// </summary>
    private (Box Box, double Lam) BoxAndLam(long h, long w, double lam)
    {
        Box box;
        if (_o.CutmixMinMax is { } mm)
        {
            int cutH = _random.Integer((int)(h * mm.Min), (int)(h * mm.Max));
            int cutW = _random.Integer((int)(w * mm.Min), (int)(w * mm.Max));
            int top = _random.Integer(0, (int)h - cutH), left = _random.Integer(0, (int)w - cutW);
            box = new Box(top, top + cutH, left, left + cutW);
        }
        else
        {
            double ratio = Math.Sqrt(1 - lam);
            long cutH = (long)(h * ratio), cutW = (long)(w * ratio);
            long cy = _random.Integer(0, (int)h), cx = _random.Integer(0, (int)w);
            box = new Box(Math.Clamp(cy - cutH / 2, 0, h), Math.Clamp(cy + cutH / 2, 0, h), Math.Clamp(cx - cutW / 2, 0, w), Math.Clamp(cx + cutW / 2, 0, w));
        }
        if (_o.CorrectLam || _o.CutmixMinMax is not null)
            lam = 1.0 - (double)((box.Bottom - box.Top) * (box.Right - box.Left)) / (h * w);
        return (box, lam);
    }
}
