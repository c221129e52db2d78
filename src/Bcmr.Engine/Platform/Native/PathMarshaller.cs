using System.Runtime.InteropServices;
using System.Runtime.InteropServices.Marshalling;
using System.Text;

namespace Bcmr.Engine.Platform.Native;

/// <summary>
/// Linux names are bytes, .NET strings are UTF-16: names that are not valid UTF-8 are carried in strings with each
/// byte that does not decode as a lone low surrogate U+DC80..U+DCFF (the "surrogateescape" of Python and Rust's
/// OsStr), so a name read from a directory reaches the system calls as the same bytes, as cp copies it.
/// </summary>
internal static class PathBytes
{
    /// <summary>Linux's PATH_MAX: a path this long (with its NUL) is refused by every path system call.</summary>
    public const int PathMax = 4096;

    /// <summary>Whether <paramref name="s"/> carries bytes that are not UTF-8 (it cannot be sent as a protocol string).</summary>
    public static bool HasEscapes(string s)
    {
        for (int i = 0; i < s.Length; i++)
            if (s[i] is >= '\uDC80' and <= '\uDCFF' && (i == 0 || !char.IsHighSurrogate(s[i - 1]))) return true;
        return false;
    }

    /// <summary>The bytes of <paramref name="s"/>: UTF-8, escaped bytes as themselves. Every path of every system
    /// call comes here: a name with no escaped byte (nearly all) is plain UTF-8, encoded in one call.</summary>
    public static byte[] Encode(string s) => HasEscapes(s) ? EncodeEscaped(s) : Encoding.UTF8.GetBytes(s);

    /// <summary>Rune by rune, for any string (<see cref="Encode"/> for one with escaped bytes).</summary>
    internal static byte[] EncodeEscaped(string s)
    {
        var bytes = new List<byte>(s.Length + 8);
        Span<byte> rune = stackalloc byte[4];
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                int n = new Rune(c, s[++i]).EncodeToUtf8(rune);
                for (int k = 0; k < n; k++) bytes.Add(rune[k]);
            }
            else if (c is >= '\uDC80' and <= '\uDCFF') bytes.Add((byte)(c - 0xDC00));
            else
            {
                int n = (Rune.TryCreate(c, out var r) ? r : Rune.ReplacementChar).EncodeToUtf8(rune);
                for (int k = 0; k < n; k++) bytes.Add(rune[k]);
            }
        }
        return bytes.ToArray();
    }

    /// <summary>A string for <paramref name="bytes"/> that <see cref="Encode"/> turns back into the same bytes. Every
    /// name listed comes here: valid UTF-8 (nearly all) is decoded in one call; it was a string per character and a
    /// StringBuilder per name, a fifth of a no-change sync's client (bench/RESULTS.md, session 15).</summary>
    public static string Decode(ReadOnlySpan<byte> bytes) =>
        System.Text.Unicode.Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : DecodeEscaped(bytes);

    /// <summary>Rune by rune, for any bytes (<see cref="Decode"/> for bytes that are not UTF-8).</summary>
    internal static string DecodeEscaped(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        Span<char> chars = stackalloc char[2];
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out int used) == System.Buffers.OperationStatus.Done)
            {
                sb.Append(chars[..rune.EncodeToUtf16(chars)]);
                bytes = bytes[used..];
            }
            else
            {
                sb.Append((char)(0xDC00 + bytes[0]));
                bytes = bytes[1..];
            }
        }
        return sb.ToString();
    }

    /// <summary>The bytes a terminal or a JSON document can show: escaped bytes as U+FFFD.</summary>
    public static string Printable(string s)
    {
        if (!HasEscapes(s)) return s;
        var chars = s.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
            if (chars[i] is >= '\uDC80' and <= '\uDCFF' && (i == 0 || !char.IsHighSurrogate(chars[i - 1]))) chars[i] = '\uFFFD';
        return new string(chars);
    }
}

/// <summary>
/// Marshals a path argument of a libc call as its bytes (<see cref="PathBytes"/>). A path of <see cref="PathBytes.PathMax"/>
/// bytes or more, which the kernel refuses whole, is walked a piece at a time: each directory prefix short enough is
/// opened (O_PATH) and the rest named through it as <c>/proc/self/fd/N/rest</c>, so deep trees copy as cp copies them.
/// The descriptor lives until the call returns.
/// </summary>
[CustomMarshaller(typeof(string), MarshalMode.ManagedToUnmanagedIn, typeof(PathMarshaller.ManagedToUnmanagedIn))]
internal static unsafe partial class PathMarshaller
{
    private const int O_PATH = 0x200000, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    /// <summary>Room left for "/proc/self/fd/NNNNNNNNNN/" and the NUL.</summary>
    private const int Slack = 64;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = false)]
    private static partial int OpenRaw(byte* path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = false)]
    private static partial int CloseRaw(int fd);

    public ref struct ManagedToUnmanagedIn
    {
        private byte* _native;
        private int _fdPlusOne; // 0: no descriptor (a default struct must not close fd 0)

        public void FromManaged(string? path)
        {
            if (path is null) return;
            var bytes = PathBytes.Encode(path);
            if (bytes.Length >= PathBytes.PathMax) bytes = Shorten(bytes, out _fdPlusOne);
            _native = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
            bytes.AsSpan().CopyTo(new Span<byte>(_native, bytes.Length));
            _native[bytes.Length] = 0;
        }

        public byte* ToUnmanaged() => _native;

        public void Free()
        {
            if (_native != null) NativeMemory.Free(_native);
            _native = null;
            if (_fdPlusOne != 0) CloseRaw(_fdPlusOne - 1);
            _fdPlusOne = 0;
        }
    }

    /// <summary>"/proc/self/fd/N/tail" for a path too long to name whole, N a descriptor of its longest openable
    /// directory prefix (returned in <paramref name="fdPlusOne"/>); the path unchanged when no prefix opens (the call
    /// then fails as the kernel says).</summary>
    private static byte[] Shorten(byte[] path, out int fdPlusOne)
    {
        fdPlusOne = 0;
        int start = 0, dirfd = -1;
        while (path.Length - start + Slack >= PathBytes.PathMax)
        {
            var prefix = dirfd < 0 ? [] : Encoding.ASCII.GetBytes($"/proc/self/fd/{dirfd}/");
            int limit = Math.Min(path.Length, start + PathBytes.PathMax - Slack - prefix.Length);
            int cut = Array.LastIndexOf(path, (byte)'/', limit - 1, limit - start);
            if (cut < start) break; // one name longer than a whole path: the kernel refuses it anyway
            var chunk = new byte[prefix.Length + Math.Max(1, cut - start) + 1];
            prefix.CopyTo(chunk, 0);
            if (cut == start) chunk[prefix.Length] = (byte)'/'; // the root
            else path.AsSpan(start, cut - start).CopyTo(chunk.AsSpan(prefix.Length));
            int fd;
            fixed (byte* p = chunk) fd = OpenRaw(p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
            if (dirfd >= 0) CloseRaw(dirfd);
            dirfd = fd;
            if (fd < 0) return path;
            start = cut + 1;
        }
        if (dirfd < 0) return path;
        fdPlusOne = dirfd + 1;
        var head = Encoding.ASCII.GetBytes($"/proc/self/fd/{dirfd}/");
        return [.. head, .. path.AsSpan(start)];
    }
}
