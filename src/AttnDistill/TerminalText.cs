using System.Text;

namespace AttnDistill;

/// <summary>
/// Text from files (folder names, checkpoint keys, error messages quoting them) made safe for a
/// terminal: control characters (C0, DEL, C1, which start escape sequences that set the window
/// title or clear the screen) become visible \xNN / \uNNNN escapes; optionally cut to a length.
/// </summary>
public static class TerminalText
{
    /// <summary>The text with control characters escaped (newlines too: callers print one line); cut after <paramref name="maxLength"/> characters when given.</summary>
    public static string Safe(string text, int maxLength = int.MaxValue)
    {
        bool clean = text.Length <= maxLength;
        foreach (char c in text)
            if (IsControl(c)) { clean = false; break; }
        if (clean) return text;
        var sb = new StringBuilder(Math.Min(text.Length, maxLength) + 16);
        foreach (char c in text)
        {
            if (sb.Length >= maxLength) { sb.Append($"... ({text.Length} characters)"); break; }
            if (!IsControl(c)) sb.Append(c);
            else if (c < 0x100) sb.Append($"\\x{(int)c:x2}");
            else sb.Append($"\\u{(int)c:x4}");
        }
        return sb.ToString();
    }

    /// <summary>Like <see cref="Safe(string, int)"/> but keeps line breaks (multi-line tables and reports).</summary>
    public static string SafeKeepLines(string text) =>
        string.Join('\n', text.Split('\n').Select(line => Safe(line)));

    static bool IsControl(char c) => c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == '\u2028' || c == '\u2029';
}
