namespace AttnDistill.Distributed;

/// <summary>An MPI or NCCL call returned an error (Open MPI's default handler usually aborts the job first).</summary>
public sealed class MpiException(string message) : Exception(message);
