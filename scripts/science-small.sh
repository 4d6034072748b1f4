#!/usr/bin/env bash
# The paper's trends at CPU scale (issue: science study): CIFAR-10 at 32 px, the tiny MAE teacher
# of recipes/cifar10-mae-teacher-small.yaml, students from the -small recipes, 3 seeds each,
# k-NN (k 20) and a linear probe (cached features) for every run; then scripts/science-table.py
# writes the mean +- std table. Re-running skips finished runs.
#   DATA=/path/to/cifar10 OUT=runs/science scripts/science-small.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/cifar10}
OUT=${OUT:-runs/science}
SEEDS=${SEEDS:-"0 1 2"}
EPOCHS=${EPOCHS:-2}                 # student epochs (the recipes' default)
TEACHER_EPOCHS=${TEACHER_EPOCHS:-5}
CLI=${CLI:-"dotnet src/AttnDistill.Cli/bin/Release/net10.0/attndistill.dll"}
[ -f src/AttnDistill.Cli/bin/Release/net10.0/attndistill.dll ] || dotnet build src/AttnDistill.Cli -c Release -v q --nologo

evaluate() {   # checkpoint run-dir: results in RUN/knn and RUN/linear (what `attndistill report` reads)
  [ -f "$2/linear/metrics.json" ] && return 0
  $CLI knn --data "$DATA" --checkpoint "$1" --image-size 32 --k 20 --out "$2/knn" --feature-cache "$OUT/feature-cache"
  $CLI linear --config recipes/linear-probe-small.yaml --data "$DATA" --checkpoint "$1" --out "$2/linear" --feature-cache "$OUT/feature-cache"
}

TEACHER=$OUT/teacher
[ -f "$TEACHER/teacher.safetensors" ] || $CLI pretrain-mae --config recipes/cifar10-mae-teacher-small.yaml --data "$DATA" --epochs "$TEACHER_EPOCHS" --out "$TEACHER" --resume
evaluate "$TEACHER/teacher.safetensors" "$TEACHER"
evaluate "$TEACHER/teacher-init.safetensors" "$OUT/random-init-encoder"

# (family recipe, row), most important first: seeds are the outer loop, so a cut-short study
# still has every comparison at the seeds it reached. Weak student (patch 8) for the aggregation
# study, patch-4 student for lambda and T.
CORE=(
  "table10-b-aggregation-small features" "table10-b-aggregation-small product"
  "table10-e-lambda-small lambda-0" "table10-e-lambda-small lambda-0.1"
)
SWEEPS=(
  "table10-b-aggregation-small max" "table10-b-aggregation-small mean" "table10-b-aggregation-small min"
  "table10-e-temperature-small T-5" "table10-e-temperature-small T-20" "table10-e-lambda-small lambda-0.3"
)
RUNS=("${CORE[@]}")
[ "${CORE_ONLY:-0}" = 1 ] || RUNS+=("${SWEEPS[@]}")
for seed in $SEEDS; do
  for entry in "${RUNS[@]}"; do
    set -- $entry
    family=$1 row=$2
    dir=$OUT/$family/$row/seed$seed
    if [ ! -f "$dir/backbone.safetensors" ]; then
      $CLI distill --config "recipes/$family.yaml#$row" --data "$DATA" --teacher "$TEACHER/teacher.safetensors" --seed "$seed" --epochs "$EPOCHS" --out "$dir" --resume
    fi
    evaluate "$dir/backbone.safetensors" "$dir"
  done
done
/usr/bin/env python3 scripts/science-table.py "$OUT"
