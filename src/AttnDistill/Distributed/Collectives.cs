using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>Collectives built from the context's primitives.</summary>
public static class Collectives
{
    /// <summary>Rank 0's bytes on every rank (the length is sent first); other ranks pass null.</summary>
    public static byte[] BroadcastBytes(IDistributedContext dist, byte[]? fromRankZero)
    {
        if (dist.WorldSize == 1) return fromRankZero ?? Array.Empty<byte>();
        if (dist.IsMain && fromRankZero is null) throw new ArgumentNullException(nameof(fromRankZero), "rank 0 must give the bytes to broadcast");
        using var length = tensor(new long[] { dist.IsMain ? fromRankZero!.LongLength : 0 });
        dist.Broadcast(new[] { length });
        long n = length.data<long>()[0];
        if (n == 0) return Array.Empty<byte>();
        using var buffer = dist.IsMain ? tensor(fromRankZero!) : empty(new[] { n }, ScalarType.Byte);
        dist.Broadcast(new[] { buffer });
        return dist.IsMain ? fromRankZero! : buffer.data<byte>().ToArray();
    }
}
