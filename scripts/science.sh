#!/usr/bin/env bash
# The study of docs/RESULTS.md ("The paper's claims on Fashion-MNIST"): every row of
# recipes/science-fashion-mnist.yaml for seeds 0 1 2, each evaluated by k-NN (k 20) and a cached
# linear probe, next to the pixel floor and the reference teacher measured by the same commands.
# One teacher-target cache per seed (value-weighted and all-blocks rows need their own): the
# feature-only row fills it, every other row of that seed reads it and the teacher never runs again.
# Resumable: a run's figures are copied to docs/science/fashion-mnist/ROW/seedN/ (committed; no
# checkpoints there) and a run whose figures are there is not run again; a cut-short distillation
# continues with --resume. Then scripts/science-tables.py writes the tables.
#   OMP_WAIT_POLICY=PASSIVE scripts/science.sh                 # everything, most important first
#   ROWS="a-strong-features a-strong-attndistill" SEEDS=0 scripts/science.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=recipes/science-fashion-mnist.yaml
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
TEACHER=${TEACHER:-models/fashion-mnist-dino-vit_tiny_p7_d4.safetensors}
OUT=${OUT:-runs/science}                    # run folders, caches (large; not committed)
FIGURES=${FIGURES:-docs/science/fashion-mnist}
SEEDS=${SEEDS:-"0 1 2"}
CLI=${CLI:-src/AttnDistill.Cli/bin/Release/net10.0/attndistill}
FLAGS=(--threads "${THREADS:-2}" --workers "${WORKERS:-1}")
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
[ -x "$CLI" ] || dotnet build src/AttnDistill.Cli -c Release -v q --nologo

# Most important first: (a) at every seed before (b), and so on, so a cut-short study still has
# whole comparisons.
ALL_ROWS="a-strong-features a-strong-attndistill a-weak-features a-weak-attndistill
          b-weak-max b-weak-mean b-weak-min
          c-lambda-0.005 c-lambda-0.3 c-lambda-0.5 c-T-5 c-T-20
          d-mse d-value-weighted d-all-blocks e-compress"
ROWS=${ROWS:-$ALL_ROWS}
CURVE_ROWS=" a-strong-features a-strong-attndistill a-weak-features a-weak-attndistill "

# evaluate CHECKPOINT RUN_DIR FIGURE_DIR: k-NN and the linear probe into RUN_DIR/{knn,linear}, copied to FIGURE_DIR.
evaluate() {
  local ckpt=$1 run=$2 fig=$3
  mkdir -p "$fig"
  [ -f "$run/knn/metrics.json" ] || "$CLI" knn --data "$DATA" --checkpoint "$ckpt" --image-size 28 --k 20 \
      --out "$run/knn" --feature-cache "$OUT/feature-cache" "${FLAGS[@]}" > "$run.knn.log" 2>&1 || { tail -3 "$run.knn.log"; return 1; }
  [ -f "$run/linear/metrics.json" ] || "$CLI" linear --config recipes/linear-probe-small.yaml --data "$DATA" --image-size 28 \
      --checkpoint "$ckpt" --out "$run/linear" --feature-cache "$OUT/feature-cache" "${FLAGS[@]}" > "$run.linear.log" 2>&1 || { tail -3 "$run.linear.log"; return 1; }
  cp "$run/knn/metrics.json" "$fig/knn.json"
  cp "$run/linear/metrics.json" "$fig/linear.json"
}

mkdir -p "$OUT" "$FIGURES"
[ -f "$FIGURES/pixels/linear.json" ] || evaluate pixels "$OUT/pixels" "$FIGURES/pixels"
[ -f "$FIGURES/teacher/linear.json" ] || evaluate "$TEACHER" "$OUT/teacher" "$FIGURES/teacher"

for row in $ROWS; do
  for seed in $SEEDS; do
    fig=$FIGURES/$row/seed$seed
    [ -f "$fig/linear.json" ] && continue
    run=$OUT/$row/seed$seed
    cache=$OUT/cache/seed$seed
    case $row in d-value-weighted) cache+=-value ;; d-all-blocks) cache+=-all-blocks ;; esac
    extra=()
    [[ $CURVE_ROWS == *" $row "* ]] && extra=(--checkpoint-every 2 --checkpoint-hist 0)
    echo "$(date -u +%H:%M:%S) $row seed $seed"
    mkdir -p "$OUT/$row"
    if [ ! -f "$run/backbone.safetensors" ]; then
      "$CLI" distill --config "$RECIPE#$row" --data "$DATA" --teacher "$TEACHER" --seed "$seed" --out "$run" --resume \
          --teacher-cache "$cache" "${extra[@]}" "${FLAGS[@]}" > "$run.log" 2>&1 || { tail -5 "$run.log"; exit 1; }
    fi
    mkdir -p "$fig"
    if [ ${#extra[@]} -gt 0 ]; then
      # k-NN of every saved epoch: the curve that shows where the schedule stops paying.
      for ckpt in "$run"/checkpoint-*.ckpt; do
        name=$(basename "$ckpt" .ckpt)
        [ -f "$fig/curve-$name.json" ] && continue
        "$CLI" knn --data "$DATA" --checkpoint "$ckpt" --image-size 28 --k 20 --out "$run/curve/$name" --feature-cache none \
            "${FLAGS[@]}" > "$run/curve-$name.log" 2>&1 || { tail -3 "$run/curve-$name.log"; exit 1; }
        cp "$run/curve/$name/metrics.json" "$fig/curve-$name.json"
      done
    fi
    cp "$run/metrics.json" "$fig/distill.json"
    evaluate "$run/backbone.safetensors" "$run" "$fig"
  done
done
/usr/bin/env python3 scripts/science-tables.py "$FIGURES"
