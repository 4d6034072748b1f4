using AttnDistill.Models;
using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Strict state-dict loading that checks every key and shape itself, because TorchSharp's
/// load_state_dict broadcasts [1,1,D] into [1,N,D] and PyBridge's load_py fills mismatched shapes
/// silently. The one tolerated difference is pos_embed on another grid: it is resampled by the
/// rule of the checkpoint's source (or, for this project's 2-D sin-cos tables, rebuilt exactly) and
/// the rule is named in the report.
/// </summary>
public static class StateDictLoader
{
    const int ListedPerKind = 12;

    /// <summary>
    /// Copies <paramref name="stateDict"/> into <paramref name="model"/>'s parameters and buffers under
    /// no_grad, or throws <see cref="CheckpointMismatchException"/> before changing anything.
    /// </summary>
    /// <param name="posEmbed">How a pos_embed on another grid is resampled; default: this project's ViT's rule.</param>
    public static LoadReport Load(Module model, IReadOnlyDictionary<string, Tensor> stateDict, Action<string>? info = null, PosEmbedSource? posEmbed = null)
    {
        posEmbed ??= PosEmbedSource.ThisProject;
        var target = model.state_dict();
        var missing = new List<string>();
        var mismatched = new List<(string Key, long[] Checkpoint, long[] Model)>();
        var notes = new List<string>();
        var plan = new List<(Tensor Dst, Tensor Src, bool Owned)>();
        try
        {
            foreach (var (key, dst) in target)
            {
                if (!stateDict.TryGetValue(key, out var src))
                {
                    missing.Add(key);
                    continue;
                }
                // A bool/int/complex tensor where the model holds weights would be cast silently (a bool teacher trains to nothing).
                if (dst.is_floating_point() && !src.is_floating_point())
                    throw new CheckpointFormatException($"'{TerminalText.Safe(key, 80)}' is a {src.dtype} tensor in the checkpoint; the model's is {dst.dtype}: weights must be floating point (float32, float16, bfloat16 or float64).");
                if (src.shape.SequenceEqual(dst.shape)) plan.Add((dst, src, false));
                else if (key == "pos_embed" && TryAdaptPosEmbed(src, dst.shape, posEmbed, out var adapted, out string? note))
                {
                    plan.Add((dst, adapted, true));
                    notes.Add(note);
                }
                else mismatched.Add((key, src.shape, dst.shape));
            }
            var unexpected = stateDict.Keys.Where(k => !target.ContainsKey(k)).ToList();
            if (missing.Count + unexpected.Count + mismatched.Count > 0)
                throw new CheckpointMismatchException(Message(target, stateDict, missing, unexpected, mismatched), missing, unexpected, mismatched);

            using (no_grad())
            {
                foreach (var (dst, src, _) in plan) dst.copy_(src);
            }
            foreach (string n in notes) info?.Invoke(n);
            return new LoadReport(plan.Count, notes);
        }
        finally
        {
            foreach (var (_, src, owned) in plan)
                if (owned) src.Dispose();
        }
    }

    static bool TryAdaptPosEmbed(Tensor src, long[] want, PosEmbedSource source, out Tensor adapted, out string note)
    {
        adapted = null!;
        note = "";
        int? from = TokenGrid.SideOfTable(src), to = want.Length == 3 && want[0] == 1 ? TokenGrid.SideOfTokens(want[1]) : null;
        if (from is null || to is null || src.shape[2] != want[2]) return false;
        if (source.RebuildSinCos && src.shape[2] % 4 == 0 && SinCosPosEmbed.Matches(src))
        {
            adapted = SinCosPosEmbed.Table((int)src.shape[2], to.Value).to(src.dtype);
            note = $"pos_embed: the checkpoint's 2-D sin-cos table (grid {from}) was rebuilt for grid {to}.";
        }
        else
        {
            adapted = PosEmbedResampling.Resample(src, to.Value, to.Value, source.Rule);
            note = $"pos_embed: grid {from} ({src.shape[1]} tokens) -> grid {to} ({want[1]} tokens) by {PosEmbedResampling.Describe(source.Rule)}, the rule of {source.Why}.";
        }
        return true;
    }

    static string Message(Dictionary<string, Tensor> target, IReadOnlyDictionary<string, Tensor> sd,
        List<string> missing, List<string> unexpected, List<(string Key, long[] Checkpoint, long[] Model)> mismatched)
    {
        var lines = new List<string> { "the checkpoint does not fit the model:" };
        void Add(string title, IReadOnlyList<string> items)
        {
            if (items.Count == 0) return;
            string more = items.Count > ListedPerKind ? $", ... and {items.Count - ListedPerKind} more" : "";
            lines.Add($"  {title} ({items.Count}): {string.Join(", ", items.Take(ListedPerKind))}{more}");
        }
        Add("missing from the checkpoint", missing.Select(k => $"{k} {VitStateDictKeys.ShapeText(target[k].shape)}").ToList());
        Add("unexpected in the checkpoint", unexpected.Select(k => $"{k} {VitStateDictKeys.ShapeText(sd[k].shape)}").ToList());
        Add("shape mismatch", mismatched.Select(m => $"{m.Key} checkpoint {VitStateDictKeys.ShapeText(m.Checkpoint)} vs model {VitStateDictKeys.ShapeText(m.Model)}").ToList());
        lines.Add($"  the checkpoint fits: {VitArchitectureInference.Describe(sd)}");
        lines.Add($"  the model is: {VitArchitectureInference.Describe(target)}");
        return string.Join(Environment.NewLine, lines);
    }
}
