#!/usr/bin/env bash
# Access control's cost (issue 7): the same load through llmproxy without auth, and with auth (1,000
# keys), per-key rate limits, the global rate limit and daily quotas on (none of them binding), in one
# run, next to direct and nginx. llmproxy bench, closed loop, non-streaming and streaming; ROUNDS
# rounds with the targets interleaved; medians and the ratio auth on / auth off.
# Needs a JDK 21+ and nginx (apt-get install -y nginx). About 6 minutes.
#
#   bench/auth.sh
#   ROUNDS=1 SECONDS_PER_RUN=5 bench/auth.sh   # a quicker look
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
CONCURRENCY="${CONCURRENCY:-32}"
BASE_PORT="${BASE_PORT:-18400}"
work="$(mktemp -d /tmp/llmproxy-auth.XXXXXX)"
SIM=$((BASE_PORT + 1)) NG=$((BASE_PORT + 2)) OFF=$((BASE_PORT + 3)) ON=$((BASE_PORT + 4))
KEY="sk-llmproxy-bench-0500"

command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx" >&2; exit 1; }
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
source bench/lib.sh

sim $SIM --ttft 0 --itl 0 --tokens 16
nginx_proxy $SIM:$NG

{
  echo "listen: \"127.0.0.1:$OFF\""
  echo "backends: [{url: \"http://127.0.0.1:$SIM\", name: sim}]"
} > "$work/off.yaml"
{
  echo "listen: \"127.0.0.1:$ON\""
  echo "backends: [{url: \"http://127.0.0.1:$SIM\", name: sim}]"
  echo "data_dir: \"$work/data\""
  echo "auth: {enabled: true, defaults: {quota_reset_period: daily, total_quota: 1000000000000}}"
  echo "rate_limit:"
  echo "  enabled: true"
  echo "  global: {requests_per_second: 10000000, burst_size: 10000000}"
  echo "  per_key: {requests_per_second: 1000000, requests_per_minute: 100000000, tokens_per_minute: 100000000000, max_concurrent: 100000}"
  echo "api_keys:"
  for i in $(seq -w 0001 1000); do echo "  - {key: \"sk-llmproxy-bench-$i\", name: \"team $i\", user_id: \"u$i\", allowed_models: [\"sim-*\"]}"; done
} > "$work/on.yaml"
bin/llmproxy --config "$work/off.yaml" > "$work/off.log" 2>&1 & pids+=($!)
bin/llmproxy --config "$work/on.yaml" > "$work/on.log" 2>&1 & pids+=($!)
wait_ready "http://127.0.0.1:$OFF/ready"; wait_ready "http://127.0.0.1:$ON/ready"; wait_ready "http://127.0.0.1:$NG/health"

url() { case $1 in direct) echo "http://127.0.0.1:$SIM";; nginx) echo "http://127.0.0.1:$NG";; off) echo "http://127.0.0.1:$OFF";; on) echo "http://127.0.0.1:$ON";; esac; }
f0() { awk -v v="$1" 'BEGIN {printf "%.0f", v}'; }
f2() { awk -v v="$1" 'BEGIN {printf "%.2f", v}'; }
bench() { bin/llmproxy bench --json --no-progress -c "$CONCURRENCY" --max-tokens 16 -H "Authorization: Bearer $KEY" "$@" 2>>"$work/bench-errors.log"; }
TARGETS="direct nginx off on"

log "warming up (JIT): 20 s through each gateway"
for t in off on; do bench --url "$(url $t)" -d 10s --warmup 0s > /dev/null; bench --url "$(url $t)" --stream -d 10s --warmup 0s > /dev/null; done
declare -A NS NS_P50 NS_ERR ST ST_P50 ST_ERR
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS"
  for t in $TARGETS; do
    j=$(bench --url "$(url $t)" -d ${SECONDS_PER_RUN}s --warmup 2s)
    NS[$t]+="$(f0 "$(jget "$j" "" requests_per_second)") "; NS_P50[$t]+="$(f2 "$(jget "$j" latency_ms p50)") "; NS_ERR[$t]+="$(jget "$j" "" errors) "
    j=$(bench --url "$(url $t)" --stream -d ${SECONDS_PER_RUN}s --warmup 2s)
    ST[$t]+="$(f0 "$(jget "$j" "" requests_per_second)") "; ST_P50[$t]+="$(f2 "$(jget "$j" ttft_ms p50)") "; ST_ERR[$t]+="$(jget "$j" "" errors) "
  done
done

echo
echo "# bench/auth.sh, $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds of ${SECONDS_PER_RUN}s, -c $CONCURRENCY, $(nproc) cores"
echo
echo "| | direct | nginx | llmproxy, auth off | llmproxy, auth + limits + quota on |"
echo "| --- | ---: | ---: | ---: | ---: |"
for m in NS NS_P50 NS_ERR ST ST_P50 ST_ERR; do
  case $m in NS) name="non-streaming req/s";; NS_P50) name="non-streaming latency p50 ms";; NS_ERR) name="non-streaming errors";;
    ST) name="streaming req/s";; ST_P50) name="streaming TTFT p50 ms";; ST_ERR) name="streaming errors";; esac
  printf "| %s | %s | %s | %s | %s |\n" "$name" "$(vals $m direct) ($(each $m direct))" "$(vals $m nginx) ($(each $m nginx))" \
    "$(vals $m off) ($(each $m off))" "$(vals $m on) ($(each $m on))"
done
echo
echo "auth on / auth off, median req/s: non-streaming $(ratio "$(vals NS on)" "$(vals NS off)" 3), streaming $(ratio "$(vals ST on)" "$(vals ST off)" 3)"
echo "usage recorded by the auth-on gateway: $(metric $ON 'llmproxy_requests_total{') requests"
echo "(logs in $work)"
