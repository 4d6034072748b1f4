using System.Globalization;
using System.Text.Json;
using TorchSharp.Modules;

namespace AttnDistill.Training;

/// <summary>
/// A run's logs in its output folder: <c>log.txt</c> (one JSON object per line, like the authors'
/// and DINO's) and TensorBoard event files. Only the main process writes; others get a null log.
/// </summary>
public sealed class RunLog : IDisposable
{
    private readonly StreamWriter _jsonLines;
    private readonly SummaryWriter? _tensorBoard;

    // A skipped batch logs NaN/Infinity: written as JSON strings rather than failing the run.
    private static readonly JsonSerializerOptions JsonOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public RunLog(string outDir, bool tensorBoard = true)
    {
        Directory.CreateDirectory(outDir);
        _jsonLines = new StreamWriter(new FileStream(Path.Combine(outDir, "log.txt"), FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        if (tensorBoard) _tensorBoard = TorchSharp.torch.utils.tensorboard.SummaryWriter(Path.Combine(outDir, "tensorboard"), createRunName: false);
    }

    /// <summary>Writes one JSON line and the numeric fields as TensorBoard scalars under <paramref name="prefix"/>.</summary>
    public void Write(string prefix, long step, IReadOnlyDictionary<string, object> fields)
    {
        _jsonLines.WriteLine(JsonSerializer.Serialize(fields, JsonOptions));
        if (_tensorBoard is null) return;
        foreach (var (k, v) in fields)
        {
            double? x = v switch { double d => d, float f => f, int i => i, long l => l, _ => null };
            if (x is { } value && double.IsFinite(value))
                _tensorBoard.add_scalar($"{prefix}/{k}", (float)value, (int)Math.Min(step, int.MaxValue));
        }
    }

    public static string Format(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        // TorchSharp's SummaryWriter writes each event as it comes and holds no open handle: only the JSON lines need closing.
        _jsonLines.Dispose();
    }
}
