#!/usr/bin/env bash
# Builds the GPU flavour of rlms (self-contained linux-x64, Release, ONNX Runtime CUDA 13 via -p:OrtGpu=true) and
# packs it for machines that cannot build .NET or reach the network: two xz archives split into pieces small enough
# to carry one per call (default 50 MiB: the remote-run tool carries at most 64 MiB per call, and that includes the
# checkout itself, so leave room for the repository; PIECE_MB changes it).
#
#   scripts/gpu-package.sh [OUT_DIR]          (default OUT_DIR: gpu-pkg/, git-ignored)
#
#   OUT_DIR/native-part-aa, -ab, ...   ONNX Runtime's native libraries (about 185 MB compressed; rebuilt only
#                                      when the libraries change)
#   OUT_DIR/app-part-aa, ...           the .NET runtime, rlms and its managed dependencies, catalog, scripts
#   OUT_DIR/MANIFEST                   piece names, sizes and sha256; what scripts/gpu-run-on-device.sh checks
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/gpu-pkg}" && cd "${1:-$root/gpu-pkg}" && pwd)
piece_mb=${PIECE_MB:-50}
ort_gpu=${ORT_GPU:-true}   # ORT_GPU=false packs the CPU build the same way (to rehearse the flow without a GPU)
threads=${XZ_THREADS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "publishing rlms (Release, linux-x64, self-contained, OrtGpu=$ort_gpu)..." >&2
dotnet publish "$root/src/RLMServing.Cli/RLMServing.Cli.csproj" -c Release -r linux-x64 --self-contained true \
  -p:OrtGpu="$ort_gpu" -p:PublishReadyToRun=false -p:TieredCompilation=false --artifacts-path "$work/artifacts" -o "$work/rlms" -v quiet -nologo >&2
natives=(libonnxruntime.so libonnxruntime_providers_shared.so)
[[ "$ort_gpu" == true ]] && natives+=(libonnxruntime_providers_cuda.so)
for lib in "${natives[@]}"; do
  [[ -f "$work/rlms/$lib" ]] || { echo "error: $lib missing from the publish output; is -p:OrtGpu=true honoured?" >&2; exit 1; }
done
rm -f "$work/rlms/libonnxruntime_providers_tensorrt.so"   # TensorRT is not used; saves a dependency on libnvinfer
mkdir -p "$work/rlms/scripts"
cp "$root/scripts/gpu-run-on-device.sh" "$work/rlms/scripts/"

# Native libraries: recompress only when they changed (xz -9 of 317 MB takes minutes on two cores); the archive is
# cached in OUT_DIR/.cache and re-split each time, so PIECE_MB can change without recompressing.
native_sum=$(cd "$work/rlms" && sha256sum "${natives[@]}" | sha256sum | cut -d' ' -f1)
cache="$out/.cache"
mkdir -p "$cache"
if [[ -f "$cache/native.libs.sha256" && "$(cat "$cache/native.libs.sha256")" == "$native_sum" && -f "$cache/native.tar.xz" ]]; then
  echo "native libraries unchanged; reusing $cache/native.tar.xz" >&2
else
  echo "compressing native libraries (xz -9, $threads threads)..." >&2
  rm -f "$cache/native.libs.sha256"
  tar -C "$work/rlms" -cf - "${natives[@]}" | xz -T"$threads" -9 > "$cache/native.tar.xz.tmp"
  mv "$cache/native.tar.xz.tmp" "$cache/native.tar.xz"
  echo "$native_sum" > "$cache/native.libs.sha256"
fi
rm -f "$out"/native-part-*
split -b "${piece_mb}M" "$cache/native.tar.xz" "$out/native-part-"

echo "compressing the application..." >&2
rm -f "$out"/app-part-*
(cd "$work/rlms" && find . -type f -printf '%P\n' | grep -vxF -f <(printf '%s\n' "${natives[@]}") | sort > "$work/app.files")
tar -C "$work/rlms" -cf - -T "$work/app.files" | xz -T"$threads" -9 | split -b "${piece_mb}M" - "$out/app-part-"

(cd "$out" && {
  echo "# rlms GPU package: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# name bytes sha256"
  for f in native-part-* app-part-*; do echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"; done
} > MANIFEST)
cat "$out/MANIFEST" >&2
echo "pieces in $out" >&2
