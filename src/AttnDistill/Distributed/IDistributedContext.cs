using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>
/// What a training loop needs from the process group. One process without MPI is
/// <see cref="SingleProcess"/>: every call is a no-op, so no MPI library is needed to run.
/// </summary>
public interface IDistributedContext
{
    int Rank { get; }
    int WorldSize { get; }
    bool IsMain => Rank == 0;

    /// <summary>Averages every parameter's gradient over all ranks, in place.</summary>
    void AverageGradients(IReadOnlyList<Parameter> parameters);

    /// <summary>Copies rank 0's tensors to every rank, in place.</summary>
    void Broadcast(IReadOnlyList<Tensor> tensors);

    /// <summary>Mean of each value over all ranks (for logging).</summary>
    double[] AverageScalars(double[] values);
}

/// <summary>The default: one process.</summary>
public sealed class SingleProcess : IDistributedContext
{
    public static readonly SingleProcess Instance = new();
    public int Rank => 0;
    public int WorldSize => 1;
    public void AverageGradients(IReadOnlyList<Parameter> parameters) { }
    public void Broadcast(IReadOnlyList<Tensor> tensors) { }
    public double[] AverageScalars(double[] values) => values;
}
