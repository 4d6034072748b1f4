#!/usr/bin/env bash
# k-NN (k 20, DINO's protocol) of every teacher snapshot of a pretrain-dino run folder, then the
# linear probe of its final teacher, with the pixel floor measured in the same call. Resumable: a
# snapshot whose knn/ folder holds metrics.json is not evaluated again.
# Usage: scripts/dino-teacher-curve.sh RUN_DIR [DATA] [IMAGE_SIZE]
#   e.g. scripts/dino-teacher-curve.sh runs/fashion-mnist-dino /usr/share/datasets/fashion-mnist 28
# Prints one Markdown table row per snapshot: name, k-NN top-1, then the floor and the linear probe.
set -euo pipefail
run=${1:?usage: $0 RUN_DIR [DATA] [IMAGE_SIZE]}
data=${2:-/usr/share/datasets/fashion-mnist}
size=${3:-28}
cli=${CLI:-src/AttnDistill.Cli/bin/Release/net10.0/attndistill}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
top1() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(next(r['top1'] for r in m['knn'] if r['k']==20))" "$1"; }
eval_knn() {  # checkpoint, output folder
  [ -f "$2/metrics.json" ] || "$cli" knn --checkpoint "$1" --data "$data" --image-size "$size" --k 20 --out "$2" --feature-cache none > "$2.log" 2>&1 || { tail -3 "$2.log"; return 1; }
  top1 "$2/metrics.json"
}
mkdir -p "$run/curve"
echo "| snapshot | k-NN top-1 (%) |"
echo "| --- | ---: |"
echo "| pixels (floor) | $(eval_knn pixels "$run/curve/pixels") |"
for ckpt in "$run"/teacher-init.safetensors "$run"/teacher-[0-9]*.safetensors; do
  [ -f "$ckpt" ] || continue
  name=$(basename "$ckpt" .safetensors)
  echo "| $name | $(eval_knn "$ckpt" "$run/curve/$name") |"
done
if [ -f "$run/teacher.safetensors" ] && [ "${LINEAR:-1}" = 1 ]; then
  out="$run/curve/linear-final"
  [ -f "$out/metrics.json" ] || "$cli" linear --checkpoint "$run/teacher.safetensors" --data "$data" --image-size "$size" --cached-features true \
      --epochs 30 --warmup-epochs 3 --batch-size 256 --sweep 1,3,10,30 --out "$out" > "$out.log" 2>&1 || { tail -3 "$out.log"; exit 1; }
  python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['linear']; print('linear probe of the final teacher: top-1', m['best']['top1'] if 'best' in m else m)" "$out/metrics.json"
fi
