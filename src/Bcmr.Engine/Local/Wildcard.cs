using System.Text;
using System.Text.RegularExpressions;

namespace Bcmr.Engine.Local;

/// <summary>
/// Wildcards in the two dialects users type, as regular expressions: a shell's (remote sources, <c>host:dir/*.log</c>:
/// case-sensitive, <c>[!...]</c> negates) and PowerShell's (<c>-Exclude</c>: case-insensitive, <c>`</c> escapes the
/// next character). In both, <c>*</c> and <c>?</c> never cross a <c>/</c>, and an unclosed <c>[</c> is itself.
/// </summary>
public static class Wildcard
{
    /// <summary>A shell glob matching one whole name.</summary>
    public static string ShellToRegex(string glob) => "^" + Body(glob, powerShell: false) + "$";

    /// <summary>A PowerShell wildcard matching one whole component of a relative path (<c>src/a/b.txt</c>), as
    /// Copy-Item's -Exclude matches item names.</summary>
    public static string PowerShellToRegex(string wildcard) => "(?i)(?:^|/)" + Body(wildcard, powerShell: true) + "$";

    private static string Body(string pattern, bool powerShell)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            switch (c)
            {
                case '`' when powerShell && i + 1 < pattern.Length:
                    sb.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                case '*': sb.Append("[^/]*"); break;
                case '?': sb.Append("[^/]"); break;
                case '[':
                    int close = pattern.IndexOf(']', i + 1);
                    if (close < 0) { sb.Append(@"\["); break; }
                    var set = pattern.AsSpan(i + 1, close - i - 1);
                    sb.Append('[');
                    if (!powerShell && set.StartsWith("!")) { sb.Append('^'); set = set[1..]; }
                    foreach (var s in set) sb.Append(s == '\\' || (powerShell && s is '^' or '[') ? "\\" + s : s.ToString());
                    sb.Append(']');
                    i = close;
                    break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }
        return sb.ToString();
    }
}
