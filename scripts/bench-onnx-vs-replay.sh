#!/usr/bin/env bash
# rlms bench against rlms serve --engine onnx, validated against rlms replay of the same requests (not CI: the test
# ServeOnnxTests does the same with 8 requests and checks that every request pairs, not the latencies).
#
#   scripts/bench-onnx-vs-replay.sh [OUT_DIR]        (default OUT_DIR: results/bench-onnx-vs-replay)
#
# Environment: REQUESTS (default 40), RATE (Poisson arrivals per second, default 4), SEED (default 1), THREADS (ONNX
# Runtime intra-op threads for both engines, default 1), PORT (default 18001), TOLERANCE (rlms validate's, default
# 0.10), RLMS (an rlms binary; default: build Release and use it).
#
# The tiny model on the CPU. OUT_DIR/trace.csv holds REQUESTS arrivals at RATE, prompts of 8-48 tokens and outputs
# of 4-24 (half of them thinking), drawn from SEED; rlms serve --engine onnx serves it to rlms bench --dataset-name
# trace (its arrival times replayed, --ignore-eos so every request generates its trace length), then rlms replay runs
# the same trace through the same engine behind the simulator's scheduler, and rlms validate compares the two
# requests.parquet files request by request. Both are wall-clock runs: run it on a quiet machine.
# Exit status: rlms validate's (0 within TOLERANCE, 1 outside).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/results/bench-onnx-vs-replay}" && cd "${1:-$root/results/bench-onnx-vs-replay}" && pwd)
requests=${REQUESTS:-40}
rate=${RATE:-4}
seed=${SEED:-1}
threads=${THREADS:-1}
port=${PORT:-18001}
tolerance=${TOLERANCE:-0.10}
for v in requests seed threads port; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "${v^^}: must be a whole number, got '${!v}'" >&2; exit 2; }
done
[[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "RATE: must be a number (requests per second), got '$rate'" >&2; exit 2; }
rlms=${RLMS:-}
if [[ -z "$rlms" ]]; then
  echo "building rlms (Release)..." >&2
  dotnet build "$root/src/RLMServing.Cli" -c Release -v quiet -nologo >&2
  rlms="$root/src/RLMServing.Cli/bin/Release/net10.0/rlms"
fi

awk -v n="$requests" -v rate="$rate" -v seed="$seed" 'BEGIN {
  srand(seed); t = 0
  print "arrival_time_s,prompt_tokens,output_tokens,thinking_tokens"
  for (i = 0; i < n; i++) {
    if (i > 0) t += -log(1 - rand()) / rate
    prompt = 8 + int(rand() * 41); output = 4 + int(rand() * 21)
    printf "%.6f,%d,%d,%d\n", t, prompt, output, int(output / 2)
  }
}' > "$out/trace.csv"
cat > "$out/scenario.yaml" <<EOF
name: bench-onnx-vs-replay
seed: $seed
hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
model: tiny
cost_model: { kind: roofline }
kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
workload: { trace: $out/trace.csv, format: csv }
scheduler: { batching: continuous, max_num_seqs: 4, max_num_batched_tokens: 128 }
EOF

echo "load before: $(uptime)"
"$rlms" serve "$out/scenario.yaml" --engine onnx --threads "$threads" --max-model-len 128 --port "$port" \
  --record-dir "$out/served" >"$out/serve.log" 2>&1 &
server=$!
stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  wait "$server" 2>/dev/null || true
}
trap stop_server EXIT
# The ready check waits for the server to listen (and to warm its engine up) with a short request of its own.
"$rlms" bench --port "$port" --model tiny --dataset-name trace --dataset-path "$out/trace.csv" --num-prompts "$requests" \
  --ignore-eos --ready-check-timeout-sec 120 --result-dir "$out/bench" --quiet
stop_server
trap - EXIT
"$rlms" replay "$out/scenario.yaml" --out "$out/replay" --threads "$threads" --quiet
echo "load after: $(uptime)"
"$rlms" validate --measured "$out/bench/requests.parquet" --predicted "$out/replay/requests.parquet" --tolerance "$tolerance"
