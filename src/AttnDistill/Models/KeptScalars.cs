using TorchSharp;

namespace AttnDistill.Models;

/// <summary>
/// Scalars that stay reachable for the life of the process. TorchSharp 0.107 turns a C# number
/// into a finalizable <see cref="Scalar"/> and passes only its native handle to libtorch; a
/// temporary one (e.g. the alpha = 1 inside <c>Tensor.add(Tensor)</c>) can be finalized by the
/// GC while libtorch still reads it. Seen here: "Expected false to be true ... toFloat" inside
/// add_Tensor during a k-NN forward after training. Hot paths pass these instead, or hold a
/// <c>using</c> Scalar across the call.
/// </summary>
public static class KeptScalars
{
    public static readonly Scalar One = 1.0.ToScalar();
}
