namespace AttnDistill.Tests.Distributed;

/// <summary>A tiny CIFAR-10 binary data set (data_batch_1..5.bin, test_batch.bin): 32 px, a class-specific bright square on noise.</summary>
static class SyntheticCifar
{
    public static string Write(string dir, int trainImages, int testImages = 40)
    {
        Directory.CreateDirectory(dir);
        var rng = new Random(7);
        int index = 0;
        byte[] Records(int n)
        {
            var bytes = new byte[n * 3073];
            for (int r = 0; r < n; r++, index++)
            {
                int label = index % 10, o = r * 3073;
                bytes[o] = (byte)label;
                for (int i = 1; i <= 3072; i++) bytes[o + i] = (byte)rng.Next(64);
                int top = (label / 5) * 16, left = (label % 5) * 6;
                for (int y = top; y < top + 16; y++)
                    for (int x = left; x < left + 6; x++)
                        bytes[o + 1 + (label % 3) * 1024 + y * 32 + x] = 255;   // planes R, G, B of 32 x 32
            }
            return bytes;
        }
        for (int f = 1; f <= 5; f++) File.WriteAllBytes(Path.Combine(dir, $"data_batch_{f}.bin"), Records(trainImages / 5));
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), Records(testImages));
        return dir;
    }
}
