namespace AttnDistill.Checkpoints;

/// <summary>What <see cref="StateDictLoader.Load"/> did: tensors copied and notes (e.g. a resampled pos_embed).</summary>
public sealed record LoadReport(int Loaded, IReadOnlyList<string> Notes);
