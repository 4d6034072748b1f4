using TorchSharp;

namespace AttnDistill.Data;

/// <summary>
/// The order in which one rank visits a data set in one epoch, as PyTorch's
/// <c>DistributedSampler(shuffle, seed, drop_last)</c> with <c>set_epoch(epoch)</c>: a
/// <c>torch.randperm</c> drawn from a generator seeded with seed + epoch (the same permutation as
/// PyTorch's, since both use libtorch's generator), padded by repeating its head until it divides
/// evenly (or cut, with dropTail), then every worldSize-th item from position rank.
/// </summary>
public static class ShardedOrder
{
    public static int[] ForEpoch(int count, int epoch, long seed, bool shuffle, int rank = 0, int worldSize = 1, bool dropTail = false)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "the data set is empty");
        if (worldSize <= 0 || rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} of world size {worldSize}");
        int[] order;
        if (shuffle)
        {
            var g = new torch.Generator((ulong)(seed + epoch));
            using var perm = torch.randperm(count, dtype: torch.int32, generator: g);
            order = perm.data<int>().ToArray();
        }
        else
        {
            order = Enumerable.Range(0, count).ToArray();
        }

        int perRank = dropTail && count % worldSize != 0
            ? (int)Math.Ceiling((count - worldSize) / (double)worldSize)
            : (count + worldSize - 1) / worldSize;
        var result = new int[perRank];
        for (int k = 0; k < perRank; k++)
        {
            int pos = rank + k * worldSize; // < total; positions past the end wrap onto the head (padding)
            result[k] = order[pos % count];
        }
        return result;
    }
}
