namespace AttnDistill.Training;

/// <summary>The number format training computes in (weights, optimizer and checkpoints stay fp32 either way).</summary>
public enum ComputePrecision
{
    /// <summary>Everything in fp32.</summary>
    Float32,
    /// <summary>Forward and backward in bf16 with fp32 master weights (<see cref="BFloat16Task"/>); a frozen teacher in bf16.</summary>
    BFloat16,
}
