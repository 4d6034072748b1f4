namespace AttnDistill.Training;

/// <summary>The number format training computes in (weights, gradients, optimizer and checkpoints stay fp32 either way).</summary>
public enum ComputePrecision
{
    /// <summary>Everything in fp32.</summary>
    Float32,
    /// <summary>
    /// Mixed precision as PyTorch's autocast: the trainer runs forward and loss (student and frozen
    /// teacher) in an <see cref="Models.Autocast"/> scope, so matrix products and attention compute in
    /// bf16 while LayerNorm, softmax, norms and every loss compute in fp32; the fp32 parameters are
    /// the master weights and receive fp32 gradients (<see cref="TrainerOptions.Precision"/>).
    /// </summary>
    BFloat16,
}
