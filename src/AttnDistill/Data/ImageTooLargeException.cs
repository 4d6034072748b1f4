namespace AttnDistill.Data;

/// <summary>
/// An image header claims more pixels than the decode budget allows (<see cref="ImageDecoder.MaxImagePixels"/>,
/// PIL's DecompressionBombError). Unlike an unreadable file it is not skipped: the run stops with
/// one line naming the file, as a PyTorch run stops on PIL's error. It is an
/// <see cref="IOException"/> so the CLI reports it as a bad input (exit 2).
/// </summary>
public sealed class ImageTooLargeException(string message, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>Runs a parallel loop; a refusal inside it comes out as itself rather than inside an AggregateException.</summary>
    public static void Unwrap(Action parallel)
    {
        try { parallel(); }
        catch (AggregateException ex) when (ex.Flatten().InnerExceptions.OfType<ImageTooLargeException>().FirstOrDefault() is { } bomb)
        {
            throw new ImageTooLargeException(bomb.Message, bomb);
        }
    }
}
