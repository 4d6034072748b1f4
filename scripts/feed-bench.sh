#!/usr/bin/env bash
# Distillation images/s on the CPU of two builds, alternated twice (the device feed's before/after
# figure in docs/RESULTS.md, "Devices"). Builds and teacher are given, e.g.:
#   BEFORE=/path/to/old/attndistill.dll AFTER=src/AttnDistill.Cli/bin/Release/net10.0/attndistill.dll \
#   TEACHER=runs/t/teacher-init.safetensors scripts/feed-bench.sh
set -euo pipefail
: "${BEFORE:?set BEFORE to the first build's attndistill.dll}" "${AFTER:?set AFTER to the second build's attndistill.dll}" "${TEACHER:?set TEACHER to a teacher checkpoint (28 px)}"
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
export OMP_WAIT_POLICY=PASSIVE
for round in 1 2; do
  for which in before after; do
    dll=$([ $which = before ] && echo "$BEFORE" || echo "$AFTER")
    out=$(mktemp -d)/run
    dotnet "$dll" distill --data "$DATA" --teacher "$TEACHER" --student vit_tiny_patch16 \
      --student-patch 7 --student-depth 2 --student-heads 3 --student-dim 48 --image-size 28 --proj-layers 2 --epochs 1 --warmup-epochs 0 \
      --batch-size 128 --workers 2 --out "$out" > "$out.log" 2>&1
    python3 -c "import json,sys; print('$which', $round, round(json.load(open('$out/metrics.json'))['distill']['images_per_s'], 1))"
  done
done
