using System.Runtime.InteropServices;
using SkiaSharp;

namespace AttnDistill.Tests.TestSupport;

/// <summary>
/// <see cref="SyntheticImageDataset"/> written to disk as an ImageFolder (root/train/classK/*.png,
/// root/test/classK/*.png): what the CLI and the jobs read, without any downloaded data.
/// </summary>
public static class SyntheticImageFolder
{
    public static string Write(int trainPerClass, int testPerClass, int size = 16, int classes = 4)
    {
        string root = Directory.CreateTempSubdirectory("attndistill-folder-").FullName;
        WriteSplit(Path.Combine(root, "train"), new SyntheticImageDataset(trainPerClass * classes, size, classes, seed: 1));
        WriteSplit(Path.Combine(root, "test"), new SyntheticImageDataset(testPerClass * classes, size, classes, seed: 2));
        return root;
    }

    static void WriteSplit(string dir, SyntheticImageDataset ds)
    {
        for (int i = 0; i < ds.Count; i++)
        {
            var img = ds.Load(i);
            string classDir = Path.Combine(dir, ds.ClassNames[ds.Label(i)]);
            Directory.CreateDirectory(classDir);
            var rgba = new byte[img.Width * img.Height * 4];
            for (int p = 0; p < img.Width * img.Height; p++)
            {
                rgba[4 * p] = img.Pixels[3 * p];
                rgba[4 * p + 1] = img.Pixels[3 * p + 1];
                rgba[4 * p + 2] = img.Pixels[3 * p + 2];
                rgba[4 * p + 3] = 255;
            }
            using var bmp = new SKBitmap(new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
            using var png = SKImage.FromBitmap(bmp).Encode(SKEncodedImageFormat.Png, 100);
            using var f = File.Create(Path.Combine(classDir, $"{i:D5}.png"));
            png.SaveTo(f);
        }
    }
}
