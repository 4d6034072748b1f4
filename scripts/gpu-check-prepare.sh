#!/usr/bin/env bash
# Prepares the GPU check on this (CPU, networked) machine: one compressed bundle to carry to a Linux
# box with an NVIDIA GPU and a Python PyTorch 2.10-2.11, no network and no .NET SDK.
#
#   scripts/gpu-check-prepare.sh [--torchsharp-src DIR] [--out DIR]
#
# The bundle (artifacts/gpu-check/gpu-check-bundle.tar.gz) holds:
#   app/             a self-contained `dotnet publish` of the CLI for linux-x64 built with
#                    -p:TorchBackend=none: the managed TorchSharp 0.107 only, no libtorch and no
#                    prebuilt libLibTorchSharp.so (gpu-check.sh builds it against the box's libtorch)
#   LibTorchSharp/   src/Native of TorchSharp 0.107.0 (the C++ glue TorchSharp P/Invokes into)
#   gpu-check.sh     the script to run there (bash gpu-check.sh, next to the bundle)
#   MANIFEST.txt     what was packed, from which commits
#
# --torchsharp-src DIR: a git directory of dotnet/TorchSharp (default: the mirror the project's
# tools fetch to, /work/.mirror/dotnet+TorchSharp/repo). TorchSharp's repository has no v0.107.0
# tag; the release is the commit "Update release notes (#1565)" whose build/BranchInfo.props says
# 0.107.0 and whose notes list every change of 0.107.0 (the exact check is below).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
ts_git="/work/.mirror/dotnet+TorchSharp/repo"
out="$repo/artifacts/gpu-check"
# The TorchSharp 0.107.0 release commit (see the header) and the version it must carry.
ts_commit="c20b6a1cc574d690707638a488d2583f3b8b983f"
ts_version="0.107.0"

while [ $# -gt 0 ]; do
  case "$1" in
    --torchsharp-src) ts_git="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu-check-prepare: unknown argument '$1' (use --torchsharp-src DIR, --out DIR)" >&2; exit 2 ;;
  esac
done

fail() { echo "gpu-check-prepare: $*" >&2; exit 1; }
step() { step_name="$1"; step_start=$(date +%s.%N); echo "== $1"; }
done_step() { awk -v n="$step_name" -v a="$step_start" -v b="$(date +%s.%N)" 'BEGIN { printf "   %s: %.1f s\n", n, b - a }'; }

command -v dotnet >/dev/null || fail "dotnet not found: install the .NET 10 SDK (global.json) to publish the CLI."
command -v git >/dev/null || fail "git not found: apt-get install git."
git --git-dir="$ts_git" cat-file -e "$ts_commit^{commit}" 2>/dev/null \
  || fail "TorchSharp commit $ts_commit not in $ts_git: fetch github:dotnet/TorchSharp (or pass --torchsharp-src DIR)."
got=$(git --git-dir="$ts_git" show "$ts_commit:build/BranchInfo.props" | sed -n 's:.*<\(Major\|Minor\|Patch\)Version>\([0-9]*\)<.*:\2:p' | paste -sd.)
[ "$got" = "$ts_version" ] || fail "TorchSharp commit $ts_commit says version $got, not $ts_version: pass the right --torchsharp-src."

stage="$out/stage"
rm -rf "$stage" "$out/src-copy"
mkdir -p "$stage/bundle" "$out"

step "copy the sources (a separate tree: TorchBackend=none restores other packages than the usual build)"
# Tracked and new files of the working tree, without build outputs.
(cd "$repo" && git ls-files -co --exclude-standard -- Directory.Build.props Directory.Build.targets global.json build src bench/reference) \
  | (cd "$repo" && tar -cf - -T -) | (mkdir -p "$out/src-copy" && tar -xf - -C "$out/src-copy")
done_step

step "dotnet publish (self-contained, linux-x64, TorchBackend=none)"
export OMP_WAIT_POLICY=PASSIVE
nice -n 10 dotnet publish "$out/src-copy/src/AttnDistill.Cli/AttnDistill.Cli.csproj" -c Release -r linux-x64 --self-contained \
  -p:TorchBackend=none -o "$stage/bundle/app" --nologo -v q >"$out/publish.log" 2>&1 \
  || { tail -20 "$out/publish.log" >&2; fail "dotnet publish failed (full log: $out/publish.log)."; }
[ -x "$stage/bundle/app/attndistill" ] || fail "the publish has no app/attndistill executable (see $out/publish.log)."
[ -f "$stage/bundle/app/TorchSharp.dll" ] || fail "the publish has no TorchSharp.dll (see $out/publish.log)."
if ls "$stage/bundle/app" | grep -Eq '^lib(torch|torch_cpu|c10)\.so'; then
  fail "the publish carries CPU libtorch natives: TorchBackend=none must reference the managed TorchSharp package only."
fi
# The prebuilt glue of the TorchSharp package was linked against the CPU libtorch of NuGet; the box
# builds its own. Leaving it out makes a missing build fail loudly instead of loading the wrong one.
rm -f "$stage/bundle/app/libLibTorchSharp.so"
done_step

step "TorchSharp $ts_version native sources (src/Native at $ts_commit)"
mkdir -p "$stage/bundle/LibTorchSharp"
git --git-dir="$ts_git" archive "$ts_commit" src/Native | tar -x -C "$stage/bundle/LibTorchSharp" --strip-components=2
[ -f "$stage/bundle/LibTorchSharp/LibTorchSharp/THSTorch.cpp" ] || fail "git archive gave no src/Native/LibTorchSharp/THSTorch.cpp."
# Our own build description (the upstream one needs TorchSharp's build tree and, through
# TorchConfig.cmake, a CUDA toolkit; the glue itself needs only libtorch's headers and libraries).
cp "$here/gpu-check/CMakeLists.txt" "$stage/bundle/LibTorchSharp/CMakeLists.txt"
cp "$here/gpu-check.sh" "$stage/bundle/gpu-check.sh"
{
  echo "attndistill GPU check bundle, prepared $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "project commit: $(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet HEAD -- src build Directory.Build.props Directory.Build.targets || echo ' (with uncommitted changes)')"
  echo "TorchSharp $ts_version: dotnet/TorchSharp $ts_commit, src/Native"
  echo "dotnet: $(dotnet --version), publish linux-x64 self-contained, TorchBackend=none"
} >"$stage/bundle/MANIFEST.txt"
done_step

step "compress"
bundle="$out/gpu-check-bundle.tar.gz"
tar -C "$stage/bundle" -czf "$bundle.tmp" .
mv "$bundle.tmp" "$bundle"
cp "$here/gpu-check.sh" "$out/gpu-check.sh"
rm -rf "$stage" "$out/src-copy"
done_step

size=$(stat -c %s "$bundle")
awk -v f="$bundle" -v s="$size" 'BEGIN { printf "bundle: %s (%.1f MB)\n", f, s / 1e6 }'
echo "carry $bundle and $out/gpu-check.sh to the GPU box, then run: bash gpu-check.sh   (next to the bundle)"
