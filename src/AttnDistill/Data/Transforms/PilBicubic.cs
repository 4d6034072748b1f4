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
        int cropX, int cropY, int cropW, int cropH, int outW, int outH)
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
        var temp = Horizontal(src, srcW, channels, cropX, cropY + first, last - first, outW, kH, boundsH, coeffH);
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

    private static byte[] Horizontal(byte[] src, int srcW, int channels, int x0, int y0, int rows, int outW,
        int ksize, int[] bounds, int[] coeffs)
    {
        var dst = new byte[rows * outW * channels];
        const int half = 1 << (PrecisionBits - 1);
        for (int yy = 0; yy < rows; yy++)
        {
            int rowBase = ((y0 + yy) * srcW + x0) * channels;
            int outBase = yy * outW * channels;
            for (int xx = 0; xx < outW; xx++)
            {
                int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1], kBase = xx * ksize;
                int p = rowBase + xmin * channels;
                if (channels == 3)
                {
                    int s0 = half, s1 = half, s2 = half;
                    for (int x = 0; x < xmax; x++, p += 3)
                    {
                        int w = coeffs[kBase + x];
                        s0 += src[p] * w;
                        s1 += src[p + 1] * w;
                        s2 += src[p + 2] * w;
                    }
                    int o = outBase + xx * 3;
                    dst[o] = Clip8(s0);
                    dst[o + 1] = Clip8(s1);
                    dst[o + 2] = Clip8(s2);
                }
                else
                {
                    for (int c = 0; c < channels; c++)
                    {
                        int s = half;
                        for (int x = 0; x < xmax; x++) s += src[p + x * channels + c] * coeffs[kBase + x];
                        dst[outBase + xx * channels + c] = Clip8(s);
                    }
                }
            }
        }
        return dst;
    }

    private static byte[] Vertical(byte[] src, int srcW, int channels, int x0, int y0, int outW, int outH,
        int ksize, int[] bounds, int[] coeffs)
    {
        var dst = new byte[outH * outW * channels];
        const int half = 1 << (PrecisionBits - 1);
        int rowStride = srcW * channels;
        int width = outW * channels; // vertical pass keeps the width
        for (int yy = 0; yy < outH; yy++)
        {
            int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], kBase = yy * ksize;
            int colBase = ((y0 + ymin) * srcW + x0) * channels;
            int outBase = yy * width;
            for (int xc = 0; xc < width; xc++)
            {
                int s = half;
                int p = colBase + xc;
                for (int y = 0; y < ymax; y++, p += rowStride) s += src[p] * coeffs[kBase + y];
                dst[outBase + xc] = Clip8(s);
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
