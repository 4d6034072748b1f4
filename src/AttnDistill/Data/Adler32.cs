namespace AttnDistill.Data;

/// <summary>
/// Adler-32, the checksum that ends a zlib stream. .NET's ZLibStream checks it when the stream is
/// whole but reports a stream cut short as a plain end of data, so <see cref="Png16Decoder"/> keeps
/// its own running sum to tell a zlib stream that really ended from one that was truncated.
/// </summary>
internal struct Adler32
{
    const uint Mod = 65521;
    // The most bytes that can be summed before b (the larger sum) may pass 2^32 (zlib's NMAX).
    const int Block = 5552;

    uint _a, _b;

    public static Adler32 Start() => new() { _a = 1 };

    public uint Value => (_b << 16) | _a;

    public void Add(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            int n = Math.Min(Block, data.Length);
            foreach (byte x in data[..n])
            {
                _a += x;
                _b += _a;
            }
            _a %= Mod;
            _b %= Mod;
            data = data[n..];
        }
    }
}
