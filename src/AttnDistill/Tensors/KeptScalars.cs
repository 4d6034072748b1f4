using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Tensors;

/// <summary>
/// Scalars that stay reachable for the life of the process, and tensor arithmetic with numbers
/// over Scalars that stay reachable until libtorch has returned. TorchSharp 0.107 turns a C#
/// number into a finalizable <see cref="Scalar"/> and passes only its native handle to libtorch:
/// a temporary one (a number converted implicitly, or the alpha = 1 that <c>Tensor.add(Tensor)</c>
/// and the <c>+</c> operator make) is garbage as soon as its handle is read, so a GC on another
/// thread can free it while libtorch still reads it ("Expected false to be true ... toFloat",
/// seen after training and reproduced in seconds by a thread that collects in a loop:
/// Reliability/ScalarLifetimeTests). Library code makes no temporary Scalars (that test reads the
/// library's IL); it uses these instead, or holds a <c>using</c> Scalar across the call.
/// Each helper issues the same libtorch op with the same Scalar value and type as TorchSharp's
/// operator would, so results are bit-identical to the code they replace.
/// </summary>
public static class KeptScalars
{
    /// <summary>An integral 1: the alpha of add/add_ (what TorchSharp's add(Tensor) passes; valid for integer tensors too), arange's step, BatchNorm's counter increment.</summary>
    public static readonly Scalar One = 1.ToScalar();
    /// <summary>The exponent of <c>Tensor.square()</c> (TorchSharp: <c>pow(2)</c>, an int).</summary>
    public static readonly Scalar TwoInt = 2.ToScalar();
    public static readonly Scalar ZeroInt = 0.ToScalar();
    public static readonly Scalar Zero = 0.0.ToScalar();

    /// <summary>x + y (TorchSharp's <c>x + y</c>, alpha 1).</summary>
    public static Tensor Plus(this Tensor x, Tensor y) => x.add(y, KeptScalars.One);

    /// <summary>x += y in place.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y) => x.add_(y, KeptScalars.One);

    /// <summary>x + alpha * y in place.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y, double alpha)
    {
        using var a = alpha.ToScalar();
        return x.add_(y, a);
    }

    /// <summary>x + alpha * y.</summary>
    public static Tensor Plus(this Tensor x, Tensor y, double alpha)
    {
        using var a = alpha.ToScalar();
        return x.add(y, a);
    }

    /// <summary>x + v (a double Scalar, as <c>x + 0.5</c>).</summary>
    public static Tensor Plus(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.add(s, KeptScalars.One);
    }

    /// <summary>x + v in place.</summary>
    public static Tensor PlusInPlace(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.add_(s, KeptScalars.One);
    }

    /// <summary>x + v with an integral Scalar (index arithmetic on int64 tensors keeps its dtype).</summary>
    public static Tensor Plus(this Tensor x, long v)
    {
        using var s = v.ToScalar();
        return x.add(s, KeptScalars.One);
    }

    /// <summary>x - v.</summary>
    public static Tensor Minus(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.sub(s);
    }

    /// <summary>v - x, as TorchSharp's <c>v - x</c>: <c>(-x) + v</c>.</summary>
    public static Tensor SubtractedFrom(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        using var negated = x.negative();
        return negated.add(s, KeptScalars.One);
    }

    /// <summary>v - x with an integral v (<c>1 - mask</c> on an integer or float tensor).</summary>
    public static Tensor SubtractedFrom(this Tensor x, long v)
    {
        using var s = v.ToScalar();
        using var negated = x.negative();
        return negated.add(s, KeptScalars.One);
    }

    /// <summary>x * v.</summary>
    public static Tensor Times(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.mul(s);
    }

    /// <summary>x * v in place.</summary>
    public static Tensor TimesInPlace(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.mul_(s);
    }

    /// <summary>x / v.</summary>
    public static Tensor DividedBy(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.div(s);
    }

    /// <summary>x / v with an integral Scalar (as <c>x / count</c> with an int or long count).</summary>
    public static Tensor DividedBy(this Tensor x, long v)
    {
        using var s = v.ToScalar();
        return x.div(s);
    }

    /// <summary>x / v in place.</summary>
    public static Tensor DividedByInPlace(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.div_(s);
    }

    /// <summary>x², as <c>Tensor.square()</c> (pow with an int 2).</summary>
    public static Tensor Squared(this Tensor x) => x.pow(KeptScalars.TwoInt);

    /// <summary>x clamped to [min, max] (either side optional).</summary>
    public static Tensor ClampTo(this Tensor x, double? min = null, double? max = null)
    {
        using var lo = min?.ToScalar();
        using var hi = max?.ToScalar();
        return x.clamp(lo, hi);
    }

    /// <summary>max(x, min), libtorch's clamp_min.</summary>
    public static Tensor ClampMin(this Tensor x, double min)
    {
        using var lo = min.ToScalar();
        return x.clamp_min(lo);
    }

    /// <summary>x clamped in place.</summary>
    public static Tensor ClampToInPlace(this Tensor x, double? min = null, double? max = null)
    {
        using var lo = min?.ToScalar();
        using var hi = max?.ToScalar();
        return x.clamp_(lo, hi);
    }

    /// <summary>x filled with v in place.</summary>
    public static Tensor FillInPlace(this Tensor x, double v)
    {
        using var s = v.ToScalar();
        return x.fill_(s);
    }

    /// <summary>torch.arange(stop) with an integral stop: 0, 1, ..., stop - 1.</summary>
    public static Tensor Arange(long stop, ScalarType? dtype = null, Device? device = null)
    {
        using var stopScalar = stop.ToScalar();
        return torch.arange(KeptScalars.ZeroInt, stopScalar, KeptScalars.One, dtype, device);
    }

    /// <summary>torch.arange(start, stop, step) over doubles.</summary>
    public static Tensor Arange(double start, double stop, double step, ScalarType? dtype = null, Device? device = null)
    {
        using var a = start.ToScalar();
        using var b = stop.ToScalar();
        using var c = step.ToScalar();
        return torch.arange(a, b, c, dtype, device);
    }

    /// <summary>A tensor of <paramref name="shape"/> filled with v.</summary>
    public static Tensor Full(long[] shape, double v, ScalarType? dtype = null, Device? device = null)
    {
        using var s = v.ToScalar();
        return torch.full(shape, s, dtype, device);
    }

    /// <summary>A byte tensor of <paramref name="shape"/> filled with v.</summary>
    public static Tensor Full(long[] shape, byte v, ScalarType? dtype = null, Device? device = null)
    {
        using var s = v.ToScalar();
        return torch.full(shape, s, dtype, device);
    }
}
