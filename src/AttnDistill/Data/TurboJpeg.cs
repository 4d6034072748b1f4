using System.Runtime.InteropServices;

namespace AttnDistill.Data;

/// <summary>
/// Optional fast JPEG path: the system's TurboJPEG library (Debian package <c>libturbojpeg0</c>),
/// loaded at run time when present. It is libjpeg-turbo with its SIMD code, the decoder PIL uses,
/// with PIL's settings (accurate integer IDCT, smooth chroma upsampling), so pixels are the same;
/// SkiaSharp's bundled libjpeg-turbo is built without SIMD and is several times slower.
/// CMYK/YCCK files and files TurboJPEG rejects or warns about are left to SkiaSharp.
/// </summary>
internal static unsafe class TurboJpeg
{
    private const int PixelFormatRgb = 0; // TJPF_RGB
    private const int ColorspaceCmyk = 3; // TJCS_CMYK
    private const int ColorspaceYcck = 4; // TJCS_YCCK

    private static readonly delegate* unmanaged<IntPtr> InitDecompress;
    private static readonly delegate* unmanaged<IntPtr, byte*, nuint, int*, int*, int*, int*, int> DecompressHeader3;
    private static readonly delegate* unmanaged<IntPtr, byte*, nuint, byte*, int, int, int, int, int, int> Decompress2;
    private static readonly delegate* unmanaged<IntPtr, int> Destroy;

    static TurboJpeg()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libturbojpeg.so.0", out IntPtr lib)) return;
        if (!NativeLibrary.TryGetExport(lib, "tjInitDecompress", out IntPtr init)
            || !NativeLibrary.TryGetExport(lib, "tjDecompressHeader3", out IntPtr header)
            || !NativeLibrary.TryGetExport(lib, "tjDecompress2", out IntPtr decompress)
            || !NativeLibrary.TryGetExport(lib, "tjDestroy", out IntPtr destroy))
            return;
        InitDecompress = (delegate* unmanaged<IntPtr>)init;
        DecompressHeader3 = (delegate* unmanaged<IntPtr, byte*, nuint, int*, int*, int*, int*, int>)header;
        Decompress2 = (delegate* unmanaged<IntPtr, byte*, nuint, byte*, int, int, int, int, int, int>)decompress;
        Destroy = (delegate* unmanaged<IntPtr, int>)destroy;
        Available = true;
    }

    /// <summary>True when libturbojpeg.so.0 was found.</summary>
    public static bool Available { get; }

    /// <summary>True for data starting with the JPEG start-of-image marker.</summary>
    public static bool LooksLikeJpeg(ReadOnlySpan<byte> data) => data.Length > 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;

    /// <summary>Decodes to RGB, or returns null for anything this path does not handle cleanly.</summary>
    public static DecodedImage? TryDecode(ReadOnlySpan<byte> jpeg, string name = "image")
    {
        if (!Available) return null;
        IntPtr handle = InitDecompress();
        if (handle == IntPtr.Zero) return null;
        try
        {
            fixed (byte* src = jpeg)
            {
                int w, h, subsamp, colorspace;
                if (DecompressHeader3(handle, src, (nuint)jpeg.Length, &w, &h, &subsamp, &colorspace) != 0) return null;
                if (w <= 0 || h <= 0 || colorspace is ColorspaceCmyk or ColorspaceYcck) return null;
                ImageDecoder.CheckPixelBudget(w, h, name);
                var rgb = new byte[(long)w * h * 3];
                fixed (byte* dst = rgb)
                {
                    // Flags 0: accurate IDCT and smooth upsampling (libjpeg's defaults, as PIL); -1 also on warnings.
                    if (Decompress2(handle, src, (nuint)jpeg.Length, dst, w, w * 3, h, PixelFormatRgb, 0) != 0) return null;
                }
                return new DecodedImage(w, h, 3, rgb);
            }
        }
        finally
        {
            Destroy(handle);
        }
    }
}
