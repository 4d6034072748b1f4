namespace AttnDistill.Data;

/// <summary>The on-disk layouts <see cref="DatasetFactory"/> recognises.</summary>
public enum DataFormat
{
    /// <summary>root/{train,val|test}/&lt;class&gt;/&lt;image&gt;.</summary>
    ImageFolder,
    /// <summary>MNIST-style train-images-idx3-ubyte[.gz] + t10k-... files.</summary>
    Idx,
    /// <summary>cifar-10-batches-bin: data_batch_1..5.bin + test_batch.bin.</summary>
    Cifar10Binary,
    /// <summary>cifar-100-binary: train.bin + test.bin.</summary>
    Cifar100Binary,
    /// <summary>ROOT/train.lmdb and ROOT/val.lmdb (or test.lmdb), as `attndistill data pack` or the authors' folder2lmdb.py write.</summary>
    Lmdb,
}
