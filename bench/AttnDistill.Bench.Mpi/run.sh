#!/usr/bin/env bash
# The data-parallel figures of docs/RESULTS.md ("Data-parallel (MPI)"). Repeats every measurement
# and alternates the 2-rank and 1-process step runs, so a machine shared with other jobs treats
# both alike. Usage: bench/AttnDistill.Bench.Mpi/run.sh [repeats]   (STEP_ONLY=1: only the step times)
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-3}
dotnet build bench/AttnDistill.Bench.Mpi -c Release -v q --nologo >/dev/null
bench="dotnet bench/AttnDistill.Bench.Mpi/bin/Release/net10.0/AttnDistill.Bench.Mpi.dll"
mpirun="mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2"
export TERM=dumb
echo "# $(date -u +%FT%TZ), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$repeats"); do
  if [ "${STEP_ONLY:-0}" != 1 ]; then
    for model in vit_tiny_patch16 vit_small_patch16; do
      $mpirun $bench allreduce --model "$model" --iters 20
    done
  fi
  # Same global batch per step: 2 ranks x 1 thread x B versus 1 process x 2 threads x 2B
  # (libtorch's OpenMP spin-waits by default; PASSIVE makes idle threads sleep), and x 1 thread.
  $mpirun $bench step --model vit_tiny_patch16 --image-size 224 --batch 8 --steps 8
  $bench step --model vit_tiny_patch16 --image-size 224 --batch 16 --threads 2 --steps 8
  OMP_WAIT_POLICY=PASSIVE $bench step --model vit_tiny_patch16 --image-size 224 --batch 16 --threads 2 --steps 8
  $bench step --model vit_tiny_patch16 --image-size 224 --batch 16 --threads 1 --steps 8
  echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
