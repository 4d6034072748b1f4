namespace AttnDistill.Training;

/// <summary>
/// A training loop stopped on request after the stop was agreed by every rank (the trainer's
/// collective check at an optimizer step) and its checkpoint was written. Unlike a bare
/// <see cref="OperationCanceledException"/> (a stop seen by one process in the middle of its
/// work), every rank of an mpirun job throws it at the same point, so the command may leave the
/// job cleanly (MPI_Finalize) instead of leaving mpirun to kill the others.
/// </summary>
public sealed class TrainingStoppedException(string message) : OperationCanceledException(message);
