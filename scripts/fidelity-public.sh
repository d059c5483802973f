#!/usr/bin/env bash
# Regenerates docs/fidelity.md's table "Public real runs": every public measured run the project can predict,
# predicted from its scenario (scenarios/validation/) with `rlms validate --measured RUN --scenario S`, beside the
# error the run's own anchor published. Prints the Markdown table on stdout.
# Run from the repository root. RLMS is the CLI to use (default: rlms on PATH), e.g.
#   RLMS="dotnet src/RLMServing.Cli/bin/Release/net10.0/rlms.dll" scripts/fidelity-public.sh
# Needs jq. The runs were imported with `rlms trace import RUN --format llmservingsim-run|distserve-run --out DIR`
# (traces/public/*/runs/*/README or docs/fidelity.md say from where).
set -euo pipefail
RLMS=${RLMS:-rlms}
command -v jq >/dev/null || { echo "fidelity-public.sh needs jq (apt-get install jq)" >&2; exit 2; }

pct() { jq -r "$1 // \"-\"" | awk '{ if ($1 == "-") printf "-"; else printf "%+.1f%%", $1 * 100 }'; }

row() {  # row NAME RUN SCENARIO ANCHOR
  local name=$1 run=$2 scenario=$3 anchor=$4 json cells=""
  json=$($RLMS validate --measured "$run" --scenario "$scenario" --json) || true
  [ -n "$json" ] || { echo "validate printed nothing for $run" >&2; exit 1; }
  for m in ttft tpot e2el; do
    cells+=" $(pct ".$m.mean_error" <<<"$json") / $(pct ".$m.p50_error" <<<"$json") / $(pct ".$m.p90_error" <<<"$json") |"
  done
  echo "| $name | \`rlms validate --measured $run --scenario $scenario\` |$cells $anchor |"
}

echo "| run | command | TTFT mean / p50 / p90 | TPOT mean / p50 / p90 | E2E mean / p50 / p90 | anchor's own error (mean TTFT / TPOT / E2E) |"
echo "|---|---|---|---|---|---|"
row "LLMServingSim: vLLM 0.19.0, RTX PRO 6000, Llama-3.1-8B TP1, 300 ShareGPT requests at ~10 req/s" \
  traces/public/llmservingsim/runs/rtxpro6000-llama-3.1-8b scenarios/validation/rtxpro6000-llama-3.1-8b-vllm019.yaml \
  "LLMServingSim −4.0% / −1.0% / −1.8% (p50 −8.6% / −0.0% / −1.2%; p90 −4.4% / +0.5% / −1.8%; its validation/summary.txt)"
for r in 100-1 300-3; do
  row "DistServe: vLLM 0.2.3, A100-80GB, OPT-13B TP1, ShareGPT vllm-$r" \
    traces/public/distserve/runs/opt-13b-sharegpt-vllm-$r scenarios/validation/a100-opt-13b-distserve-vllm-$r.yaml \
    "— (DistServe's paper checks its simulator on SLO attainment, not on latency)"
done
