namespace AttnDistill.Data;

/// <summary>
/// A labelled image data set addressed by index, as torchvision's <c>Dataset</c>: item i has a
/// label in [0, ClassNames.Count) and decodes to an 8-bit HWC image. Implementations must allow
/// <see cref="Load"/> to be called from several threads at once.
/// </summary>
public interface IImageDataset
{
    /// <summary>Number of items.</summary>
    int Count { get; }

    /// <summary>Class names; a label is an index into this list.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Channels of every decoded image: 3 (RGB) or 1 (grayscale kept as is).</summary>
    int Channels { get; }

    /// <summary>Label of item i, known without decoding.</summary>
    int Label(int index);

    /// <summary>Decodes item i. Throws <see cref="InvalidDataException"/> or <see cref="IOException"/> when it cannot be read.</summary>
    DecodedImage Load(int index);

    /// <summary>A name for item i in messages and subset files: a file path, or "&lt;file&gt;#&lt;record&gt;".</summary>
    string ItemName(int index);
}
