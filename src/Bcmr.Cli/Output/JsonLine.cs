using System.Text.Json;

namespace Bcmr.Cli.Output;

/// <summary>One JSON object on its own line of stdout: what every --json command prints, written by hand with
/// Utf8JsonWriter (no reflection, so the Native AOT build keeps it). Paths keep their characters as they are
/// (relaxed escaping), as in the copy command's lines.</summary>
internal static class JsonLine
{
    public static JsonWriterOptions Options => Bcmr.Engine.Transfers.TransferJson.Options;

    public static void Write(Action<Utf8JsonWriter> body)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, Options))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        stdout.Write("\n"u8);
    }
}
