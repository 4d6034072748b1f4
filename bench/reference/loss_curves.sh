#!/bin/bash
# Short real runs, fp32 vs bf16, three seeds each (the product's CLI, the real loader):
#   1. MAE pre-training, CIFAR-10 32 px, the small recipe's model (4 x 96, patch 4; decoder 128 x 2);
#   2. AttnDistill from run 1's fp32 seed-0 teacher to a 4 x 48 student (lambda 0.1, product aggregation).
# Usage: bench/reference/loss_curves.sh DATA OUT [EPOCHS]   (DATA: an ImageFolder root with train/)
# Then:  /usr/bin/python3 bench/reference/plot_curves.py OUT
set -euo pipefail
DATA=$1; OUT=$2; EPOCHS=${3:-3}
CLI=${CLI:-"dotnet src/AttnDistill.Cli/bin/Release/net10.0/attndistill.dll"}
for seed in 0 1 2; do
  for p in fp32 bf16; do
    echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg): mae $p seed $seed"
    $CLI pretrain-mae --config recipes/cifar10-mae-teacher-small.yaml --data "$DATA" --epochs "$EPOCHS" --warmup-epochs 1 \
      --log-every 1 --picture-every 0 --precision $p --seed $seed --out "$OUT/mae-$p-s$seed" > "$OUT.mae-$p-s$seed.txt" 2>&1
  done
done
TEACHER="$OUT/mae-fp32-s0/teacher.safetensors"
for seed in 0 1 2; do
  for p in fp32 bf16; do
    echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg): distill $p seed $seed"
    $CLI distill --config "recipes/table10-e-lambda-small.yaml#lambda-0.1" --data "$DATA" --teacher "$TEACHER" --epochs "$EPOCHS" \
      --warmup-epochs 1 --log-every 1 --precision $p --seed $seed --out "$OUT/distill-$p-s$seed" > "$OUT.distill-$p-s$seed.txt" 2>&1
  done
done
