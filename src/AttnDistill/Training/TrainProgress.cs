namespace AttnDistill.Training;

/// <summary>A snapshot for progress bars: where the run is and how fast it goes.</summary>
public sealed record TrainProgress(
    int Epoch, int Epochs, int Batch, int BatchesPerEpoch, double Lr,
    IReadOnlyDictionary<string, double> Loss, double ImagesPerSecond)
{
    public long DoneBatches => (long)Epoch * BatchesPerEpoch + Batch;
    public long TotalBatches => (long)Epochs * BatchesPerEpoch;
}

/// <summary>What a finished (or stopped) run reports.</summary>
public sealed record TrainResult(
    int EpochsDone, long OptimizerSteps, int SkippedBatches, IReadOnlyDictionary<string, double> LastEpochLoss,
    double ImagesPerSecond, bool Interrupted, string? LastCheckpoint);

/// <summary>Thrown when too many batches were non-finite in one epoch; the message carries the diagnostics.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
