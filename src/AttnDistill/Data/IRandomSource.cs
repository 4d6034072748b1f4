namespace AttnDistill.Data;

/// <summary>
/// The random draws torchvision's transforms make, named after the torch calls they stand for, so a
/// transform written against it follows torchvision's algorithm draw for draw (a test plugs in
/// torch's own generator and gets torchvision's exact boxes).
/// </summary>
public interface IRandomSource
{
    /// <summary><c>torch.empty(1).uniform_(low, high).item()</c>: a float32 in [low, high).</summary>
    float Uniform(double low, double high);

    /// <summary><c>torch.randint(low, high, (1,)).item()</c>: an integer in [low, high).</summary>
    int Integer(int low, int high);

    /// <summary><c>torch.rand(1).item()</c>: a float32 in [0, 1).</summary>
    float Unit();
}
