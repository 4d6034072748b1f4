using System.Globalization;
using System.Net;
using System.Text;
using AttnDistill.Checkpoints;

namespace AttnDistill.Visualization;

/// <summary>
/// The pages over a folder of attention pictures: index.html (the panels grouped by class, for a
/// browser), index.md (the same as a table with the KL values) and kl.csv (one row per image and
/// student). The mean KL per student over all images heads both pages.
/// </summary>
public static class GalleryIndex
{
    public static void Write(string outDir, string teacher, IReadOnlyList<string> students, IReadOnlyList<PanelResult> results, AttentionPanelOptions options)
    {
        var inv = CultureInfo.InvariantCulture;
        var means = students.Select((_, j) => results.Count == 0 ? double.NaN : results.Average(r => r.KlToTeacher[j])).ToArray();
        string settings = $"aggregation {options.Loss.Aggregation.ToString().ToLowerInvariant()}, T {options.Loss.AttnTemperature.ToString("G4", inv)}, " +
                          $"interpolation {(options.Loss.Interpolate ? "bicubic" : "off")}, heat maps {options.Upsampling.ToString().ToLowerInvariant()}-upsampled, colour map {options.Colormap}";

        var csv = new StringBuilder("image,group,student,kl\n");
        foreach (var r in results)
            for (int j = 0; j < students.Count; j++)
                csv.Append(Csv(r.ImageName)).Append(',').Append(Csv(r.Group)).Append(',').Append(Csv(students[j])).Append(',')
                   .Append(r.KlToTeacher[j].ToString("R", inv)).Append('\n');
        WriteText(Path.Combine(outDir, "kl.csv"), csv.ToString());

        var md = new StringBuilder();
        md.Append("# Attention maps\n\n");
        md.Append($"Teacher: {teacher}. {results.Count} images; {settings}. KL = KL(teacher || student) of the aggregated maps on the student's grid ");
        md.Append("(the loss's attention term before lambda). Raw numbers: [kl.csv](kl.csv).\n\n");
        md.Append("| student | mean KL to the teacher |\n| --- | --- |\n");
        for (int j = 0; j < students.Count; j++) md.Append($"| {EscapeMd(students[j])} | {AttentionPanel.FormatKl(means[j])} |\n");
        md.Append("\n| image | class | ").Append(string.Join(" | ", students.Select(s => "KL " + EscapeMd(s)))).Append(" | files |\n");
        md.Append("| --- | --- |").Append(string.Concat(students.Select(_ => " --- |"))).Append(" --- |\n");
        foreach (var r in results)
        {
            string files = string.Join(" ", FilesOf(r, outDir).Select(f => $"[{Path.GetExtension(f).TrimStart('.')}]({Uri.EscapeDataString(f)})"));
            md.Append($"| {EscapeMd(r.ImageName)} | {EscapeMd(r.Group)} | ")
              .Append(string.Join(" | ", r.KlToTeacher.Select(AttentionPanel.FormatKl)))
              .Append($" | {files} |\n");
        }
        WriteText(Path.Combine(outDir, "index.md"), md.ToString());

        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Attention maps</title>\n");
        html.Append("<style>body{font-family:sans-serif;margin:1em} img{max-width:100%;border:1px solid #ccc;margin:4px 0} td,th{padding:2px 8px;text-align:left}</style></head><body>\n");
        html.Append($"<h1>Attention maps</h1>\n<p>Teacher: {Html(teacher)}. {results.Count} images; {Html(settings)}. ");
        html.Append("KL = KL(teacher || student) of the aggregated maps on the student's grid. Raw numbers: <a href=\"kl.csv\">kl.csv</a>.</p>\n");
        html.Append("<table><tr><th>student</th><th>mean KL to the teacher</th></tr>\n");
        for (int j = 0; j < students.Count; j++) html.Append($"<tr><td>{Html(students[j])}</td><td>{AttentionPanel.FormatKl(means[j])}</td></tr>\n");
        html.Append("</table>\n");
        foreach (var group in results.GroupBy(r => r.Group))
        {
            html.Append($"<h2>{Html(group.Key.Length > 0 ? group.Key : "images")}</h2>\n");
            foreach (var r in group)
            {
                if (r.PngPath is { } png)
                {
                    string rel = Uri.EscapeDataString(Path.GetRelativePath(outDir, png));
                    html.Append($"<div><a href=\"{rel}\"><img src=\"{rel}\" alt=\"{Html(r.ImageName)}\" loading=\"lazy\"></a></div>\n");
                }
                else
                {
                    html.Append($"<p>{Html(r.ImageName)}: ").Append(string.Join(" ", FilesOf(r, outDir).Select(f => $"<a href=\"{Uri.EscapeDataString(f)}\">{Html(f)}</a>"))).Append("</p>\n");
                }
            }
        }
        html.Append("</body></html>\n");
        WriteText(Path.Combine(outDir, "index.html"), html.ToString());
    }

    static IEnumerable<string> FilesOf(PanelResult r, string outDir) =>
        (r.PngPath is null ? Enumerable.Empty<string>() : new[] { r.PngPath }).Concat(r.NpyPaths).Select(p => Path.GetRelativePath(outDir, p));

    static void WriteText(string path, string text) => AtomicFile.Write(path, s =>
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        s.Write(bytes, 0, bytes.Length);
    });

    static string Html(string s) => WebUtility.HtmlEncode(s);

    static string EscapeMd(string s) => s.Replace("|", "\\|");

    static string Csv(string s) => s.IndexOfAny(new[] { ',', '"', '\n' }) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
