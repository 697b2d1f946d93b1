#!/usr/bin/env bash
# The performance suite (docs/BENCHMARKS.md), in one run on one machine: simulated backends, then the
# same load direct to them, through nginx (keep-alive upstream, proxy_buffering off) and through
# llmproxy (plain routing, access log on, as shipped). Scenarios, each repeated ROUNDS times with the
# three targets interleaved; medians and ratios at the end:
#   (a) non-streaming max throughput, closed loop (wrk)
#   (a1) latency on one connection, one request at a time (wrk -c1)
#   (b) latency at a fixed rate of 50% of nginx's max (llmproxy bench, open loop)
#   (c1) 1,000 concurrent streams, 100 tokens 20 ms apart
#   (c2) 5,000 concurrent streams, 50 tokens 200 ms apart
#   (d) 10,000 idle keep-alive client connections
#   (e) llmproxy's memory: RSS idle, and under (c2)
#   (f) llmproxy's time from start to /ready
# Needs a JDK 21+, and wrk and nginx: apt-get install -y wrk nginx. About 14 minutes.
#
#   bench/run.sh                 # everything, 3 rounds
#   ROUNDS=1 bench/run.sh        # a quicker look
#   SCENARIOS="a b" bench/run.sh # some scenarios only
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-3}"
SCENARIOS="${SCENARIOS:-a a1 b c1 c2 d e f}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
BASE_PORT="${BASE_PORT:-18100}"
work="$(mktemp -d /tmp/llmproxy-bench.XXXXXX)"
FAST=$((BASE_PORT + 1)) C1=$((BASE_PORT + 2)) C2=$((BASE_PORT + 3))
NG_FAST=$((BASE_PORT + 11)) NG_C1=$((BASE_PORT + 12)) NG_C2=$((BASE_PORT + 13))
GW=$((BASE_PORT + 20)) GW_PROBE=$((BASE_PORT + 21))

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx" >&2; exit 1; }
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
has() { case " $SCENARIOS " in *" $1 "*) return 0;; esac; return 1; }
source bench/lib.sh
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a-b}'; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

# ---- backends, nginx, llmproxy
sim $FAST --ttft 0 --itl 0 --tokens 16
sim $C1 --ttft 100ms --itl 20ms --tokens 100
sim $C2 --ttft 100ms --itl 200ms --tokens 50

nginx_proxy $FAST:$NG_FAST:1024 $C1:$NG_C1:2048 $C2:$NG_C2:8192

gw_config() { # port
  cat <<YAML
listen: "127.0.0.1:$1"
backends:
  - {url: "http://127.0.0.1:$FAST", name: fast, models: ["fast-model"]}
  - {url: "http://127.0.0.1:$C1", name: c1, models: ["c1-model"]}
  - {url: "http://127.0.0.1:$C2", name: c2, models: ["c2-model"]}
logging: {format: json, access_log: true}
YAML
}
gw_config $GW > "$work/gw.yaml"
gw_config $GW_PROBE > "$work/gw-probe.yaml"
bin/llmproxy --config "$work/gw.yaml" > "$work/gw.log" 2>&1 & gw_pid=$!; pids+=($gw_pid)
wait_ready "http://127.0.0.1:$GW/ready"
for p in $NG_FAST $NG_C1 $NG_C2; do wait_ready "http://127.0.0.1:$p/health"; done
gw_java=$(pgrep -f "llmproxy.jar --config $work/gw.yaml" | head -1)

url() { # target scenario
  case "$1:$2" in
    direct:fast) echo "http://127.0.0.1:$FAST";; direct:c1) echo "http://127.0.0.1:$C1";; direct:c2) echo "http://127.0.0.1:$C2";;
    nginx:fast) echo "http://127.0.0.1:$NG_FAST";; nginx:c1) echo "http://127.0.0.1:$NG_C1";; nginx:c2) echo "http://127.0.0.1:$NG_C2";;
    llmproxy:*) echo "http://127.0.0.1:$GW";;
  esac
}
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body   = '{"model":"fast-model","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA
bench() { bin/llmproxy bench --json --no-progress "$@" 2>>"$work/bench-errors.log"; }
TARGETS="direct nginx llmproxy"

log "warming up (JIT): 30 s of non-streaming load and 10 s of streams through llmproxy"
wrk -t2 -c32 -d30s -s "$work/post.lua" "$(url llmproxy fast)/v1/chat/completions" > /dev/null
bench --url "$(url llmproxy c1)" --model c1-model --stream -c 500 -d 5s --warmup 5s --max-tokens 100 > /dev/null
for t in direct nginx; do wrk -t2 -c32 -d5s -s "$work/post.lua" "$(url $t fast)/v1/chat/completions" > /dev/null; done

declare -A A A1 B50 B99 BERR C1_50 C1_99 C1_ITL1 C1_ITL50 C1_ERR C2_50 C2_99 C2_ERR C2_RSS D_HELD D_ERR D_RSS E_IDLE F_READY
ng_max=""
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS"
  if has a; then
    for t in $TARGETS; do
      out=$(wrk -t2 -c32 -d${SECONDS_PER_RUN}s -s "$work/post.lua" "$(url $t fast)/v1/chat/completions")
      A[$t]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
    done
    ng_max=$(echo "${A[nginx]}" | median)
  fi
  if has a1; then
    for t in $TARGETS; do
      out=$(wrk -t1 -c1 -d${SECONDS_PER_RUN}s --latency -s "$work/post.lua" "$(url $t fast)/v1/chat/completions")
      A1[$t]+="$(echo "$out" | awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}') "
    done
  fi
  if has b; then
    rate=$(awk -v m="${ng_max:-40000}" 'BEGIN {printf "%d", m/2}')
    for t in $TARGETS; do
      j=$(bench --url "$(url $t fast)" --model fast-model --rate "$rate" -c 64 -d ${SECONDS_PER_RUN}s --warmup 2s --max-tokens 16)
      B50[$t]+="$(jget "$j" latency_ms p50) "; B99[$t]+="$(jget "$j" latency_ms p99) "; BERR[$t]+="$(jget "$j" "" errors) "
    done
  fi
  if has c1; then
    for t in $TARGETS; do
      j=$(bench --url "$(url $t c1)" --model c1-model --stream -c 1000 --ramp-up 2s -d ${SECONDS_PER_RUN}s --warmup 3s --max-tokens 100)
      C1_50[$t]+="$(jget "$j" ttft_ms p50) "; C1_99[$t]+="$(jget "$j" ttft_ms p99) "
      C1_ITL1[$t]+="$(jget "$j" itl_ms p1) "; C1_ITL50[$t]+="$(jget "$j" itl_ms p50) "; C1_ERR[$t]+="$(jget "$j" "" errors) "
    done
  fi
  if has c2 || has e; then
    for t in $TARGETS; do
      peak_file="$work/rss-peak"; echo 0 > "$peak_file"
      if [ $t = llmproxy ]; then
        ( while kill -0 $gw_pid 2>/dev/null; do m=$(rss_mib $gw_java); [ "$m" -gt "$(cat $peak_file)" ] && echo "$m" > "$peak_file"; sleep 0.2; done ) & sampler=$!
      fi
      j=$(bench --url "$(url $t c2)" --model c2-model --stream -c 5000 --ramp-up 5s -d ${SECONDS_PER_RUN}s --warmup 0s --max-tokens 50)
      if [ $t = llmproxy ]; then kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true; C2_RSS[$t]+="$(cat $peak_file) "; fi
      C2_50[$t]+="$(jget "$j" ttft_ms p50) "; C2_99[$t]+="$(jget "$j" ttft_ms p99) "; C2_ERR[$t]+="$(jget "$j" "" errors) "
    done
  fi
  if has d; then
    for t in $TARGETS; do
      j=$(bench --url "$(url $t fast)" --model fast-model --idle-connections 10000 --hold 10s & bp=$!
        if [ $t = llmproxy ]; then sleep 8; rss_mib $gw_java > "$work/rss-d"; fi; wait $bp) || true
      D_HELD[$t]+="$(jget "$j" "" held) "; D_ERR[$t]+="$(jget "$j" "" errors) "
      [ $t = llmproxy ] && D_RSS[$t]+="$(cat "$work/rss-d") "
    done
  fi
  if has e || has f; then
    # A fresh gateway: time from launch to /ready 200, then its RSS after 5 s idle.
    start=$(date +%s%N)
    bin/llmproxy --config "$work/gw-probe.yaml" > "$work/gw-probe.log" 2>&1 & probe=$!
    wait_ready "http://127.0.0.1:$GW_PROBE/ready"
    F_READY[llmproxy]+="$(( ($(date +%s%N) - start) / 1000000 )) "
    sleep 5
    E_IDLE[llmproxy]+="$(rss_mib "$(pgrep -f "llmproxy.jar --config $work/gw-probe.yaml" | head -1)") "
    kill $probe; wait $probe 2>/dev/null || true
  fi
done

# ---- report
echo
echo "# llmproxy bench/run.sh, $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
row() { printf "| %-32s | %s | %s | %s |\n" "$1" "$2" "$3" "$4"; }
echo "| scenario | direct | nginx | llmproxy |"
echo "| --- | --- | --- | --- |"
if has a; then
  row "(a) req/s, median (rounds)" "$(vals A direct) ($(each A direct))" "$(vals A nginx) ($(each A nginx))" "$(vals A llmproxy) ($(each A llmproxy))"
fi
if has a1; then
  row "(a1) p50 ms, one connection" "$(vals A1 direct)" "$(vals A1 nginx)" "$(vals A1 llmproxy)"
fi
if has b; then
  row "(b) p50 ms at ${rate}/s" "$(vals B50 direct)" "$(vals B50 nginx)" "$(vals B50 llmproxy)"
  row "(b) p99 ms at ${rate}/s" "$(vals B99 direct)" "$(vals B99 nginx)" "$(vals B99 llmproxy)"
  row "(b) errors" "$(each BERR direct)" "$(each BERR nginx)" "$(each BERR llmproxy)"
fi
if has c1; then
  row "(c1) TTFT p50 ms" "$(vals C1_50 direct)" "$(vals C1_50 nginx)" "$(vals C1_50 llmproxy)"
  row "(c1) TTFT p99 ms (rounds)" "$(vals C1_99 direct) ($(each C1_99 direct))" "$(vals C1_99 nginx) ($(each C1_99 nginx))" "$(vals C1_99 llmproxy) ($(each C1_99 llmproxy))"
  row "(c1) inter-token p1 / p50 ms" "$(vals C1_ITL1 direct) / $(vals C1_ITL50 direct)" "$(vals C1_ITL1 nginx) / $(vals C1_ITL50 nginx)" "$(vals C1_ITL1 llmproxy) / $(vals C1_ITL50 llmproxy)"
  row "(c1) errors" "$(each C1_ERR direct)" "$(each C1_ERR nginx)" "$(each C1_ERR llmproxy)"
fi
if has c2; then
  row "(c2) TTFT p50 / p99 ms" "$(vals C2_50 direct) / $(vals C2_99 direct)" "$(vals C2_50 nginx) / $(vals C2_99 nginx)" "$(vals C2_50 llmproxy) / $(vals C2_99 llmproxy)"
  row "(c2) errors" "$(each C2_ERR direct)" "$(each C2_ERR nginx)" "$(each C2_ERR llmproxy)"
fi
if has d; then
  row "(d) 10,000 idle connections held" "$(each D_HELD direct)" "$(each D_HELD nginx)" "$(each D_HELD llmproxy)"
  row "(d) errors" "$(each D_ERR direct)" "$(each D_ERR nginx)" "$(each D_ERR llmproxy)"
fi
if has e; then
  row "(e) RSS MiB idle (rounds)" "" "" "$(vals E_IDLE llmproxy) ($(each E_IDLE llmproxy))"
  has c2 && row "(e) RSS MiB peak under (c2)" "" "" "$(vals C2_RSS llmproxy) ($(each C2_RSS llmproxy))"
  has d && row "(e) RSS MiB with (d)'s connections" "" "" "$(vals D_RSS llmproxy) ($(each D_RSS llmproxy))"
fi
if has f; then
  row "(f) ms from start to /ready" "" "" "$(vals F_READY llmproxy) ($(each F_READY llmproxy))"
fi
echo
has a1 && echo "(a1) added at p50 on one connection: llmproxy $(diff_ms "$(vals A1 llmproxy)" "$(vals A1 direct)") ms, nginx $(diff_ms "$(vals A1 nginx)" "$(vals A1 direct)") ms"
has a && echo "(a) llmproxy / nginx = $(ratio "$(vals A llmproxy)" "$(vals A nginx)"); llmproxy / direct = $(ratio "$(vals A llmproxy)" "$(vals A direct)")"
if has b; then
  echo "(b) added over direct: llmproxy p50 $(diff_ms "$(vals B50 llmproxy)" "$(vals B50 direct)") ms, p99 $(diff_ms "$(vals B99 llmproxy)" "$(vals B99 direct)") ms; nginx p50 $(diff_ms "$(vals B50 nginx)" "$(vals B50 direct)") ms, p99 $(diff_ms "$(vals B99 nginx)" "$(vals B99 direct)") ms"
fi
if has c1; then
  echo "(c1) added TTFT p99 over direct: llmproxy $(diff_ms "$(vals C1_99 llmproxy)" "$(vals C1_99 direct)") ms, nginx $(diff_ms "$(vals C1_99 nginx)" "$(vals C1_99 direct)") ms"
fi
echo "(logs in $work)"
