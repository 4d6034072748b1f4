namespace AttnDistill.Tests.Checkpoints;

/// <summary>Passes writes through until <c>failAfter</c> bytes, then throws: a disk that fills up mid-save.</summary>
sealed class FailingStream(Stream inner, long failAfter) : Stream
{
    long written;

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        long room = failAfter - written;
        if (buffer.Length > room)
        {
            inner.Write(buffer[..(int)Math.Max(0, room)]);
            written = failAfter;
            throw new IOException("injected failure: no space left on device");
        }
        inner.Write(buffer);
        written += buffer.Length;
    }

    public override void WriteByte(byte value) => Write(new[] { value }, 0, 1);
    public override void Flush() => inner.Flush();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => written;
    public override long Position { get => written; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
