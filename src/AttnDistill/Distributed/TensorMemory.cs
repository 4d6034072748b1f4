using TorchSharp;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>The native address of a tensor's first element (data_ptr), for MPI and NCCL buffers.</summary>
internal static class TensorMemory
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>data_ptr() of <paramref name="t"/> (storage offset included); valid while the tensor lives.</summary>
    public static IntPtr Address(Tensor t)
    {
        var p = THSTensor_data(t.Handle);
        if (p == IntPtr.Zero && t.NumberOfElements > 0) throw new InvalidOperationException("tensor has no data pointer");
        return p;
    }

    /// <summary>Tensors MPI can read and write directly: CPU, contiguous.</summary>
    public static bool IsDirect(Tensor t) => t.device_type == DeviceType.CPU && t.is_contiguous();
}
