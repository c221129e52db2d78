namespace Bcmr.Engine.Server;

/// <summary>
/// A session's input that runs an action (sending the replies written so far) before each read from the connection.
/// The session reads through a buffer, so this runs only when every request already received has been answered and
/// the session is about to wait for more: the replies to a pipelined burst of requests leave in one write instead of
/// one each. A reply never waits for the client, because the client's next bytes are read only after it is sent.
/// </summary>
internal sealed class FlushBeforeRead(Stream inner, Action beforeRead) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        beforeRead();
        return inner.Read(buffer);
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
