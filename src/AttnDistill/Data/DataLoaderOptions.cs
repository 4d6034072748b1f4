using AttnDistill.Data.Transforms;

namespace AttnDistill.Data;

/// <summary>How a <see cref="DataLoader"/> batches, shuffles, shards and normalises.</summary>
public sealed record DataLoaderOptions
{
    public int BatchSize { get; init; } = 64;

    /// <summary>Reshuffle every epoch (seeded with Seed + epoch); false keeps data set order.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Seeds the order and every sample's augmentation.</summary>
    public long Seed { get; init; }

    /// <summary>Drop the last batch of an epoch when it is smaller than BatchSize.</summary>
    public bool DropLast { get; init; }

    /// <summary>Decode/augment threads; 0 runs everything on the consuming thread.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>Batches being prepared ahead of the one consumed (bounds memory).</summary>
    public int PrefetchBatches { get; init; } = 2;

    /// <summary>This process's rank among WorldSize (each sees a disjoint shard, as DistributedSampler).</summary>
    public int Rank { get; init; }

    public int WorldSize { get; init; } = 1;

    /// <summary>Shards: cut the tail so every rank gets the same count (DistributedSampler's drop_last) instead of padding by repeating the head.</summary>
    public bool ShardDropTail { get; init; }

    /// <summary>Per-channel mean for Normalize; null (with Std null) leaves values in [0, 1].</summary>
    public IReadOnlyList<float>? Mean { get; init; } = ImageTensors.ImageNetMean;

    public IReadOnlyList<float>? Std { get; init; } = ImageTensors.ImageNetStd;

    /// <summary>Receives one line per unreadable file (called from worker threads, one call at a time).</summary>
    public Action<string>? Log { get; init; }
}
