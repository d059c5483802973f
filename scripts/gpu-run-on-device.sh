#!/usr/bin/env bash
# Runs a GPU capture on a machine with an NVIDIA GPU and CUDA 13 libraries but no .NET SDK and no network, from the
# pieces that scripts/gpu-package.sh made. Pieces may arrive over several calls: each call copies the pieces it finds
# in ./gpu-pkg (or --pieces DIR) into the stage folder, which persists while the machine stays up.
#
#   scripts/gpu-run-on-device.sh --stash                  copy the pieces present now into the stage; nothing else
#   scripts/gpu-run-on-device.sh [--model M] [--grid G] [--device cuda] [--timeout S] [--gen-layers N] [--no-tiny]
#                                [--out DIR] [--bin DIR] [-- extra rlms profile args]
#
# With all pieces staged (checked against MANIFEST) it unpacks them once, finds libcudart.so.13, libcublas.so.13,
# libcublasLt.so.13, libcurand.so.10 and cuDNN 9 (Python nvidia-* wheels or system CUDA), sets LD_LIBRARY_PATH,
# runs a `tiny` sanity profile and then the model's grid, each under a hard time limit, writing
# <out>/traces/<gpu>/<model>/ (out: $OUT when set, else the current folder).
# Exit codes: 0 ok; 2 bad arguments; 3 pieces missing; 4 no GPU or CUDA library; 5 the profile failed or timed out.
set -uo pipefail
stage=${RLMS_STAGE:-/tmp/rlms-pkg}
pieces=gpu-pkg
model=DeepSeek-R1-Distill-Qwen-7B
grid=standard
device=cuda
timeout_s=240
gen_layers=0
tiny=1
stash_only=0
bin=""
out_root=${OUT:-$PWD}
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stash) stash_only=1 ;;
    --stage) stage=$2; shift ;;
    --pieces) pieces=$2; shift ;;
    --model) model=$2; shift ;;
    --grid) grid=$2; shift ;;
    --device) device=$2; shift ;;
    --timeout) timeout_s=$2; shift ;;
    --gen-layers) gen_layers=$2; shift ;;
    --no-tiny) tiny=0 ;;
    --out) out_root=$2; shift ;;
    --bin) bin=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[gpu-run $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z "$bin" ]]; then
  mkdir -p "$stage"
  if [[ -d "$pieces" ]]; then
    for f in "$pieces"/native-part-* "$pieces"/app-part-* "$pieces"/MANIFEST; do
      [[ -f "$f" ]] || continue
      cp -f "$f" "$stage/" && log "staged $(basename "$f") ($(stat -c %s "$f") bytes)"
    done
  fi
  [[ $stash_only == 1 ]] && { ls -la "$stage" >&2; exit 0; }
  [[ -f "$stage/MANIFEST" ]] || { echo "error: $stage/MANIFEST missing; stage the pieces first (--stash)" >&2; exit 3; }
  missing=0
  while read -r name size sum; do
    [[ "$name" == \#* || -z "$name" ]] && continue
    if [[ ! -f "$stage/$name" ]]; then echo "error: piece $name not staged yet" >&2; missing=1; continue; fi
    [[ "$(stat -c %s "$stage/$name")" == "$size" ]] || { echo "error: piece $name has the wrong size" >&2; missing=1; }
  done < "$stage/MANIFEST"
  [[ $missing == 0 ]] || exit 3
  bin="$stage/rlms"
  if [[ ! -x "$bin/rlms" ]] || ! cmp -s "$stage/MANIFEST" "$bin/.unpacked"; then
    log "unpacking into $bin"
    rm -rf "$bin" && mkdir -p "$bin"
    if ! { cat "$stage"/native-part-* | xz -dc | tar -x -C "$bin" && cat "$stage"/app-part-* | xz -dc | tar -x -C "$bin"; }; then
      echo "error: unpacking failed (corrupt or incomplete pieces?)" >&2; exit 3
    fi
    chmod +x "$bin/rlms"
    cp "$stage/MANIFEST" "$bin/.unpacked"
  fi
fi
[[ -x "$bin/rlms" ]] || { echo "error: $bin/rlms not found" >&2; exit 3; }

if [[ "$device" == cuda* ]]; then
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "error: no NVIDIA GPU visible (nvidia-smi missing or failing); nothing to capture" >&2; exit 4
  fi
  # CUDA 13 user-space libraries: the Python nvidia-* wheels first (one quick look), then one pass over the system.
  libs=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9)
  roots=()
  for py in python3 python; do
    r=$("$py" -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null) && roots+=("$r") && break
  done
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do [[ -d $d ]] && roots+=("$d"); done
  listing=$( { for r in "${roots[@]}"; do find "$r" \( -name 'libcudart.so.13*' -o -name 'libcublas*.so.13*' -o -name 'libcurand.so.10*' -o -name 'libcudnn*.so.9*' \) 2>/dev/null; done; } )
  dirs=()
  for lib in "${libs[@]}"; do
    found=$(grep -m1 "/$lib" <<< "$listing")
    if [[ -z "$found" ]]; then
      log "$lib not under ${roots[*]:-(no python nvidia wheels)}; searching the whole file system"
      found=$(find / -xdev \( -path /proc -o -path /sys -o -path "$stage" \) -prune -o -name "$lib*" -print 2>/dev/null | head -1)
    fi
    if [[ -z "$found" ]]; then
      echo "error: $lib not found on this machine; install the CUDA 13 runtime, cuBLAS, cuRAND and cuDNN 9" >&2; exit 4
    fi
    dirs+=("$(dirname "$found")")
    log "$lib -> $found"
  done
  # cuDNN 9 loads its engine libraries (libcudnn_*.so.9) from its own folder, already on the path above.
  ldpath=$(printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++' | paste -sd: -)
  export LD_LIBRARY_PATH="$bin:$ldpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  unresolved=$(ldd "$bin/libonnxruntime_providers_cuda.so" 2>/dev/null | grep 'not found' || true)
  if [[ -n "$unresolved" ]]; then
    echo "error: the CUDA execution provider has unresolved libraries:" >&2; echo "$unresolved" >&2; exit 4
  fi
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader -i "${device#cuda:}" 2>/dev/null | head -1)
  [[ "$device" == cuda ]] && gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 | head -1)
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv >&2
else
  gpu=cpu
fi
slug=$(echo "$gpu" | tr '[:upper:]' '[:lower:]' | sed -E 's/^nvidia //; s/[^a-z0-9.]+/-/g; s/^-+|-+$//g')
status=0
run_profile() {
  local m=$1 g=$2 limit=$3; shift 3
  local dir="$out_root/traces/$slug/$m"
  mkdir -p "$dir"
  log "profile $m on $device ($g grid, limit ${limit}s) -> $dir"
  local start=$SECONDS
  timeout --signal=TERM --kill-after=20 "$limit" "$bin/rlms" profile --model "$m" --device "$device" --grid "$g" --out "$dir" --no-progress "$@" \
    > >(tee "$dir/profile.log") 2> >(tee "$dir/profile.err" >&2)
  local rc=$?
  log "profile $m finished with exit code $rc after $((SECONDS - start)) s"
  [[ $rc == 0 ]] || status=5
}
if [[ $tiny == 1 ]]; then
  run_profile tiny quick 90
fi
if [[ "$model" != none ]]; then
  run_profile "$model" "$grid" "$timeout_s" --gen-layers "$gen_layers" "${extra[@]}"
fi
ls -laR "$out_root/traces/$slug" >&2
exit $status
