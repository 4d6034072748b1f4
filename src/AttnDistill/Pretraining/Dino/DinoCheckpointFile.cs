using System.Collections;
using AttnDistill.Checkpoints;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>
/// main_dino's checkpoint.pth, key for key as its save_dict: <c>student</c> (the DDP-wrapped
/// student: <c>module.backbone.*</c>, <c>module.head.*</c>), <c>teacher</c> (not wrapped in DDP
/// without batch norm: <c>backbone.*</c>, <c>head.*</c>), <c>optimizer</c> (torch.optim.AdamW's
/// state_dict: per-parameter step / exp_avg / exp_avg_sq under the parameters' indices, and the
/// param groups), <c>epoch</c> (epochs done), <c>args</c> (the run's settings under main_dino's
/// argument names, as a plain dict rather than an argparse.Namespace) and <c>dino_loss</c>
/// (<c>center</c>). A torch.save zip archive, written atomically.
/// </summary>
public static class DinoCheckpointFile
{
    public static void Save(string path, MultiCropWrapper student, MultiCropWrapper teacher, OptimizerHelper optimizer,
        int epoch, IReadOnlyDictionary<string, object> args, Tensor center, bool studentInDdp = true)
    {
        using var scope = NewDisposeScope();
        static Tensor Copy(Tensor t) => t.detach().cpu().contiguous().clone();
        var studentDict = new Hashtable();
        foreach (var (k, t) in student.state_dict()) studentDict[(studentInDdp ? "module." : "") + k] = Copy(t);
        var teacherDict = new Hashtable();
        foreach (var (k, t) in teacher.state_dict()) teacherDict[k] = Copy(t);
        var argsDict = new Hashtable();
        foreach (var (k, v) in args) argsDict[k] = v;
        var root = new Hashtable
        {
            ["student"] = studentDict,
            ["teacher"] = teacherDict,
            ["optimizer"] = OptimizerStateDict(optimizer, Copy),
            ["epoch"] = epoch,
            ["args"] = argsDict,
            ["dino_loss"] = new Hashtable { ["center"] = Copy(center) },
        };
        AtomicFile.Write(path, s => PyTorchPickler.PickleStateDict(s, root, leaveOpen: true));
    }

    /// <summary>torch.optim.AdamW.state_dict(): {'state': {i: {...}}, 'param_groups': [{..., 'params': [i...]}]}; parameters never stepped have no state, as in PyTorch.</summary>
    static Hashtable OptimizerStateDict(OptimizerHelper optimizer, Func<Tensor, Tensor> copy)
    {
        var sd = optimizer.state_dict();
        var groups = new ArrayList();
        var state = new Hashtable();
        for (int g = 0; g < sd.Options.Count; g++)
        {
            if (sd.Options[g] is not AdamW.Options o)
                throw new InvalidOperationException($"a DINO checkpoint holds AdamW's state; the optimizer is a {optimizer.GetType().Name}.");
            var ids = new ArrayList();
            foreach (int i in sd.StateIndexRef[g])
            {
                ids.Add(i);
                if (sd.State[i] is AdamW.State s && s.step > 0)
                    state[i] = new Hashtable
                    {
                        ["step"] = tensor((float)s.step),
                        ["exp_avg"] = copy(s.exp_avg),
                        ["exp_avg_sq"] = copy(s.exp_avg_sq),
                    };
            }
            groups.Add(new Hashtable
            {
                ["lr"] = o.LearningRate ?? 0.0,
                ["betas"] = new object[] { o.beta1 ?? 0.9, o.beta2 ?? 0.999 },
                ["eps"] = o.eps ?? 1e-8,
                ["weight_decay"] = o.weight_decay ?? 0.0,
                ["amsgrad"] = o.amsgrad ?? false,
                ["maximize"] = o.maximize ?? false,
                ["foreach"] = null,
                ["capturable"] = false,
                ["differentiable"] = false,
                ["fused"] = null,
                ["params"] = ids,
            });
        }
        return new Hashtable { ["state"] = state, ["param_groups"] = groups };
    }
}
