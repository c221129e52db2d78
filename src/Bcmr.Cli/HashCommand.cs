using System.CommandLine;
using System.Text;
using System.Text.Json;
using Bcmr.Engine.Hashing;

namespace Bcmr.Cli;

/// <summary><c>bcmr hash FILE...</c>: BLAKE3 sums in the same output format as <c>b3sum</c>.</summary>
internal static class HashCommand
{
    internal static Command Create()
    {
        var files = new Argument<string[]>("FILE")
        {
            Description = "Files to hash; '-' (or no file at all) reads standard input.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var threads = new Option<int>("--threads", "-t")
        {
            Description = "Threads per file (1 = single-threaded streaming). Default: all cores.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var length = new Option<long>("--length", "-l")
        {
            Description = "Number of output bytes (BLAKE3 is an extendable-output function).",
            DefaultValueFactory = _ => Blake3.OutLen,
        };
        var keyed = new Option<bool>("--keyed") { Description = "Keyed mode; the 32-byte key is read raw from standard input." };
        var deriveKey = new Option<string?>("--derive-key") { Description = "Key derivation mode with the given context string." };

        var command = new Command("hash", "Print BLAKE3 checksums, compatible with b3sum.");
        command.Arguments.Add(files);
        command.Options.Add(threads);
        command.Options.Add(length);
        command.Options.Add(keyed);
        command.Options.Add(deriveKey);

        command.SetAction(parse => Run(
            parse.GetValue(files) ?? Array.Empty<string>(),
            // The global, recursive --json: one {"type":"hash",...} line per file instead of b3sum-style lines.
            parse.GetValue(Program.Json),
            parse.GetValue(threads),
            parse.GetValue(length),
            parse.GetValue(keyed),
            parse.GetValue(deriveKey)));
        return command;
    }

    private static int Run(string[] files, bool json, int threads, long length, bool keyed, string? deriveKey)
    {
        if (threads <= 0)
        {
            return Usage($"--threads must be a positive number, not {threads}");
        }
        // Output is formatted as one hex string in memory; anything near that limit is a mistake.
        if (length < 0 || length > 1L << 28)
        {
            return Usage($"--length must be between 0 and {1L << 28}, not {length}");
        }
        if (keyed && deriveKey is not null)
        {
            return Usage("--keyed and --derive-key cannot be combined");
        }
        if (files.Length == 0)
        {
            files = new[] { "-" };
        }

        byte[]? key = null;
        if (keyed)
        {
            if (files.Contains("-"))
            {
                return Usage("--keyed reads the key from standard input, so '-' cannot also be an input");
            }
            key = ReadKey(Console.OpenStandardInput());
            if (key is null)
            {
                return Usage("--keyed: standard input must hold exactly 32 bytes of key");
            }
        }

        using Stream stdout = Console.OpenStandardOutput();
        byte[] output = new byte[length];
        int exit = ExitCodes.Success;
        foreach (string path in files)
        {
            Blake3Hasher hasher = key is not null ? Blake3Hasher.CreateKeyed(key)
                : deriveKey is not null ? Blake3Hasher.CreateDeriveKey(deriveKey)
                : Blake3Hasher.Create();
            long size;
            try
            {
                if (path == "-")
                {
                    using Stream stdin = Console.OpenStandardInput();
                    size = Blake3.HashStream(stdin, hasher);
                    hasher.Finalize(output);
                }
                else
                {
                    size = Blake3.HashFile(path, threads, hasher, output);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"bcmr: hash: {path}: {Describe(e, path)}");
                exit = ExitCodes.Failure;
                continue;
            }

            stdout.Write(json ? JsonLine(path, output, size) : SumLine(path, output));
            stdout.Flush();
        }
        return exit;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"bcmr: hash: {message}");
        return ExitCodes.Usage;
    }

    private static byte[]? ReadKey(Stream stdin)
    {
        byte[] key = new byte[Blake3.OutLen];
        int read = stdin.ReadAtLeast(key, key.Length, throwOnEndOfStream: false);
        // Like b3sum, trailing bytes are an error rather than silently ignored.
        return read == key.Length && stdin.ReadByte() < 0 ? key : null;
    }

    /// <summary>b3sum's line: hex, two spaces, path; a path with a backslash or newline is escaped and the line marked with a leading backslash.</summary>
    private static byte[] SumLine(string path, byte[] hash)
    {
        var line = new StringBuilder(hash.Length * 2 + path.Length + 4);
        bool escape = path.Contains('\\') || path.Contains('\n');
        if (escape)
        {
            line.Append('\\');
            path = path.Replace("\\", "\\\\").Replace("\n", "\\n");
        }
        line.Append(Blake3.ToHex(hash)).Append("  ").Append(path).Append('\n');
        return Encoding.UTF8.GetBytes(line.ToString());
    }

    private static byte[] JsonLine(string path, byte[] hash, long size)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", "hash");
            writer.WriteString("path", path);
            writer.WriteString("blake3", Blake3.ToHex(hash));
            writer.WriteNumber("size", size);
            writer.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private static string Describe(Exception e, string path) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException when Directory.Exists(path) => "Is a directory",
        UnauthorizedAccessException => "Permission denied",
        _ => e.Message,
    };
}
