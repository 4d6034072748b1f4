using AttnDistill.Distributed;
using AttnDistill.Training;
using static AttnDistill.Tests.Distributed.DataParallelScenarios;

namespace AttnDistill.Tests.Distributed;

/// <summary>
/// The test assembly's entry point (the test SDK's generated one is turned off in the csproj):
/// <c>mpirun -np 2 dotnet AttnDistill.Tests.dll mpi-worker DIR</c> runs every data-parallel
/// scenario on each rank and writes rank r's results to DIR/rank{r}-{scenario}.safetensors, for
/// <see cref="DataParallelTests"/> to compare with one process. Test-only: not part of the CLI.
/// </summary>
public static class MpiWorker
{
    public static int Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "mpi-worker") return Run(args[1]);
        Console.Error.WriteLine("this is a test assembly: run it with dotnet test ('mpi-worker DIR' is the test-only MPI entry point).");
        return 2;
    }

    static int Run(string dir)
    {
        var dist = DistributedContext.FromEnvironment(TorchSharp.torch.CPU);
        try
        {
            string Out(string name) => Path.Combine(dir, "runs", name);
            void Dump(string name, Dictionary<string, TorchSharp.torch.Tensor> t) => Save(t, Path.Combine(dir, $"rank{dist.Rank}-{name}.safetensors"));

            // (a) one optimizer step, batch B on each rank (SGD and the trainer's AdamW), and with 2 accumulation steps.
            Dump("one-step-sgd", Train(dist, Out("one-step-sgd"), count: 2 * B, batch: B, effective: 0, epochs: 1, optimizer: Sgd));
            Dump("one-step-adamw", Train(dist, Out("one-step-adamw"), count: 2 * B, batch: B, effective: 0, epochs: 1));
            Dump("one-step-accum", Train(dist, Out("one-step-accum"), count: 4 * B, batch: B, effective: 4 * B, epochs: 1, optimizer: Sgd));

            // (b) 20 optimizer steps (2 epochs x 20 batches / 2 accumulation steps) with drop path, whose draws differ per rank.
            Dump("twenty", Train(dist, Out("twenty"), count: 40 * B, batch: B, effective: 4 * B, epochs: 2, dropPath: 0.1));

            // A stop seen by rank 1 only, mid-epoch: both ranks stop at the same step; the resumed run ends as an uninterrupted one.
            Dump("straight", Train(dist, Out("straight"), count: 20 * B, batch: B, effective: 0, epochs: 2, dropPath: 0.1));
            using (var stop = new CancellationTokenSource())
            {
                var progress = new Inline(p => { if (dist.Rank == 1 && p.Epoch == 0 && p.DoneBatches == 4) stop.Cancel(); });
                Train(dist, Out("stopped"), count: 20 * B, batch: B, effective: 0, epochs: 2, dropPath: 0.1, stop: stop.Token, progress: progress);
                if (!Last!.Interrupted || (dist.IsMain && !Last.LastCheckpoint!.EndsWith("checkpoint-0000-000004.ckpt")))
                    throw new InvalidOperationException($"rank {dist.Rank}: expected a stop after batch 4, got interrupted={Last.Interrupted} checkpoint={Last.LastCheckpoint}");
            }
            Dump("resumed", Train(dist, Out("stopped"), count: 20 * B, batch: B, effective: 0, epochs: 2, dropPath: 0.1, resume: true, initSeed: 99));

            // k-NN features: each rank extracts its shard, all get the whole set.
            Dump("features", Features(dist));
            DistributedContext.Shutdown();
            return 0;
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"rank {dist.Rank}: {ex}");
            DistributedContext.Abort(1);
            return 1;
        }
    }

    sealed class Inline(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
