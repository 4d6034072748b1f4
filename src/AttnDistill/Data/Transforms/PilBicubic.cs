using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttnDistill.Data.Transforms;

/// <summary>
/// PIL's bicubic resampling (Pillow's <c>Resample.c</c>, 8 bits per channel), reproduced
/// operation for operation so results are bit-identical with <c>Image.resize(size, BICUBIC)</c>,
/// the path torchvision takes on PIL images: separable (horizontal pass first, only on the rows the
/// vertical pass needs), Keys cubic with a = -0.5 stretched by the scale when shrinking
/// (antialiasing), weights normalised then stored as 22-bit fixed point, and the intermediate
/// image rounded and clipped to 8 bits.
/// </summary>
/// <remarks>
/// Why not libtorch's <c>interpolate(bicubic, antialias: true)</c>: it uses the same kernel but in
/// float without the 8-bit intermediate, which differs from PIL by several levels at sharp edges;
/// and running it on worker threads would share libtorch's intra-op thread pool with training.
/// These loops run over decoded image bytes, like the decoder itself, not over tensor data.
/// </remarks>
public static class PilBicubic
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const double Support = 2.0;

    /// <summary>
    /// Resizes the region (cropX, cropY, cropW, cropH) of an HWC image of srcW x srcH x channels to
    /// outW x outH, as <c>img.crop(box).resize((outW, outH), BICUBIC)</c>. Pixels outside the crop
    /// are never read (the crop's edges are clamped as PIL's are).
    /// </summary>
    public static byte[] ResizeCrop(byte[] src, int srcW, int srcH, int channels,
        int cropX, int cropY, int cropW, int cropH, int outW, int outH) =>
        ResizeCrop(src, srcW, srcH, channels, cropX, cropY, cropW, cropH, outW, outH, simd: true);

    /// <param name="simd">False: the scalar horizontal pass only (tests compare the two).</param>
    internal static byte[] ResizeCrop(byte[] src, int srcW, int srcH, int channels,
        int cropX, int cropY, int cropW, int cropH, int outW, int outH, bool simd)
    {
        if (cropX < 0 || cropY < 0 || cropW <= 0 || cropH <= 0 || cropX + cropW > srcW || cropY + cropH > srcH)
            throw new ArgumentOutOfRangeException(nameof(cropX), $"crop ({cropX},{cropY},{cropW}x{cropH}) outside image {srcW}x{srcH}");
        if (outW <= 0 || outH <= 0) throw new ArgumentOutOfRangeException(nameof(outW), $"output size {outW}x{outH}");
        if (src.Length != (long)srcW * srcH * channels) throw new ArgumentException("buffer size does not match the image size", nameof(src));

        bool needH = outW != cropW;
        bool needV = outH != cropH;
        if (!needH && !needV) return CopyCrop(src, srcW, channels, cropX, cropY, cropW, cropH);

        var (kH, boundsH, coeffH) = Coefficients(cropW, outW);
        var (kV, boundsV, coeffV) = Coefficients(cropH, outH);

        if (!needH) return Vertical(src, srcW, channels, cropX, cropY, outW, outH, kV, boundsV, coeffV);

        // Rows of the crop that the vertical pass reads.
        int first = needV ? boundsV[0] : 0;
        int last = needV ? boundsV[2 * outH - 2] + boundsV[2 * outH - 1] : cropH;
        var temp = Horizontal(src, srcW, channels, cropX, cropY + first, last - first, outW, kH, boundsH, coeffH, simd);
        if (!needV) return temp;
        for (int i = 0; i < outH; i++) boundsV[2 * i] -= first;
        return Vertical(temp, outW, channels, 0, 0, outW, outH, kV, boundsV, coeffV);
    }

    private static double Filter(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Pillow's <c>precompute_coeffs</c> + <c>normalize_coeffs_8bpc</c> for the box [0, inSize).</summary>
    private static (int KSize, int[] Bounds, int[] Coeffs) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = scale < 1.0 ? 1.0 : scale;
        double support = Support * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var coeffs = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double ww = 0.0;
            double ss = 1.0 / filterScale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Filter((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                if (ww != 0.0) k[x] /= ww;
                double scaled = k[x] * (1 << PrecisionBits);
                coeffs[xx * ksize + x] = k[x] < 0 ? (int)(-0.5 + scaled) : (int)(0.5 + scaled);
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return (ksize, bounds, coeffs);
    }

    private static byte Clip8(int v)
    {
        if (v >= 1 << PrecisionBits << 8) return 255;
        if (v <= 0) return 0;
        return (byte)(v >> PrecisionBits);
    }

    private static unsafe byte[] Horizontal(byte[] src, int srcW, int channels, int x0, int y0, int rows, int outW,
        int ksize, int[] bounds, int[] coeffs, bool simd)
    {
        if (simd && channels == 3 && Avx2.IsSupported) return HorizontalRgbAvx2(src, srcW, x0, y0, rows, outW, ksize, bounds, coeffs);
        var dst = new byte[rows * outW * channels];
        const int half = 1 << (PrecisionBits - 1);
        fixed (byte* s0p = src, d0p = dst)
        fixed (int* k0p = coeffs, b0p = bounds)
        {
            for (int yy = 0; yy < rows; yy++)
            {
                byte* row = s0p + ((long)(y0 + yy) * srcW + x0) * channels;
                byte* outRow = d0p + (long)yy * outW * channels;
                for (int xx = 0; xx < outW; xx++)
                {
                    int xmin = b0p[2 * xx], xmax = b0p[2 * xx + 1];
                    int* k = k0p + xx * ksize;
                    byte* p = row + xmin * channels;
                    if (channels == 3)
                    {
                        RgbPixel(p, k, xmax, outRow + xx * 3);
                    }
                    else
                    {
                        for (int c = 0; c < channels; c++)
                        {
                            int a = half;
                            for (int x = 0; x < xmax; x++) a += p[x * channels + c] * k[x];
                            outRow[xx * channels + c] = Clip8(a);
                        }
                    }
                }
            }
        }
        return dst;
    }

    /// <summary>One output pixel of the horizontal pass on RGB: xmax taps from p weighted by k, written to o.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void RgbPixel(byte* p, int* k, int xmax, byte* o)
    {
        const int half = 1 << (PrecisionBits - 1);
        int a0 = half, a1 = half, a2 = half;
        for (int x = 0; x < xmax; x++, p += 3)
        {
            int w = k[x];
            a0 += p[0] * w;
            a1 += p[1] * w;
            a2 += p[2] * w;
        }
        o[0] = Clip8(a0);
        o[1] = Clip8(a1);
        o[2] = Clip8(a2);
    }

    /// <summary>
    /// The horizontal pass on RGB rows, four taps at a time: a byte shuffle spreads four RGB pixels
    /// into RGB0 lanes, which are widened to ints and multiplied by each tap's weight repeated over
    /// its pixel's lanes. The sums are the same int32 sums as the scalar loop in another order, and
    /// int32 addition is associative (it wraps), so the result is bit-identical. Taps are padded to
    /// a multiple of four with zero weights; a load that would pass the end of the buffer falls
    /// back to the scalar loop for that pixel.
    /// </summary>
    private static unsafe byte[] HorizontalRgbAvx2(byte[] src, int srcW, int x0, int y0, int rows, int outW,
        int ksize, int[] bounds, int[] coeffs)
    {
        var dst = new byte[rows * outW * 3];
        const int half = 1 << (PrecisionBits - 1);
        int groups = (ksize + 3) / 4;
        // weights[xx][g] = 8 ints: taps 4g, 4g+1 (lanes 0-3, 4-7), then 4g+2, 4g+3 in a second vector.
        var weights = new int[outW * groups * 16];
        for (int xx = 0; xx < outW; xx++)
            for (int t = 0; t < bounds[2 * xx + 1]; t++)
                for (int c = 0; c < 3; c++)
                    weights[(xx * groups + t / 4) * 16 + (t % 4) * 4 + c] = coeffs[xx * ksize + t];
        // Pixel j of four (bytes 3j..3j+2) to lanes 4j..4j+2; lane 4j+3 zero (index 0x80).
        var spread = Vector128.Create((byte)0, 1, 2, 0x80, 3, 4, 5, 0x80, 6, 7, 8, 0x80, 9, 10, 11, 0x80);
        long end = src.Length;
        fixed (byte* s0p = src, d0p = dst)
        fixed (int* w0p = weights, k0p = coeffs, b0p = bounds)
        {
            for (int yy = 0; yy < rows; yy++)
            {
                long rowStart = ((long)(y0 + yy) * srcW + x0) * 3;
                byte* outRow = d0p + (long)yy * outW * 3;
                for (int xx = 0; xx < outW; xx++)
                {
                    int xmin = b0p[2 * xx], xmax = b0p[2 * xx + 1];
                    long first = rowStart + xmin * 3L;
                    byte* o = outRow + xx * 3;
                    if (first + (groups - 1) * 12L + 16 > end)
                    {
                        RgbPixel(s0p + first, k0p + xx * ksize, xmax, o);
                        continue;
                    }
                    var acc = Vector256<int>.Zero;
                    byte* px = s0p + first;
                    int* w = w0p + xx * groups * 16;
                    for (int g = 0; g < groups; g++, px += 12, w += 16)
                    {
                        var rgb0 = Ssse3.Shuffle(Sse2.LoadVector128(px), spread);
                        var lo = Avx2.ConvertToVector256Int32(rgb0);
                        var hi = Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(rgb0, 8));
                        acc = Avx2.Add(acc, Avx2.MultiplyLow(lo, Avx.LoadVector256(w)));
                        acc = Avx2.Add(acc, Avx2.MultiplyLow(hi, Avx.LoadVector256(w + 8)));
                    }
                    var sum = Sse2.Add(acc.GetLower(), acc.GetUpper());
                    o[0] = Clip8(half + sum.GetElement(0));
                    o[1] = Clip8(half + sum.GetElement(1));
                    o[2] = Clip8(half + sum.GetElement(2));
                }
            }
        }
        return dst;
    }

    private static unsafe byte[] Vertical(byte[] src, int srcW, int channels, int x0, int y0, int outW, int outH,
        int ksize, int[] bounds, int[] coeffs)
    {
        var dst = new byte[outH * outW * channels];
        const int half = 1 << (PrecisionBits - 1);
        int width = outW * channels; // the vertical pass keeps the width
        // Whole rows are accumulated into int sums (the same integer sums as PIL's per-pixel loop,
        // in another order, which integers do not mind), so the inner loop is contiguous and vectorised.
        var acc = new int[width];
        int vi = Vector<int>.Count, vb = Vector<byte>.Count;
        fixed (byte* s0p = src, d0p = dst)
        fixed (int* a0p = acc)
        {
            for (int yy = 0; yy < outH; yy++)
            {
                int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], kBase = yy * ksize;
                new Span<int>(a0p, width).Fill(half);
                for (int y = 0; y < ymax; y++)
                {
                    int w = coeffs[kBase + y];
                    byte* row = s0p + ((long)(y0 + ymin + y) * srcW + x0) * channels;
                    var wv = new Vector<int>(w);
                    int xc = 0;
                    for (; xc + vb <= width; xc += vb)
                    {
                        var bytes = Unsafe.ReadUnaligned<Vector<byte>>(row + xc);
                        Vector.Widen(bytes, out Vector<ushort> lo, out Vector<ushort> hi);
                        Vector.Widen(lo, out Vector<uint> q0, out Vector<uint> q1);
                        Vector.Widen(hi, out Vector<uint> q2, out Vector<uint> q3);
                        int* a = a0p + xc;
                        Unsafe.WriteUnaligned(a, Unsafe.ReadUnaligned<Vector<int>>(a) + Vector.AsVectorInt32(q0) * wv);
                        Unsafe.WriteUnaligned(a + vi, Unsafe.ReadUnaligned<Vector<int>>(a + vi) + Vector.AsVectorInt32(q1) * wv);
                        Unsafe.WriteUnaligned(a + 2 * vi, Unsafe.ReadUnaligned<Vector<int>>(a + 2 * vi) + Vector.AsVectorInt32(q2) * wv);
                        Unsafe.WriteUnaligned(a + 3 * vi, Unsafe.ReadUnaligned<Vector<int>>(a + 3 * vi) + Vector.AsVectorInt32(q3) * wv);
                    }
                    for (; xc < width; xc++) a0p[xc] += row[xc] * w;
                }
                byte* outRow = d0p + (long)yy * width;
                for (int xc = 0; xc < width; xc++) outRow[xc] = Clip8(a0p[xc]);
            }
        }
        return dst;
    }

    private static byte[] CopyCrop(byte[] src, int srcW, int channels, int x0, int y0, int w, int h)
    {
        var dst = new byte[w * h * channels];
        for (int y = 0; y < h; y++)
            Array.Copy(src, ((y0 + y) * srcW + x0) * channels, dst, y * w * channels, w * channels);
        return dst;
    }
}
