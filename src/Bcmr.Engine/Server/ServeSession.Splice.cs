using Bcmr.Engine.Platform;
using Bcmr.Engine.Platform.Native;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// FAST downloads on Linux: file data goes from the page cache to the output with sendfile(2), no copy through us.
public sealed partial class ServeSession
{
    /// <summary>
    /// Sends [pos, size) of the file as Data frames whose payload is written by sendfile(2) from the file to
    /// <see cref="ServeOptions.OutputFd"/>, on this thread, one call per frame (the kernel loops; we only resume a
    /// short write). Used only under FAST (there is no hash to feed) with no codec, on Linux. The reference's splice
    /// variant was slower than the buffered path (Experiment 14) because its pipe stayed at 64 KiB and each chunk
    /// bounced to another thread: here the output pipe, when it is one, was grown to 1 MiB when the session
    /// started (Fs.GrowPipe), and nothing changes threads.
    /// A frame header promises its length before the bytes go out, so a file that shrinks mid-frame cannot be
    /// answered with Error: the connection is closed instead (the client then reports the file, as for any cut).
    /// Returns false, having sent nothing, when this path does not apply.
    /// </summary>
    private bool TrySendWithSendfile(SafeFileHandle file, string path, ref long pos, long size)
    {
        if (!Fast || _options.OutputFd is not int outFd || !Fs.Linux || (EffectiveCaps & (Caps.Lz4 | Caps.Zstd)) != 0)
            return false;
        if (_options.Settings.NoSendfile) return false;
        _output.Flush();
        int inFd = Fs.Fd(file);
        var header = new byte[Wire.HeaderSize + 4];
        while (pos < size)
        {
            int chunk = (int)Math.Min(Wire.MaxBlock, size - pos);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)Wire.DataFrameLength(chunk));
            header[4] = (byte)MessageType.Data;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(5), (uint)chunk);
            _output.Write(header);
            _output.Flush();
            long offset = pos;
            long end = pos + chunk;
            while (offset < end)
            {
                nint n;
                unsafe { n = LibC.sendfile(outFd, inFd, &offset, (nuint)(end - offset)); }
                if (n > 0) continue;
                int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                if (n < 0 && errno == 4 /* EINTR */) continue;
                if (n < 0 && errno == 11 /* EAGAIN */) { Thread.Sleep(1); continue; }
                throw new IOException(n == 0
                    ? $"{path}: ended at {offset} while being sent (expected {size} bytes); closing the connection"
                    : $"{path}: sendfile failed (errno {errno})");
            }
            pos = end;
        }
        return true;
    }
}
