using AttnDistill.Checkpoints;
using AttnDistill.Optim;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>
/// What --resume reads from a checkpoint, checked as untrusted input: a file can pass its
/// checksum and still hold sections this program never wrote (the checksum only proves the bytes
/// are the ones written, by whoever wrote them). Every section is validated before it reaches
/// libtorch (a wrong-sized RNG state aborts the process natively), and any failure is one
/// <see cref="CheckpointFormatException"/> naming the file and the section.
/// </summary>
public static class ResumeCheckpoint
{
    /// <summary>
    /// The newest readable checkpoint; null when the folder has none at all. When checkpoints
    /// exist but none is readable, resuming would start over and overwrite them: refused.
    /// </summary>
    public static (string Path, TrainingCheckpoint Checkpoint)? Find(string dir, Action<string>? log)
    {
        var found = CheckpointFiles.Newest(dir, log);
        if (found is not null) return found;
        var all = CheckpointFiles.List(dir);
        if (all.Count > 0)
            throw new CheckpointFormatException(
                $"--resume: none of the {all.Count} checkpoint(s) in {dir} is readable (newest: {all[0]}; the reasons are in the log): " +
                "nothing was overwritten; move them away (or delete them) to start a new run there, or restore a good copy.");
        log?.Invoke($"--resume: no checkpoint in {dir}: starting from the beginning.");
        return null;
    }

    /// <summary>The optimizer's saved bytes, refused when the section is missing, of another optimizer, or without its tensor.</summary>
    public static byte[] OptimizerBytes(TrainingCheckpoint ckpt, string path, object optimizer)
    {
        var opt = ckpt.Section(TrainingCheckpoint.OptimizerSection)
            ?? throw new CheckpointFormatException($"{path}: the checkpoint has no optimizer section; it cannot be resumed (resume from another checkpoint or start a new run).");
        if (!opt.Tensors.TryGetValue("torchsharp_state", out var state) || state.dtype != ScalarType.Byte || state.dim() != 1)
            throw new CheckpointFormatException($"{path}: the optimizer section has no 1-D byte tensor 'torchsharp_state' (corrupt or crafted file); it cannot be resumed.");
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(opt.Json);
            if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("type", out var type)
                && type.ValueKind == System.Text.Json.JsonValueKind.String && type.GetString() != optimizer.GetType().Name)
                throw new CheckpointFormatException($"{path}: the checkpoint's optimizer is {TerminalText.Safe(type.GetString() ?? "", 60)}, this run's {optimizer.GetType().Name}: resume with the same settings.");
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new CheckpointFormatException($"{path}: the optimizer section's description is not JSON (corrupt or crafted file).", ex);
        }
        return state.data<byte>().ToArray();
    }

    /// <summary>
    /// Loads the checkpoint's model section into the run's model. A section that does not fit (a
    /// crafted file, or one from another configuration) is refused naming the file: the loader
    /// itself knows only tensors, and a bare "does not fit" does not say which checkpoint of the
    /// run folder was read.
    /// </summary>
    public static void LoadModel(TorchSharp.torch.nn.Module model, TrainingCheckpoint ckpt, string path)
    {
        try { StateDictLoader.Load(model, ckpt.Model); }
        catch (CheckpointMismatchException ex)
        {
            throw new CheckpointMismatchException($"{path}: {ex.Message}{Environment.NewLine}  resume with the settings the run was started with, or start a new run.",
                ex.Missing, ex.Unexpected, ex.Mismatched);
        }
        catch (CheckpointFormatException ex) when (!ex.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new CheckpointFormatException($"{path}: the model section does not load: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Loads the saved optimizer bytes into <paramref name="optimizer"/> and checks what they held
    /// (Optim/ResumedOptimizerState): a damaged or crafted state is refused here, naming the file,
    /// rather than an epoch later as a non-finite loss.
    /// </summary>
    public static void LoadOptimizer(OptimizerHelper optimizer, byte[] bytes, string path)
    {
        Guard(path, "optimizer", () => { using var r = new BinaryReader(new MemoryStream(bytes)); optimizer.load_state_dict(r); });
        if (ResumedOptimizerState.Problem(optimizer) is { } problem)
            throw new CheckpointFormatException($"{path}: the optimizer section holds {problem}, which no run of this program saves: the file is corrupt or crafted; resume from another checkpoint or start a new run.");
    }

    /// <summary>Runs a restore step; whatever it throws on bad saved state becomes one line naming the file and section.</summary>
    public static void Guard(string path, string section, Action restore)
    {
        try { restore(); }
        catch (Exception ex) when (ex is not (CheckpointFormatException or CheckpointMismatchException or OperationCanceledException or OutOfMemoryException))
        {
            throw new CheckpointFormatException(
                $"{path}: the {section} section does not restore ({ex.GetType().Name}: {TerminalText.Safe(ex.Message.Split('\n')[0], 200)}): the file is corrupt or crafted, or from another configuration; resume from another checkpoint or start a new run.", ex);
        }
    }

    /// <summary>Restores the CPU generator after checking the saved state has the generator's own size and type (libtorch aborts natively otherwise).</summary>
    public static void RestoreRng(CheckpointSection rng, string path)
    {
        if (!rng.Tensors.TryGetValue("torch_cpu", out var state)) return;
        using var current = random.get_rng_state();
        if (state.dtype != ScalarType.Byte || state.dim() != 1 || state.shape[0] != current.shape[0])
            throw new CheckpointFormatException(
                $"{path}: the RNG state is a {state.dtype} tensor of shape [{string.Join(", ", state.shape)}], not the {current.shape[0]} bytes of libtorch's CPU generator (corrupt or crafted file).");
        Guard(path, "rng", () => random.set_rng_state(state));
    }
}
