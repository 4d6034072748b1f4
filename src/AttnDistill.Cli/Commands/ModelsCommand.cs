using System.CommandLine;
using AttnDistill.Models;
using AttnDistill.Zoo;
using Spectre.Console;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill models`: the architecture names (Table 7 shapes, parameter counts) and the teacher zoo.</summary>
public static class ModelsCommand
{
    public static Command Create()
    {
        var cmd = new Command("models", "List the model names --student/--model accept (depth, heads, width, patch, parameters at 224) and the teachers --teacher/--checkpoint download by name.");
        var all = new Option<bool>("--all") { Description = "Also list the patch 8/28/32 variants and the mae_* (sin-cos) twins of every preset." };
        cmd.Options.Add(all);
        cmd.SetAction(parsed =>
        {
            bool everything = parsed.GetValue(all);
            var presets = new Table().Title("model names (supplement Table 7 shapes)")
                .AddColumn("name").AddColumn("depth").AddColumn("heads").AddColumn("dim").AddColumn("patch").AddColumn("pos embed").AddColumn("params (224)");
            foreach (var name in VitPresets.Names.Order(StringComparer.Ordinal))
            {
                if (!everything && (name.StartsWith("mae_", StringComparison.Ordinal) || !(name.EndsWith("patch16", StringComparison.Ordinal) || name.Contains("_d8_") || name.Contains("_h6_"))))
                    continue;
                var c = VitPresets.Get(name);
                presets.AddRow(name, c.Depth.ToString(), c.NumHeads.ToString(), c.EmbedDim.ToString(), c.PatchSize.ToString(),
                    c.PosEmbed == PosEmbedKind.SinCos ? "sincos" : "learnable", $"{VitPresets.ParameterCount(c with { ImageSize = 224 / c.PatchSize * c.PatchSize }) / 1e6:F1} M");
            }
            AnsiConsole.Write(presets);
            Console.WriteLine($"Also accepted: {string.Join(", ", VitPresets.AliasExamples)}; timm's _224 suffix and pretrained tag (.dino) are ignored, deit_* = vit_* (same shapes), a size without a patch takes --student-patch / --patch-size (else 16).{(everything ? "" : " --all lists every patch size and the mae_* twins.")}");
            // Plain lines, not a table: URLs must stay whole to be copied (a table wraps them at 80 columns).
            var settings = ZooSettings.FromEnvironment();
            Console.WriteLine($"Teacher zoo (--teacher / --checkpoint NAME; cache {settings.CacheDir}):");
            foreach (var e in TeacherZoo.Entries)
                Console.WriteLine($"  {e.Name,-12} {e.Architecture,-22} {(File.Exists(settings.CachePathOf(e)) ? "cached " : "       ")} {settings.UrlOf(e)}{(e.TimmName is null ? "" : $"  (timm: {e.TimmName})")}");
            return 0;
        });
        return cmd;
    }
}
