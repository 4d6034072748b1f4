using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>
/// Mixed precision done by hand the way PyTorch's CUDA autocast casts ops (TorchSharp 0.107 has no
/// torch.autocast). Inside <see cref="Enable"/> on a thread, the call sites that go through these
/// helpers follow autocast's op lists: matrix products (linear, conv2d, matmul, scaled dot-product
/// attention) cast their floating inputs, the fp32 weights included, to the low precision; softmax,
/// layer_norm and vector norms compute in fp32 and return fp32. Every other op runs in the dtype of
/// its inputs, and type promotion makes fp32 + bf16 fp32, so the residual stream stays fp32.
/// <para>
/// The weight casts are ops inside autograd: gradients flow back through them into the fp32
/// parameters, so the parameters (the "master weights"), their gradients, gradient accumulation
/// across micro-batches and the optimizer all stay fp32. Outside a scope every helper is exactly
/// the module's own forward or the plain op, so fp32 results are bit-identical to code without it.
/// Losses never go through these helpers: fed fp32 tensors, they compute in fp32.
/// </para>
/// </summary>
public static class Autocast
{
    [ThreadStatic] private static ScalarType? _lowPrecision;

    /// <summary>The dtype matrix products run in on this thread, or null outside a scope.</summary>
    public static ScalarType? LowPrecision => _lowPrecision;

    public static bool IsEnabled => _lowPrecision is not null;

    /// <summary>
    /// Opens a scope on the calling thread until the returned object is disposed; scopes nest and
    /// the previous state comes back on dispose. Run backward outside it, as PyTorch advises.
    /// </summary>
    public static IDisposable Enable(ScalarType lowPrecision = ScalarType.BFloat16)
    {
        if (lowPrecision != ScalarType.BFloat16)
            throw new ArgumentException($"autocast supports bf16 only, got {lowPrecision}: fp16 would need dynamic loss scaling, which is not implemented; use bf16.");
        var scope = new Scope(_lowPrecision);
        _lowPrecision = lowPrecision;
        return scope;
    }

    private sealed class Scope(ScalarType? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _lowPrecision = previous;
        }
    }

    /// <summary><paramref name="layer"/>(x); in a scope input, weight and bias are cast to the low precision and so is the output.</summary>
    public static Tensor Linear(Linear layer, Tensor x)
    {
        if (_lowPrecision is not { } low) return layer.forward(x);
        using var input = Cast(x, low);
        using var weight = Cast(layer.weight!, low);
        using var bias = layer.bias is { } b ? Cast(b, low) : null;
        return nn.functional.linear(input, weight, bias);
    }

    /// <summary><paramref name="layer"/>(x) for a zero-padded conv; in a scope input, weight and bias are cast to the low precision.</summary>
    public static Tensor Conv2d(Conv2d layer, Tensor x)
    {
        if (_lowPrecision is not { } low) return layer.forward(x);
        if (layer.padding_mode != PaddingModes.Zeros || layer.padding_type is not null)
            throw new ArgumentException("autocast covers convolutions with explicit zero padding only: build the Conv2d with numeric padding.");
        using var input = Cast(x, low);
        using var weight = Cast(layer.weight, low);
        using var bias = layer.bias is { } b ? Cast(b, low) : null;
        return nn.functional.conv2d(input, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups);
    }

    /// <summary><paramref name="layer"/>(x); in a scope computed in fp32 (input and affine parameters), output fp32.</summary>
    public static Tensor LayerNorm(LayerNorm layer, Tensor x)
    {
        if (_lowPrecision is null) return layer.forward(x);
        using var input = Cast(x, ScalarType.Float32);
        using var weight = layer.weight is { } w ? Cast(w, ScalarType.Float32) : null;
        using var bias = layer.bias is { } b ? Cast(b, ScalarType.Float32) : null;
        return nn.functional.layer_norm(input, layer.normalized_shape, weight, bias, layer.eps);
    }

    /// <summary>a.matmul(b); in a scope both sides are cast to the low precision.</summary>
    public static Tensor Matmul(Tensor a, Tensor b)
    {
        if (_lowPrecision is not { } low) return a.matmul(b);
        using var left = Cast(a, low);
        using var right = Cast(b, low);
        return left.matmul(right);
    }

    /// <summary>Fused attention; in a scope query, key and value are cast to the low precision.</summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, double p)
    {
        if (_lowPrecision is not { } low) return nn.functional.scaled_dot_product_attention(q, k, v, p: p);
        using var query = Cast(q, low);
        using var key = Cast(k, low);
        using var value = Cast(v, low);
        return nn.functional.scaled_dot_product_attention(query, key, value, p: p);
    }

    /// <summary>x.softmax(dim); in a scope computed in fp32 and returned as fp32.</summary>
    public static Tensor Softmax(Tensor x, long dim)
    {
        if (_lowPrecision is null) return x.softmax(dim);
        using var input = Cast(x, ScalarType.Float32);
        return input.softmax(dim);
    }

    /// <summary>The L2 norm over the last dimension; in a scope computed in fp32.</summary>
    public static Tensor VectorNorm(Tensor x)
    {
        if (_lowPrecision is null) return x.norm(-1);
        using var input = Cast(x, ScalarType.Float32);
        return input.norm(-1);
    }

    /// <summary>A new handle on <paramref name="x"/> in <paramref name="dtype"/>; the same storage when it already is.</summary>
    private static Tensor Cast(Tensor x, ScalarType dtype) => x.dtype == dtype ? x.alias() : x.to(dtype);
}
