using System.Text;

namespace Bcmr.Engine.Client;

/// <summary>POSIX-shell-like word splitting and quoting for the <c>--ssh</c> command and the remote command line.
/// No expansion of any kind: quotes ('...', "...") and backslashes only.</summary>
public static class ShellWords
{
    public static List<string> Split(string text)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(word.ToString()); word.Clear(); inWord = false; }
                continue;
            }
            inWord = true;
            if (c == '\\' && i + 1 < text.Length) { word.Append(text[++i]); continue; }
            if (c is '\'' or '"')
            {
                int end = text.IndexOf(c, i + 1);
                if (end < 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"unmatched {c} in command: {text}");
                word.Append(text, i + 1, end - i - 1);
                i = end;
                continue;
            }
            word.Append(c);
        }
        if (inWord) words.Add(word.ToString());
        return words;
    }

    /// <summary>Quotes one word for a POSIX shell (the remote side of ssh runs the command through the user's shell).</summary>
    public static string Quote(string word)
    {
        if (word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ':' or '=' or ',' or '@'))
            return word;
        return "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }
}
