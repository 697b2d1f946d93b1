#!/usr/bin/env bash
# Hedging and latency-based routing (issue 6), in one run on one machine:
#  1. three simulated backends with a heavy tail (TTFT 80 ms +-20 ms, and 5% of requests 2 s more);
#     Poisson load at RATE requests/s for SECONDS through llmproxy with hedging off, then on;
#  2. three backends at TTFT 60, 120 and 250 ms, no tail: latency_based against weighted_round_robin.
# Prints TTFT percentiles, extra upstream attempts and wasted tokens. Needs a JDK 21+. About 5 minutes.
#
#   bench/hedge.sh
#   RATE=100 SECONDS_PER_RUN=60 bench/hedge.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
RATE="${RATE:-50}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-70}"
BASE_PORT="${BASE_PORT:-18300}"
work="$(mktemp -d /tmp/llmproxy-hedge.XXXXXX)"
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null

source bench/lib.sh
gateway() { # port strategy hedge(on|off) backend-ports...
  local port=$1 strategy=$2 hedge=$3; shift 3
  {
    echo "listen: \"127.0.0.1:$port\""
    echo "backends:"
    for b in "$@"; do echo "  - {url: \"http://127.0.0.1:$b\", name: \"b$b\"}"; done
    echo "load_balance_strategy: $strategy"
    echo "routing:"
    if [ "$hedge" = on ]; then
      echo "  hedge: {enabled: true, threshold: p92, min_threshold: 20ms, max_parallel: 2, budget_percent: 10, min_samples: 20}"
    fi
    echo "logging: {access_log: false}"
  } > "$work/gw-$port.yaml"
  bin/llmproxy --config "$work/gw-$port.yaml" > "$work/gw-$port.log" 2>&1 & pids+=($!)
  wait_ready "http://127.0.0.1:$port/ready"
}
bench() { bin/llmproxy bench --json --no-progress --url "http://127.0.0.1:$1" --stream --max-tokens 20 "${@:2}" 2>>"$work/bench-errors.log"; }
ms() { awk -v v="$(jget "$1" ttft_ms "$2")" 'BEGIN {printf "%.1f", v}'; }
row() { printf "| %-38s | %8s | %8s | %8s | %8s | %8s |\n" "$1" "$(ms "$2" p50)" "$(ms "$2" p90)" "$(ms "$2" p99)" \
  "$(ms "$2" p99_9)" "$(ms "$2" mean)"; }

T1=$((BASE_PORT + 1)) T2=$((BASE_PORT + 2)) T3=$((BASE_PORT + 3))
for p in $T1 $T2 $T3; do sim $p --ttft 80ms --jitter 20ms --tail-prob 0.05 --tail-ms 2000 --itl 10ms --tokens 20; done
OFF=$((BASE_PORT + 10)) ON=$((BASE_PORT + 11))
gateway $OFF weighted_round_robin off $T1 $T2 $T3
gateway $ON weighted_round_robin on $T1 $T2 $T3

log "1. heavy tail, hedging off then on: Poisson arrivals at $RATE/s for ${SECONDS_PER_RUN}s each"
bench $OFF --rate "$RATE" --poisson -c 200 -d 5s --warmup 0s > /dev/null   # JIT
bench $ON --rate "$RATE" --poisson -c 200 -d 10s --warmup 0s > /dev/null   # JIT and statistics
a0=$(metric $ON 'llmproxy_upstream_attempts_total{'); r0=$(metric $ON 'llmproxy_requests_total{')
w0p=$(metric $ON 'llmproxy_wasted_tokens_total{type="prompt"'); w0c=$(metric $ON 'llmproxy_wasted_tokens_total{type="completion"')
h0=$(metric $ON 'llmproxy_hedges_total{model="sim-model",outcome="sent"'); x0=$(metric $ON 'llmproxy_hedges_total{model="sim-model",outcome="budget_exhausted"')
off=$(bench $OFF --rate "$RATE" --poisson -c 200 -d ${SECONDS_PER_RUN}s --warmup 0s)
on=$(bench $ON --rate "$RATE" --poisson -c 200 -d ${SECONDS_PER_RUN}s --warmup 0s)
attempts=$(( $(metric $ON 'llmproxy_upstream_attempts_total{') - a0 )); requests=$(( $(metric $ON 'llmproxy_requests_total{') - r0 ))
wp=$(( $(metric $ON 'llmproxy_wasted_tokens_total{type="prompt"') - w0p )); wc=$(( $(metric $ON 'llmproxy_wasted_tokens_total{type="completion"') - w0c ))
hedges=$(( $(metric $ON 'llmproxy_hedges_total{model="sim-model",outcome="sent"') - h0 ))
exhausted=$(( $(metric $ON 'llmproxy_hedges_total{model="sim-model",outcome="budget_exhausted"') - x0 ))

log "2. backends at TTFT 60, 120, 250 ms: latency_based against weighted_round_robin"
L1=$((BASE_PORT + 4)) L2=$((BASE_PORT + 5)) L3=$((BASE_PORT + 6))
sim $L1 --ttft 60ms --itl 10ms --tokens 20; sim $L2 --ttft 120ms --itl 10ms --tokens 20; sim $L3 --ttft 250ms --itl 10ms --tokens 20
WRR=$((BASE_PORT + 12)) LAT=$((BASE_PORT + 13))
gateway $WRR weighted_round_robin off $L1 $L2 $L3
gateway $LAT latency_based off $L1 $L2 $L3
bench $LAT --rate "$RATE" --poisson -c 200 -d 5s --warmup 0s > /dev/null
wrr=$(bench $WRR --rate "$RATE" --poisson -c 200 -d 30s --warmup 0s)
lat=$(bench $LAT --rate "$RATE" --poisson -c 200 -d 30s --warmup 0s)

echo
echo "# bench/hedge.sh, $(date -u +%Y-%m-%dT%H:%MZ), $RATE requests/s (Poisson), $(nproc) cores"
echo
echo "| heavy tail, TTFT ms | p50 | p90 | p99 | p99.9 | mean |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
row "hedging off" "$off"
row "hedging on (threshold p92, 2 at most)" "$on"
echo
echo "requests: off $(jget "$off" "" requests), on $(jget "$on" "" requests); errors: off $(jget "$off" "" errors), on $(jget "$on" "" errors)"
echo "p99 off / on = $(ratio "$(jget "$off" ttft_ms p99)" "$(jget "$on" ttft_ms p99)" 1); p50 on / off = $(ratio "$(jget "$on" ttft_ms p50)" "$(jget "$off" ttft_ms p50)" 3)"
echo "hedging on: $requests requests, $attempts upstream attempts: $((attempts - requests)) extra ($(awk -v e=$((attempts - requests)) -v r=$requests 'BEGIN {printf "%.1f", 100*e/r}')%); hedges sent $hedges, refused by the budget $exhausted; wasted tokens: prompt $wp, completion $wc"
echo
echo "| TTFT 60/120/250 ms, TTFT ms | mean | p50 | p99 |"
echo "| --- | ---: | ---: | ---: |"
echo "| weighted_round_robin | $(ms "$wrr" mean) | $(ms "$wrr" p50) | $(ms "$wrr" p99) |"
echo "| latency_based | $(ms "$lat" mean) | $(ms "$lat" p50) | $(ms "$lat" p99) |"
echo "(logs in $work)"
