#!/usr/bin/env bash
# The CPU closed loop of docs/fidelity.md, end to end:
#   rlms profile (tiny, CPU, serving grid) -> rlms calibrate -> rlms simulate and rlms replay of
#   scenarios/fidelity-cpu.yaml -> rlms validate per batching policy (prints the tables).
#
#   scripts/fidelity-cpu.sh [OUT_DIR]        (default OUT_DIR: results/fidelity-cpu)
#
# Environment: RLMS (an rlms binary; default: build Release and use it), THREADS (ONNX Runtime intra-op threads for
# profile and replay, default 1), KV_MODE (how the profile runs its generation loops: serving, the replay engine
# itself (default), or shared, the plain GenAI-style loop; docs/fidelity.md compares the two), CALIBRATION (where the fitted calibration goes; default OUT_DIR/cpu-tiny-tp1.json,
# use calibration/cpu-tiny-tp1.json to refresh the shipped one), TOLERANCE (default 0.10), CLOCK (what profile and
# replay time with: cpu, the engine thread's CPU time (default; other processes' load does not count), or wall),
# RATE (arrival rate in req/s; default: chosen from the fresh calibration so that the simulated continuous-batching
# replica is BUSY busy, default 0.6, then scaled once by the busy fraction a 150-request replay at that rate measured
# — a CPU's speed is not known in advance, and near saturation a few percent of step error turns into tens of percent
# of queueing error, docs/fidelity.md).
# ROUNDS (default 3): how many times profile and replay are repeated, alternating (profile, replay, profile, replay, ...):
# the calibration is fitted from every profile (by the mean of repetitions taken round the grid) and each policy's
# replays are pooled by rlms validate. A shared machine's speed drifts by more than the 10% target over tens of seconds
# (docs/fidelity.md, "A drifting machine"); alternating the two spreads the drift over both sides. SEEDS: vary
# (default; round r replays and simulates the scenario's seed + r - 1, so that mean TTFT, which a few moments of a full
# batch decide, is compared over ROUNDS x 400 requests) or same (every round replays the scenario's seed: rlms validate
# then prints how far the repeats of one run are apart, the machine's noise floor).
# PROFILE: interleaved (default) or separate. interleaved: every replay also profiles the serving engine in its own
# idle moments (rlms replay --interleave-profile serving), and each policy's replay of each round is predicted from a
# calibration of its own interleaved profile (the profile and the replay then see the same minutes of a drifting
# machine) plus the engine's host work per iteration measured from the other rounds' replays of that policy
# (rlms calibrate --host-overhead). separate: the profiles are runs of their own between the replays, and one calibration from all of them
# prices every replay. Either way a separate profile is taken first, to choose the arrival rate.
# With PROFILE=interleaved each replay is predicted twice. At constant speed: from a calibration of its own interleaved
# profile, as above. With the machine's measured speed: from a calibration of the other replays' profiles, with this
# replay's machine speed over time from its own profile's visits priced against that calibration (profile-visits.parquet
# as cost_model.slowdown with reference: calibration, averaged into SLOWDOWN_WINDOW-second windows, default 2).
# SPEED (measured, the default, or constant) says which set of tables decides the exit status.
# Exit status: 0 when every policy is within tolerance on every metric of the tables that decide it (SPEED, with
# PROFILE=interleaved), 1 otherwise. With CLOCK=wall run it on a
# quiet machine: the replay then measures wall-clock time, and other processes on the cores show up as error.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/results/fidelity-cpu}" && cd "${1:-$root/results/fidelity-cpu}" && pwd)
threads=${THREADS:-1}
tolerance=${TOLERANCE:-0.10}
kv_mode=${KV_MODE:-serving}
clock=${CLOCK:-cpu}
busy_target=${BUSY:-0.6}
rounds=${ROUNDS:-3}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS: must be a positive whole number, got '$rounds'" >&2; exit 2; }
seeds=${SEEDS:-vary}
speed=${SPEED:-measured}
[[ "$speed" = constant || "$speed" = measured ]] || { echo "SPEED: must be constant or measured, got '$speed'" >&2; exit 2; }
slowdown_window=${SLOWDOWN_WINDOW:-2}
[[ "$slowdown_window" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "SLOWDOWN_WINDOW: must be a number of seconds >= 0, got '$slowdown_window'" >&2; exit 2; }
profile_mode=${PROFILE:-interleaved}
[[ "$profile_mode" = interleaved || "$profile_mode" = separate ]] || { echo "PROFILE: must be interleaved or separate, got '$profile_mode'" >&2; exit 2; }
[[ "$seeds" = vary || "$seeds" = same ]] || { echo "SEEDS: must be vary or same, got '$seeds'" >&2; exit 2; }
cal=${CALIBRATION:-$out/cpu-tiny-tp1.json}
[[ "$cal" = /* ]] || cal="$PWD/$cal"
rlms=${RLMS:-}
if [[ -z "$rlms" ]]; then
  echo "building rlms (Release)..." >&2
  dotnet build "$root/src/RLMServing.Cli" -c Release -v quiet -nologo >&2
  rlms="$root/src/RLMServing.Cli/bin/Release/net10.0/rlms"
fi
scenario="$root/scenarios/fidelity-cpu.yaml"
base_seed=$(sed -n 's/^seed: *\([0-9]*\).*/\1/p' "$scenario" | head -1)
seed_of() { [[ $seeds = vary ]] && echo $((base_seed + $1 - 1)) || echo "$base_seed"; }
echo "load before: $(uptime)"

# Round r writes profile, measured and simulated (round 1) or profile-r, measured-r and simulated-r.
suffix() { [[ $1 -eq 1 ]] && echo "" || echo "-$1"; }
profile() {
  "$rlms" profile --model tiny --device cpu --grid serving --groups generation --kv-mode "$kv_mode" --threads "$threads" --clock "$clock" \
    --out "$out/profile$(suffix "$1")" --no-progress 2>/dev/null
}
profile 1
"$rlms" calibrate "$out/profile" --gpu CPU --statistic mean --out "$cal"

# The arrival rate: RATE, or the rate at which the simulated continuous-batching replica is busy_target busy (a few
# proportional steps from the scenario's own rate; busy time grows with the rate, so they settle quickly).
rate=${RATE:-}
if [[ -z "$rate" ]]; then
  rate=$(sed -n 's/^ *arrival: *{ *process: *poisson, *rate: *\([0-9.]*\).*/\1/p' "$scenario" | head -1)
  for _ in 1 2 3 4; do
    "$rlms" simulate "$scenario" --set "cost_model.file=$cal" --set "workload.arrival.rate=$rate" \
      --out "$out/rate-probe" --quiet >/dev/null
    busy=$(sed -n 's/.*"gpu_busy_fraction": *\([0-9.eE+-]*\).*/\1/p' "$out/rate-probe/continuous/summary.json")
    rate=$(awk -v r="$rate" -v b="$busy" -v t="$busy_target" 'BEGIN { f = t / b; if (f < 0.4) f = 0.4; if (f > 2.5) f = 2.5; printf "%.2f", r * f }')
  done
  rm -rf "$out/rate-probe"
  echo "arrival rate from the profile: $rate req/s (continuous batching simulated ${busy:-?} busy before the last step; target $busy_target)"
  # A 15-s profile can catch the machine in a fast or slow spell (docs/fidelity.md, "A drifting machine"): check the
  # rate with a short replay of continuous batching and scale it once by the busy fraction the replay measured.
  "$rlms" replay "$scenario" --variant continuous --set "workload.requests=150" --set "cost_model.file=$cal" \
    --set "workload.arrival.rate=$rate" --threads "$threads" --clock "$clock" --out "$out/rate-replay" --quiet >/dev/null
  busy=$(sed -n 's/.*"gpu_busy_fraction": *\([0-9.eE+-]*\).*/\1/p' "$out/rate-replay/continuous/summary.json")
  rate=$(awk -v r="$rate" -v b="$busy" -v t="$busy_target" 'BEGIN { f = t / b; if (f < 0.5) f = 0.5; if (f > 2) f = 2; printf "%.2f", r * f }')
  rm -rf "$out/rate-replay"
  echo "arrival rate: $rate req/s (a 150-request replay at the profile's rate was ${busy} busy; target $busy_target)"
else
  echo "arrival rate: $rate req/s (RATE)"
fi

policies=(static continuous chunked_prefill)
profiles=()
interleave=()
[[ $profile_mode = interleaved ]] && interleave=(--interleave-profile serving)
for ((r = 1; r <= rounds; r++)); do
  if [[ $profile_mode = separate ]]; then
    [[ $r -gt 1 ]] && profile "$r"
    profiles+=("$out/profile$(suffix "$r")")
  fi
  echo "round $r of $rounds: replay (seed $(seed_of "$r"))"
  "$rlms" replay "$scenario" --set "seed=$(seed_of "$r")" --set "cost_model.file=$cal" --set "workload.arrival.rate=$rate" \
    --threads "$threads" --clock "$clock" "${interleave[@]}" --out "$out/measured$(suffix "$r")"
done

# predicted[policy] lists the simulated requests.parquet each round's replay of that policy is compared with.
declare -A predicted slowed
if [[ $profile_mode = separate ]]; then
  [[ $rounds -gt 1 ]] && "$rlms" calibrate "${profiles[@]}" --gpu CPU --statistic mean --out "$cal"
  simulated_rounds=$([[ $seeds = vary ]] && echo "$rounds" || echo 1)
  for ((r = 1; r <= simulated_rounds; r++)); do
    "$rlms" simulate "$scenario" --set "seed=$(seed_of "$r")" --set "cost_model.file=$cal" --set "workload.arrival.rate=$rate" \
      --out "$out/simulated$(suffix "$r")" --quiet >/dev/null
    for policy in "${policies[@]}"; do predicted[$policy]+=" $out/simulated$(suffix "$r")/$policy/requests.parquet"; done
  done
else
  # One calibration per replayed run, from the profile it took in its own idle moments, with the engine's host work
  # per iteration measured from the other replays of the same policy (the other rounds; with one round, the other
  # policies): never from the replay it will be compared with. The pooled calibration goes to $cal.
  all=()
  for ((r = 1; r <= rounds; r++)); do
    for policy in "${policies[@]}"; do
      run_dir="$out/measured$(suffix "$r")/$policy"
      all+=("$run_dir")
      others=()
      for ((o = 1; o <= rounds; o++)); do
        if [[ $rounds -gt 1 ]]; then
          [[ $o -ne $r ]] && others+=("$out/measured$(suffix "$o")/$policy")
        else
          for q in "${policies[@]}"; do [[ $q != "$policy" ]] && others+=("$out/measured/$q"); done
        fi
      done
      "$rlms" calibrate "$run_dir" --gpu CPU --statistic mean --host-overhead "$(IFS=,; echo "${others[*]}")" \
        --out "$run_dir/calibration.json" >/dev/null
      "$rlms" simulate "$scenario" --set "seed=$(seed_of "$r")" --set "cost_model.file=$run_dir/calibration.json" \
        --set "workload.arrival.rate=$rate" --out "$out/simulated$(suffix "$r")-$policy" --quiet >/dev/null
      predicted[$policy]+=" $out/simulated$(suffix "$r")-$policy/$policy/requests.parquet"
    done
  done
  # With the machine's measured speed: the cost model's shape from the profiles of every *other* replay (eight times
  # the profiling of one, so less sampling noise), and this replay's machine speed — its level and its swings — from
  # its own profile's visits, each priced against that calibration (cost_model.slowdown, reference: calibration). The
  # visits are profile work in the replay's idle moments, not the replay's iterations.
  for ((r = 1; r <= rounds; r++)); do
    for policy in "${policies[@]}"; do
      run_dir="$out/measured$(suffix "$r")/$policy"
      rest=()
      for other in "${all[@]}"; do [[ $other != "$run_dir" ]] && rest+=("$other"); done
      host=()
      for ((o = 1; o <= rounds; o++)); do [[ $o -ne $r ]] && host+=("$out/measured$(suffix "$o")/$policy"); done
      [[ $rounds -eq 1 ]] && host=("${rest[@]}")
      "$rlms" calibrate "${rest[@]}" --gpu CPU --statistic mean --host-overhead "$(IFS=,; echo "${host[*]}")" \
        --out "$run_dir/calibration-others.json" >/dev/null
      "$rlms" simulate "$scenario" --set "seed=$(seed_of "$r")" --set "cost_model.file=$run_dir/calibration-others.json" \
        --set "workload.arrival.rate=$rate" --set "cost_model.slowdown.file=$run_dir/profile-visits.parquet" \
        --set "cost_model.slowdown.reference=calibration" --set "cost_model.slowdown.window_s=$slowdown_window" \
        --out "$out/simulated$(suffix "$r")-$policy-speed" --quiet >/dev/null
      slowed[$policy]+=" $out/simulated$(suffix "$r")-$policy-speed/$policy/requests.parquet"
    done
  done
  "$rlms" calibrate "${all[@]}" --gpu CPU --statistic mean --host-overhead "$(IFS=,; echo "${all[*]}")" --out "$cal"
fi

status=0
compare() {   # compare TITLE PREDICTIONS-BY-POLICY-NAME COUNTS(yes|no)
  local -n by_policy=$2
  for policy in "${policies[@]}"; do
    echo
    echo "== $policy: replay (measured) vs simulate ($1) =="
    measured=()
    for ((r = 1; r <= rounds; r++)); do measured+=("$out/measured$(suffix "$r")/$policy/requests.parquet"); done
    # shellcheck disable=SC2086  # a list of paths without spaces, split on purpose
    if ! "$rlms" validate --measured "${measured[@]}" --predicted ${by_policy[$policy]} --tolerance "$tolerance"; then
      if [[ $3 = yes ]]; then status=1; fi
    fi
  done
}
if [[ $profile_mode = interleaved ]]; then
  echo
  echo "### at constant speed: each replay from its own interleaved profile's calibration"
  compare "predicted at the machine's average speed" predicted "$([[ $speed = constant ]] && echo yes || echo no)"
  echo
  echo "### with the machine's measured speed: the other replays' profiles' calibration, this replay's speed from its own profile's visits (${slowdown_window}-s windows)"
  compare "predicted with the measured speed" slowed "$([[ $speed = measured ]] && echo yes || echo no)"
else
  compare "predicted" predicted yes
fi
echo "load after: $(uptime)"
exit $status
