namespace AttnDistill.Zoo;

/// <summary>
/// One published teacher: where its authors serve it, under which file name the torch.hub cache
/// keeps it, its architecture (a <see cref="Models.VitPresets"/> name), what the file holds, and its
/// checksum where the authors publish one (none of the ViT teachers listed today has one: their
/// SHA-256 is then recorded next to the file on the first verified download, see
/// <see cref="CheckpointDownloader"/>).
/// </summary>
/// <param name="Name">What --teacher takes: dino_vits16, mae_vitb16, ...</param>
/// <param name="Source">Whose code made it: dino, ibot, mugs or mae (picks the position-table rule).</param>
/// <param name="Url">The authors' own URL (hubconf.py or README).</param>
/// <param name="FileName">The cache file name: the URL's last segment, as torch.hub's load_state_dict_from_url
/// names it, except where several URLs share one (iBOT's checkpoint_teacher.pth), which get a name of their own.</param>
/// <param name="Architecture">Preset of the backbone it holds.</param>
/// <param name="Format">What the file holds, for `attndistill models`.</param>
/// <param name="Sha256">Published SHA-256 (lower-case hex), or null when the authors publish none.</param>
/// <param name="TimmName">timm's name for the same weights (model.tag), also accepted by --teacher.</param>
public sealed record TeacherZooEntry(
    string Name, string Source, string Url, string FileName, string Architecture, string Format,
    string? Sha256 = null, string? TimmName = null);
