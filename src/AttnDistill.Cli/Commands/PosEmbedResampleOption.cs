using System.CommandLine;
using AttnDistill.Models;

namespace AttnDistill.Cli.Commands;

/// <summary>--pos-embed-resample: the rule that moves a loaded checkpoint's position table to another grid.</summary>
public static class PosEmbedResampleOption
{
    public static Option<string?> Create(string whose = "the checkpoint's", string name = "--pos-embed-resample")
    {
        var o = new Option<string?>(name)
        {
            Description = $"How {whose} position table is moved to another --image-size: dino (DINO's interpolate_pos_encoding, also iBOT's and Mugs'), "
                          + "timm (resample_abs_pos_embed, antialiased) or mae (MAE's interpolate_pos_embed). Default: the rule of the code that made the file "
                          + "(DINO's for plain .pth and DINO/iBOT/Mugs files, MAE's under 'model', timm's for foreign .safetensors), named in the log.",
        };
        o.AcceptOnlyFromAmong("dino", "timm", "mae");
        return o;
    }

    public static PosEmbedRule? Read(ParseResult r, Option<string?> option) => r.GetValue(option) switch
    {
        null => null,
        "timm" => PosEmbedRule.Timm,
        "mae" => PosEmbedRule.Mae,
        _ => PosEmbedRule.Dino,
    };
}
