namespace AttnDistill.Data;

/// <summary>Which part of a data set: Train, or the held-out part (folder "val" or "test", IDX "t10k", CIFAR "test").</summary>
public enum DataSplit
{
    Train,
    Val,
}
