using System.Text;

namespace Bcmr.Engine.Client;

/// <summary>Word splitting of the <c>--ssh</c> and remote commands as the user typed them, and quoting of the remote
/// command for the shell that runs it on the other side. No expansion of any kind.</summary>
public static class ShellWords
{
    /// <summary>The rules of the machine the command was typed on: <see cref="Split(string, bool)"/> with Windows rules
    /// on Windows.</summary>
    public static List<string> Split(string text) => Split(text, OperatingSystem.IsWindows());

    /// <summary>
    /// Splits at whitespace; '...' and "..." group words with spaces. With <paramref name="windowsRules"/> a backslash
    /// is an ordinary character, since on Windows it separates paths (<c>ssh -F C:\Users\me\.ssh\config</c>);
    /// otherwise, as in a POSIX shell, it takes the next character literally.
    /// </summary>
    public static List<string> Split(string text, bool windowsRules)
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
            if (c == '\\' && !windowsRules && i + 1 < text.Length) { word.Append(text[++i]); continue; }
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

    /// <summary>
    /// Quotes one word of the remote command. ssh hands the command line to the remote account's shell, which is a
    /// POSIX shell on Unix and, with Windows' OpenSSH, cmd.exe by default; we cannot know which. So: words of plain
    /// characters stay bare; a word that means the same inside double quotes in both shells (no '"', '$', '`', '%',
    /// '!', control characters, nor a backslash before '\' or '"' or at the end) is double-quoted, which covers paths
    /// with spaces and Windows paths (<c>"C:\Program Files\bcmr\bcmr.exe"</c>); anything else is single-quoted for a
    /// POSIX shell only.
    /// </summary>
    public static string Quote(string word)
    {
        if (word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ':' or '=' or ',' or '@'))
            return word;
        if (word.Length > 0 && MeansTheSameInDoubleQuotes(word))
            return "\"" + word + "\"";
        return "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    private static bool MeansTheSameInDoubleQuotes(string word)
    {
        for (int i = 0; i < word.Length; i++)
        {
            char c = word[i];
            if (c is '"' or '$' or '`' or '%' or '!' || char.IsControl(c)) return false;
            if (c == '\\' && (i + 1 == word.Length || word[i + 1] is '\\' or '"')) return false;
        }
        return true;
    }
}
