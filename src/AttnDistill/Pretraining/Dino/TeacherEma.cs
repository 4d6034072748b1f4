using AttnDistill.Tensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>DINO's momentum teacher and its per-iteration updates of the student's gradients.</summary>
public static class TeacherEma
{
    /// <summary>
    /// param_k.data.mul_(m).add_((1 - m) x param_q.detach().data) over the parameters in order, as
    /// main_dino's EMA update (the same float32 operations, so the result is bit-identical).
    /// </summary>
    public static void Update(nn.Module student, nn.Module teacher, double momentum)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var q = student.parameters().ToArray();
        var k = teacher.parameters().ToArray();
        if (q.Length != k.Length) throw new ArgumentException($"student has {q.Length} parameters, teacher {k.Length}: build both from the same configuration.");
        for (int i = 0; i < q.Length; i++)
            k[i].TimesInPlace(momentum).PlusInPlace(q[i].detach().Times(1 - momentum));
    }

    /// <summary>utils.clip_gradients: each parameter's gradient clipped to its own norm <paramref name="clip"/> (not a global norm).</summary>
    public static void ClipPerParameter(IEnumerable<Parameter> parameters, double clip)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var p in parameters)
        {
            if (p.grad is not { } g) continue;
            double norm = g.norm().item<float>();   // p.grad.data.norm(2): over all elements
            double coef = clip / (norm + 1e-6);
            if (coef < 1) g.TimesInPlace(coef);
        }
    }

    /// <summary>utils.cancel_gradients_last_layer: before epoch <paramref name="freezeLastLayer"/>, the last layer's gradients are dropped (so AdamW leaves it untouched).</summary>
    public static void CancelLastLayer(nn.Module student, int epoch, int freezeLastLayer)
    {
        if (epoch >= freezeLastLayer) return;
        foreach (var (name, p) in student.named_parameters())
            if (name.Contains("last_layer", StringComparison.Ordinal)) p.grad = null!;
    }
}
