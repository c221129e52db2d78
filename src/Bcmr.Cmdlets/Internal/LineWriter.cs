using System.Text;

namespace Bcmr.Cmdlets.Internal;

/// <summary>A TextWriter that hands each complete line to a callback (safe from any thread), so that engine
/// diagnostics can reach WriteVerbose through the pipeline thread.</summary>
internal sealed class LineWriter(Action<string> onLine) : TextWriter
{
    private readonly StringBuilder _line = new();

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        string? complete = null;
        lock (_line)
        {
            if (value == '\n')
            {
                complete = _line.ToString().TrimEnd('\r');
                _line.Clear();
            }
            else _line.Append(value);
        }
        if (complete is not null) onLine(complete);
    }

    public override void WriteLine(string? value)
    {
        string line;
        lock (_line)
        {
            line = _line.Append(value).ToString();
            _line.Clear();
        }
        onLine(line);
    }
}
