using System.Collections;

namespace AttnDistill.Checkpoints;

/// <summary>
/// An argparse.Namespace from a checkpoint (DINO's and MAE's 'args'): its attributes as a dict.
/// </summary>
public sealed class PythonNamespace : Hashtable
{
    public override string ToString() => "<argparse.Namespace>";
}
