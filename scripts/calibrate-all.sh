#!/usr/bin/env bash
# Regenerates every shipped calibration in calibration/ from the traces in traces/ (docs/calibration.md).
# Run from the repository root. RLMS is the CLI to use (default: rlms on PATH), e.g.
#   RLMS="dotnet src/RLMServing.Cli/bin/Release/net10.0/rlms.dll" scripts/calibrate-all.sh
# Pass file name patterns to regenerate only some: scripts/calibrate-all.sh 'rtxpro6000-*'
set -euo pipefail
RLMS=${RLMS:-rlms}
only=("$@")

run() {  # run OUT-NAME ARGS...: calibrate into calibration/OUT-NAME.json unless filtered out
  local name=$1; shift
  if [ ${#only[@]} -gt 0 ]; then
    local hit=0; for p in "${only[@]}"; do [[ $name == $p ]] && hit=1; done
    [ $hit = 1 ] || return 0
  fi
  $RLMS calibrate "$@" --out "calibration/$name.json"
}

# Our own H200 generation-step captures (ONNX Runtime CUDA).
run h200-deepseek-r1-distill-qwen-7b-tp1 traces/h200/DeepSeek-R1-Distill-Qwen-7B --gpu H200-SXM-141G
run h200-deepseek-r1-distill-qwen-32b-tp1 traces/h200/DeepSeek-R1-Distill-Qwen-32B --gpu H200-SXM-141G
run h200-llama-3.1-8b-tp1 traces/h200/Llama-3.1-8B --gpu H200-SXM-141G

# Splitwise measured iterations (DGX-A100 / DGX-H100).
sw=traces/public/splitwise/splitwise-iterations.parquet
for dev in a100 h100; do
  for tp in 2 4 8; do
    run $dev-llama-2-70b-tp$tp $sw --trace-model llama2-70b --trace-device $dev-80gb --tp $tp --model Llama-2-70B
  done
  run $dev-bloom-176b-tp8 $sw --trace-model bloom-176b --trace-device $dev-80gb --tp 8 --model BLOOM-176B
done

# LLMServingSim operator bundle: RTX PRO 6000 Blackwell, Llama-3.1-8B bf16, vLLM 0.19 (TP2 = per-GPU shards).
for tp in 1 2; do
  run rtxpro6000-llama-3.1-8b-tp$tp traces/public/llmservingsim/rtxpro6000-llama-3.1-8b-bf16.parquet --tp $tp --model Llama-3.1-8B
done

# DistServe's fitted coefficients (A100-80GB, DistServe engine).
for tp in 1 2 4; do
  run a100-opt-13b-tp$tp traces/public/distserve/distserve-coefficients.parquet --trace-model facebook/opt-13b --tp $tp --engine distserve
done

# Vidur operator profiles (sarathi-serve profiler): per-layer linear ops measured, NCCL all-reduce measured on
# DGX nodes, attention and lm_head from the roofline (not in the shared data). TP degrees whose weights do not fit
# the GPUs (70B-class models at TP1) are left out. Llama-2-70B also has Splitwise calibrations: suffix -vidur.
vd=traces/public/vidur/vidur-operators.parquet
vidur() {  # vidur GPU HF-ID FILE-SLUG TP...
  local dev=$1 hf=$2 slug=$3; shift 3
  for tp in "$@"; do run $dev-$slug-tp$tp $vd --trace-model $hf --trace-device $dev --tp $tp; done
}
for dev in a100 h100; do
  vidur $dev microsoft/phi-2 phi-2 1
  vidur $dev meta-llama/Llama-2-7b-hf llama-2-7b 1 2 4 8
  vidur $dev internlm/internlm-20b internlm-20b 1 2 4 8
  vidur $dev codellama/CodeLlama-34b-Instruct-hf codellama-34b-instruct 1 2 4 8
  vidur $dev Qwen/Qwen-72B qwen-72b 2 4 8
  for tp in 2 4 8; do run $dev-llama-2-70b-tp$tp-vidur $vd --trace-model meta-llama/Llama-2-70b-hf --trace-device $dev --tp $tp; done
done
vidur a100 meta-llama/Meta-Llama-3-8B llama-3-8b 1 2 4 8
vidur a100 meta-llama/Meta-Llama-3-70B llama-3-70b 2 4 8
