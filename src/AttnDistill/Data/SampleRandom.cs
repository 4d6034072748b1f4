namespace AttnDistill.Data;

/// <summary>
/// A small, fast generator (xoshiro256**) seeded from a tuple of integers, e.g. (seed, epoch,
/// sample index): each sample gets its own stream, so augmentations do not depend on which
/// thread ran first or how many there are.
/// </summary>
public sealed class SampleRandom : IRandomSource
{
    private ulong _s0, _s1, _s2, _s3;

    public SampleRandom(params long[] key)
    {
        // Fold the key through SplitMix64 so nearby keys (index i, i+1) give unrelated streams.
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (long k in key) h = SplitMix(h ^ (ulong)k);
        _s0 = SplitMix(ref h);
        _s1 = SplitMix(ref h);
        _s2 = SplitMix(ref h);
        _s3 = SplitMix(ref h);
    }

    public float Uniform(double low, double high)
    {
        float lo = (float)low, hi = (float)high;
        float v = Unit() * (hi - lo) + lo;
        return v < hi ? v : lo; // rounding can reach hi; keep the interval half-open
    }

    public int Integer(int low, int high)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), $"empty range [{low}, {high})");
        // Lemire's multiply-shift: unbiased enough for ranges far below 2^32 (image sizes).
        ulong range = (ulong)(high - low);
        return low + (int)(((NextUInt64() >> 32) * range) >> 32);
    }

    public float Unit() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>A double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public ulong NextUInt64()
    {
        ulong result = RotL(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotL(_s3, 45);
        return result;
    }

    private static ulong RotL(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private static ulong SplitMix(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return SplitMix(state);
    }
}
