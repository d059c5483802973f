#!/usr/bin/env bash
# Soak test of rlms serve (not CI): the digital twin at time scale 1 in a process of its own, driven by rlms bench with
# STREAMS concurrent streams for DURATION seconds, its resident memory read from /proc every INTERVAL seconds.
#
#   scripts/soak-serve.sh [OUT_DIR]        (default OUT_DIR: results/soak-serve)
#
# Environment: DURATION (seconds of load, default 600), STREAMS (rlms bench --max-concurrency, default 500),
# ROUND (requests per rlms bench run, default 4000: the load is rounds of rlms bench, one after another, until
# DURATION has passed, so each round's files can be checked and thrown away), INTERVAL (seconds between RSS samples,
# default 5), PORT (default 18000), RLMS (an rlms binary; default: build Release and use it), SLOPE_LIMIT (MB per
# minute: the largest RSS slope over the second half that still counts as flat, default 1).
#
# Every round sends ROUND streamed chat requests (256-token prompts, 300 tokens each with ignore_eos) with
# --request-rate inf, so STREAMS are open at once for the whole round. Writes OUT_DIR/rss.csv (t_s, rss_mb, round),
# OUT_DIR/rounds.csv (round, start_s, end_s, requests, completed, failed, not_sent, mean_ttft_ms, mean_tpot_ms) and
# OUT_DIR/verdict.txt. The RSS slope is a least-squares line through the samples of the second half of the run (the
# first half holds the warm-up: JIT, pools, the GC finding its heap size).
# Exit status: 0 when every request of every round is a completed row and the slope is within SLOPE_LIMIT, 1 otherwise.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/results/soak-serve}" && cd "${1:-$root/results/soak-serve}" && pwd)
duration=${DURATION:-600}
streams=${STREAMS:-500}
round_size=${ROUND:-4000}
interval=${INTERVAL:-5}
port=${PORT:-18000}
slope_limit=${SLOPE_LIMIT:-1}
for v in duration streams round_size interval port; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "${v^^}: must be a positive whole number, got '${!v}'" >&2; exit 2; }
done
[[ $slope_limit =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "SLOPE_LIMIT: must be a number (MB per minute), got '$slope_limit'" >&2; exit 2; }
rlms=${RLMS:-}
if [[ -z "$rlms" ]]; then
  echo "building rlms (Release)..." >&2
  dotnet build "$root/src/RLMServing.Cli" -c Release -v quiet -nologo >&2
  rlms="$root/src/RLMServing.Cli/bin/Release/net10.0/rlms"
fi

cat > "$out/scenario.yaml" <<'EOF'
name: soak-serve
seed: 7
hardware: { gpu: H100-SXM-80G, replicas: 1, tensor_parallel: 1 }
model: DeepSeek-R1-Distill-Qwen-7B
cost_model: { kind: roofline }
workload:
  requests: 100
  arrival: { process: poisson, rate: 1 }
  prompt_tokens: { dist: constant, value: 256 }
  thinking_tokens: { dist: uniform, min: 100, max: 400 }
  answer_tokens: { dist: uniform, min: 20, max: 100 }
scheduler: { batching: continuous, max_num_seqs: 256, max_num_batched_tokens: 8192, queue: fcfs, preemption: recompute }
kv_cache: { block_size: 16, gpu_memory_utilization: 0.9 }
EOF

echo "load before: $(uptime)"
"$rlms" serve "$out/scenario.yaml" --engine twin --port "$port" --max-waiting $((streams * 2)) >"$out/serve.log" 2>&1 &
server=$!
sampler=
cleanup() {
  [[ -n $sampler ]] && kill "$sampler" 2>/dev/null || true
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
}
trap cleanup EXIT

start=$(date +%s.%N)
now() { awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
echo "t_s,rss_mb,round" > "$out/rss.csv"
echo 0 > "$out/.round"
(
  while kill -0 "$server" 2>/dev/null; do
    rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server/status" 2>/dev/null || true)
    [[ -n $rss_kb ]] && echo "$(now),$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }'),$(cat "$out/.round")" >> "$out/rss.csv"
    sleep "$interval"
  done
) &
sampler=$!

echo "round,start_s,end_s,requests,completed,failed,not_sent,mean_ttft_ms,mean_tpot_ms" > "$out/rounds.csv"
round=0 lost=0
while awk -v t="$(now)" -v d="$duration" 'BEGIN { exit !(t < d) }'; do
  round=$((round + 1))
  echo "$round" > "$out/.round"
  t0=$(now)
  dir="$out/round-$round"
  # The first round's ready check waits for the server to listen.
  "$rlms" bench --port "$port" --model DeepSeek-R1-Distill-Qwen-7B --dataset-name random --input-len 256 --output-len 300 \
    --ignore-eos --num-prompts "$round_size" --max-concurrency "$streams" --request-rate inf --seed "$round" \
    --ready-check-timeout-sec 120 --result-dir "$dir" --quiet >"$dir.log" 2>&1 || { echo "round $round: rlms bench failed, see $dir.log" >&2; lost=1; break; }
  line=$(jq -r --arg r "$round" --arg t0 "$t0" --arg t1 "$(now)" \
    '[$r, $t0, $t1, (.completed + .failed), .completed, .failed, .not_sent, .mean_ttft_ms, .mean_tpot_ms] | map(tostring) | join(",")' "$dir/summary.json")
  echo "$line" >> "$out/rounds.csv"
  echo "round $round: $line"
  IFS=, read -r _ _ _ requests completed _ not_sent _ _ <<< "$line"
  [[ $requests -eq $round_size && $completed -eq $round_size && $not_sent -eq 0 ]] || lost=1
  rm -rf "$dir"
done
elapsed=$(now)
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=
rm -f "$out/.round"

# Least-squares slope of RSS against time over the samples of the second half, in MB per minute, with its standard
# error (samples taken a few seconds apart are not independent: the GC's sawtooth makes the error an underestimate),
# and each round's peak RSS, so a trend across rounds can be told from the sawtooth within them.
verdict=$(awk -F, -v half="$(awk -v e="$elapsed" 'BEGIN { print e / 2 }')" -v limit="$slope_limit" -v lost="$lost" '
  NR == 1 { next }
  NR == 2 { first = $2 }
  { last = $2; if ($2 > peak) peak = $2; if (!($3 in rp) || $2 > rp[$3]) rp[$3] = $2; if ($3 > rounds) rounds = $3 }
  $1 >= half { n++; x[n] = $1; y[n] = $2 }
  END {
    if (n < 3) { print "too few samples in the second half (" n "): run longer or sample more often (INTERVAL)"; exit }
    for (i = 1; i <= n; i++) { mx += x[i] / n; my += y[i] / n }
    for (i = 1; i <= n; i++) { sxx += (x[i] - mx) ^ 2; sxy += (x[i] - mx) * (y[i] - my) }
    b = sxy / sxx
    for (i = 1; i <= n; i++) ssr += (y[i] - my - b * (x[i] - mx)) ^ 2
    se = sqrt(ssr / (n - 2) / sxx) * 60
    slope = b * 60
    printf "RSS %.1f MB at the first sample, %.1f MB at half time, %.1f MB at the end, peak %.1f MB; per-round peaks", first, y[1], last, peak
    for (r = 1; r <= rounds; r++) printf " %.1f", rp[r]
    printf " MB; slope over the second half %+.2f +- %.2f MB/min (%d samples; flat means <= %s MB/min): %s; ", slope, se, n, limit, slope <= limit ? "FLAT" : "GROWING"
    printf "%s\n", lost ? "REQUESTS LOST OR FAILED (see rounds.csv)" : "every request a completed row"
  }' "$out/rss.csv")
total=$(awk -F, 'NR > 1 { r += $4; c += $5 } END { printf "%d requests in %d rounds, %d completed", r, NR - 1, c }' "$out/rounds.csv")
{
  echo "soak: rlms serve --engine twin, $streams concurrent streams, $(printf '%.0f' "$elapsed") s: $total"
  echo "$verdict"
  echo "load after: $(uptime)"
} | tee "$out/verdict.txt"
cleanup
trap - EXIT
grep -q "FLAT; every request" "$out/verdict.txt"
