#!/usr/bin/env bash
# The GPU check: run on a Linux box with an NVIDIA GPU, a Python PyTorch 2.10-2.11 (its libtorch
# .so files and headers), cmake and a C++ compiler; no network and no .NET SDK needed.
#
#   bash gpu-check.sh [--bundle FILE] [--work DIR] [--python PY] [--device cuda[:N]]
#       unpacks gpu-check-bundle.tar.gz (made by scripts/gpu-check-prepare.sh; default: next to
#       this script), builds TorchSharp 0.107's libLibTorchSharp.so against Python's libtorch,
#       installs it next to the app and runs `attndistill bench --suite device-check --device cuda`:
#       30 bf16 distillation steps ViT-S/16 -> ViT-T/16 at 224, batch 128 (first-step loss parts
#       against fp32 on the CPU), a k-NN pass, an ONNX export, images/s and the fraction of the
#       GPU's measured bf16 matmul FLOP/s. Budget: 10 minutes with the build.
#
#   bash gpu-check.sh --cpu --cli PATH [--work DIR]
#       no unpacking and no native build: runs the same check with --device cpu --small against an
#       already-built CLI (PATH: the attndistill executable, or attndistill.dll run with dotnet).
#       This is what the test suite runs.
#
# Every step is timed; a failing step prints one line naming it and the fix; exit 0 only if every
# check passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle="$here/gpu-check-bundle.tar.gz"
work="${TMPDIR:-/tmp}/attndistill-gpu-check"
python="python3"
device="cuda"
cpu_mode=0
cli=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --cpu) cpu_mode=1; device="cpu"; shift ;;
    --cli) cli="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "gpu-check: FAILED${step_name:+ at '$step_name'}: $*" >&2; print_times >&2; exit 1; }
step_names=(); step_secs=()
step() { step_name="$1"; step_start=$(date +%s.%N); echo "== $1"; }
done_step() {
  local s; s=$(awk -v a="$step_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  step_names+=("$step_name"); step_secs+=("$s"); echo "   $step_name: $s s"; step_name=""
}
print_times() {
  [ ${#step_names[@]} -gt 0 ] || return 0
  echo; echo "| step | seconds |"; echo "| --- | ---: |"
  for i in "${!step_names[@]}"; do echo "| ${step_names[$i]} | ${step_secs[$i]} |"; done
}
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 not found: $2"; }
need timeout "install coreutils."
need awk "install gawk or mawk."
mkdir -p "$work"

if [ "$cpu_mode" = 1 ]; then
  [ -n "$cli" ] || fail "--cpu needs --cli PATH (the built attndistill, or attndistill.dll)."
  [ -e "$cli" ] || fail "--cli $cli does not exist: build the CLI first (dotnet build -c Release)."
  if [[ "$cli" == *.dll ]]; then need dotnet "a .dll CLI runs with dotnet: install the .NET 10 runtime or pass the executable."; run_cli=(dotnet "$cli"); else run_cli=("$cli"); fi
  step "device check (cpu, small shapes)"
  rc=0
  timeout 300 "${run_cli[@]}" bench --suite device-check --device cpu --small --out "$work/check" --json "$work/device-check.json" || rc=$?
  done_step
  print_times
  [ "$rc" = 0 ] || fail "the device check exited $rc (its table above says which check)."
  exit 0
fi

# ---------------------------------------------------------------- GPU mode
step "preflight"
need tar "install tar."
need cmake "install cmake >= 3.18 (apt-get install cmake, or pip's cmake wheel)."
cxx="${CXX:-}"
if [ -z "$cxx" ]; then for c in c++ g++ clang++; do command -v "$c" >/dev/null 2>&1 && { cxx="$(command -v "$c")"; break; }; done; fi
[ -n "$cxx" ] || fail "no C++ compiler (c++, g++, clang++) found: install g++ or set CXX."
need "$python" "pass --python PATH to the Python that has PyTorch."
[ -f "$bundle" ] || fail "bundle $bundle not found: copy gpu-check-bundle.tar.gz next to this script or pass --bundle FILE."
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "   (no nvidia-smi; continuing)"
done_step

step "PyTorch"
info=$("$python" - <<'EOF'
import os, glob, torch
d = os.path.dirname(torch.__file__)
site = os.path.dirname(d)
nv = sorted(set(os.path.dirname(p) for p in glob.glob(os.path.join(site, "nvidia", "*", "lib", "*.so*"))))
print(torch.__version__)
print(torch.version.cuda or "")
print(int(torch.cuda.is_available()))
print(d)
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(":".join(nv))
print(torch.utils.cmake_prefix_path)
EOF
) || fail "$python cannot import torch: pass --python PATH to the Python that has PyTorch 2.10-2.11."
{ read -r tv; read -r tcuda; read -r tavail; read -r tdir; read -r tabi; read -r nvlibs; read -r tcmake; } <<<"$info"
echo "   torch $tv, CUDA ${tcuda:-none}, cuda.is_available() $tavail, $tdir (cmake prefix $tcmake), C++11 ABI $tabi"
case "$tv" in 2.10.*|2.11.*) ;; *) fail "torch $tv: TorchSharp 0.107's glue is written for libtorch 2.10 (2.11 accepted); install torch 2.10 or 2.11." ;; esac
[ -n "$tcuda" ] || fail "torch $tv is a CPU build (torch.version.cuda is None): install a CUDA build of torch."
[ "$tavail" = 1 ] || fail "PyTorch itself sees no GPU (torch.cuda.is_available() is False): check the NVIDIA driver and CUDA_VISIBLE_DEVICES."
[ -f "$tdir/lib/libtorch_cuda.so" ] || fail "$tdir/lib/libtorch_cuda.so missing: this torch install has no CUDA libtorch."
[ -d "$tdir/include/torch" ] || fail "$tdir/include/torch missing: this torch install ships no C++ headers."
done_step

step "unpack the bundle"
rm -rf "$work/bundle"; mkdir -p "$work/bundle"
tar -xzf "$bundle" -C "$work/bundle" || fail "cannot unpack $bundle: copy it again (truncated?)."
app="$work/bundle/app"
[ -x "$app/attndistill" ] || fail "the bundle has no app/attndistill: prepare it again with scripts/gpu-check-prepare.sh."
cat "$work/bundle/MANIFEST.txt" | sed 's/^/   /'
done_step

step "build libLibTorchSharp.so against torch $tv"
src="$work/bundle/LibTorchSharp"; build="$work/build"
rm -rf "$build"
timeout 120 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
  -DTORCH_DIR="$tdir" -DTORCH_CXX11_ABI="$tabi" >"$work/cmake-configure.log" 2>&1 \
  || { tail -15 "$work/cmake-configure.log" >&2; fail "cmake configure failed (log: $work/cmake-configure.log)."; }
jobs=$(nproc 2>/dev/null || echo 8)
timeout 420 cmake --build "$build" -j "$jobs" >"$work/cmake-build.log" 2>&1 \
  || { grep -m5 -E 'error|Error' "$work/cmake-build.log" >&2 || tail -15 "$work/cmake-build.log" >&2; fail "the native build failed or ran past 7 minutes (log: $work/cmake-build.log)."; }
so="$build/libLibTorchSharp.so"
[ -f "$so" ] || fail "the build made no $so (log: $work/cmake-build.log)."
done_step

step "install the glue where TorchSharp loads it"
# TorchSharp 0.107 (torch.cs, LoadNativeBackend): for CUDA it loads "torch_cuda" by name, then
# "LibTorchSharp" by name from the app folder (a self-contained app's native folder), then every
# P/Invoke binds to that library. So: the fresh glue in app/, and torch/lib plus the pip
# nvidia-* libraries (cuBLAS, cuDNN ... that libtorch_cuda opens by name) on LD_LIBRARY_PATH.
cp "$so" "$app/libLibTorchSharp.so"
export LD_LIBRARY_PATH="$tdir/lib${nvlibs:+:$nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd "$app/libLibTorchSharp.so" | awk '/not found/ { print $1 }' | paste -sd' ')
[ -z "$missing" ] || fail "libLibTorchSharp.so cannot resolve: $missing (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)."
ldd "$app/libLibTorchSharp.so" | grep -E 'libtorch_cuda|libc10_cuda|libtorch\.so' | sed 's/^/   /'
done_step

step "device check ($device)"
rc=0
# No .NET SDK here: the app carries its runtime. Invariant globalization: no libicu needed.
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 timeout 420 "$app/attndistill" bench --suite device-check --device "$device" \
  --out "$work/check" --json "$work/device-check.json" | tee "$work/device-check.txt" || rc=$?
done_step

step "ONNX Runtime on the exported student"
if "$python" -c 'import onnxruntime' 2>/dev/null && [ -f "$work/check/student.onnx" ]; then
  "$python" - "$work/check/student.onnx" <<'EOF' || echo "   onnxruntime could not run the export (see above)"
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
y = s.run(None, {i.name: x})[0]
print(f"   onnxruntime {ort.__version__}: output {list(y.shape)}, finite {bool(np.isfinite(y).all())}")
EOF
else
  echo "   skipped: no onnxruntime in $python (pip install onnxruntime to run it)"
fi
done_step

echo
echo "GPU check summary (torch $tv, CUDA $tcuda; full table above, also $work/device-check.txt)"
print_times
[ "$rc" = 0 ] || fail "the device check exited $rc (its table above says which check)."
echo "gpu-check: all checks ok"
