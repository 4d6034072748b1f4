using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>
/// What a training loop needs from the process group. One process without MPI is
/// <see cref="SingleProcess"/>: every call is a no-op, so no MPI library is needed to run.
/// Every member except <see cref="Rank"/>, <see cref="WorldSize"/> and <see cref="IsMain"/> is a
/// collective: all ranks call it, in the same order, with tensors of the same shape and dtype.
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

    /// <summary>Element-wise sum over all ranks, in place (float32, float64 or int64).</summary>
    void SumInPlace(Tensor tensor);

    /// <summary>Every rank's tensor stacked in rank order: [WorldSize, ...the tensor's shape].</summary>
    Tensor AllGather(Tensor tensor);

    /// <summary>True on every rank when it is true on at least one (e.g. a stop request seen by one rank).</summary>
    bool Any(bool value);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
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
    public void SumInPlace(Tensor tensor) { }
    public Tensor AllGather(Tensor tensor) => tensor.unsqueeze(0).clone();
    public bool Any(bool value) => value;
    public void Barrier() { }
}
