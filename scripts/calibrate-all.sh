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

# LLMServingSim operator bundles (vLLM 0.19 eager kernels; TP2 = per-GPU shards): the per-layer tables are kept in
# the calibration and composed per iteration as LLMServingSim's simulator does.
ls=traces/public/llmservingsim
for tp in 1 2; do
  run rtxpro6000-llama-3.1-8b-tp$tp $ls/rtxpro6000-llama-3.1-8b-bf16.parquet --tp $tp --model Llama-3.1-8B
  run rtxpro6000-qwen3-32b-tp$tp $ls/rtxpro6000-qwen3-32b-bf16.parquet --tp $tp --model Qwen3-32B
  run rtxpro6000-qwen3-30b-a3b-instruct-2507-tp$tp $ls/rtxpro6000-qwen3-30b-a3b-instruct-2507-bf16.parquet --tp $tp --model Qwen3-30B-A3B-Instruct-2507
done
run rtx4090-llama-3.1-8b-tp1 $ls/rtx4090-llama-3.1-8b-bf16.parquet --tp 1 --model Llama-3.1-8B --gpu RTX4090
# LLMServingSim's older v0 layer profiles on H100 (vLLM V0, PyTorch profiler; prefill attention only: decode
# attention from the roofline).
for tp in 1 2; do
  run h100-llama-3.1-8b-tp$tp $ls/h100-llama-3.1-8b-v0.parquet --tp $tp --model Llama-3.1-8B --gpu H100-SXM-80G
done
for tp in 1 2 4; do
  run h100-mixtral-8x7b-v0.1-tp$tp $ls/h100-mixtral-8x7b-v0.1-v0.parquet --tp $tp --model Mixtral-8x7B-v0.1 --gpu H100-SXM-80G
done

# DistServe's fitted coefficients (A100-80GB): its own engine, and the vLLM it measured beside it (-vllm).
for tp in 1 2 4; do
  run a100-opt-13b-tp$tp traces/public/distserve/distserve-coefficients.parquet --trace-model facebook/opt-13b --tp $tp --engine distserve
  run a100-opt-13b-tp$tp-vllm traces/public/distserve/distserve-coefficients.parquet --trace-model facebook/opt-13b --tp $tp --engine vllm
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
