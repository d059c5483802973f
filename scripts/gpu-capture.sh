#!/usr/bin/env bash
# One-command GPU capture on a Linux GPU box with the .NET SDK: publishes the self-contained CUDA build of rlms
# (-p:OrtGpu=true, ONNX Runtime 1.31 for CUDA 13), then runs the standard grid for a model and writes the traces
# to traces/<gpu>/<model>/. Fails clearly when no CUDA device or library is found.
#
#   scripts/gpu-capture.sh [MODEL] [GRID]         (defaults: DeepSeek-R1-Distill-Qwen-7B standard)
#   env: GEN_LAYERS (0 = all layers), TIMEOUT_S (1800), DEVICE (cuda), DTYPE (fp16)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=${1:-DeepSeek-R1-Distill-Qwen-7B}
grid=${2:-standard}
bin="$root/artifacts/rlms-gpu"
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || { echo "error: no NVIDIA GPU visible (nvidia-smi)" >&2; exit 4; }
echo "publishing the CUDA build of rlms into $bin ..." >&2
dotnet publish "$root/src/RLMServing.Cli/RLMServing.Cli.csproj" -c Release -r linux-x64 --self-contained true -p:OrtGpu=true \
  -p:PublishReadyToRun=false -p:TieredCompilation=false --artifacts-path "$root/artifacts/gpu-build" -o "$bin" -v quiet -nologo
cd "$root"
exec "$root/scripts/gpu-run-on-device.sh" --bin "$bin" --model "$model" --grid "$grid" --device "${DEVICE:-cuda}" \
  --timeout "${TIMEOUT_S:-1800}" --gen-layers "${GEN_LAYERS:-0}" --out "$root" --no-tiny -- --dtype "${DTYPE:-fp16}"
