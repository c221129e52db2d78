using System.Text;
using System.Text.RegularExpressions;

namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// -Exclude takes PowerShell wildcards matched against item names, as Copy-Item's does; the engine takes regular
/// expressions matched against paths relative to the source's parent (<c>src/a/b.txt</c>). A pattern becomes a regex
/// anchored to one whole path component, case-insensitive like PowerShell's wildcards.
/// </summary>
internal static class ExcludePattern
{
    public static string ToRegex(string wildcard)
    {
        var sb = new StringBuilder("(?i)(?:^|/)");
        for (int i = 0; i < wildcard.Length; i++)
        {
            char c = wildcard[i];
            switch (c)
            {
                case '`' when i + 1 < wildcard.Length:
                    sb.Append(Regex.Escape(wildcard[++i].ToString()));
                    break;
                case '*': sb.Append("[^/]*"); break;
                case '?': sb.Append("[^/]"); break;
                case '[':
                    int close = wildcard.IndexOf(']', i + 1);
                    if (close < 0) { sb.Append(@"\["); break; }
                    var set = wildcard[(i + 1)..close];
                    sb.Append('[');
                    foreach (var s in set) sb.Append(s is '\\' or '^' or '[' ? "\\" + s : s.ToString());
                    sb.Append(']');
                    i = close;
                    break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }
        return sb.Append('$').ToString();
    }
}
