#!/usr/bin/env bash
# The performance suite (docs/BENCHMARKS.md), in one run on one machine: simulated backends, then the
# same load direct to them, through nginx (keep-alive upstream, proxy_buffering off) and through
# llmproxy (plain routing, access log on, as shipped: transport auto, which is io_uring where the
# kernel offers it), and for the scenarios in EPOLL_SCENARIOS (default: none) through a second
# llmproxy with transport: epoll. Scenario by
# scenario, each repeated ROUNDS times with the targets interleaved; medians and ratios at the end:
#   (a) non-streaming max throughput, closed loop (wrk)
#   (a1) latency on one connection, one request at a time (wrk -c1)
#   (b) latency at a fixed rate of 50% of nginx's max (llmproxy bench, open loop, the rate ramped up
#       over 3 s of a 5 s warm-up)
#   (c1) 1,000 concurrent streams, 100 tokens 20 ms apart
#   (c2) 5,000 concurrent streams, 50 tokens 200 ms apart
#   (d) 10,000 idle keep-alive client connections
#   (e) llmproxy's memory: RSS idle, and under (c2)
#   (f) llmproxy's time from start to /ready
# Needs a JDK 21+, and wrk and nginx: apt-get install -y wrk nginx. About 14 minutes (issue 4 allows
# 15); the report ends with how long the run took.
#
#   bench/run.sh                 # everything, 3 rounds
#   ROUNDS=1 bench/run.sh        # a quicker look
#   SCENARIOS="a b" bench/run.sh # some scenarios only
#   EPOLL_SCENARIOS=a bench/run.sh       # the epoll gateway in (a) too (about 80 s more)
#   EPOLL_SCENARIOS="a b" bench/run.sh   # and in (b) (a few minutes more)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-3}"
SCENARIOS="${SCENARIOS:-a a1 b c1 c2 d e f}"
EPOLL_SCENARIOS="${EPOLL_SCENARIOS:-}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
BASE_PORT="${BASE_PORT:-18100}"
work="$(mktemp -d /tmp/llmproxy-bench.XXXXXX)"
FAST=$((BASE_PORT + 1)) C1=$((BASE_PORT + 2)) C2=$((BASE_PORT + 3))
NG_FAST=$((BASE_PORT + 11)) NG_C1=$((BASE_PORT + 12)) NG_C2=$((BASE_PORT + 13))
GW=$((BASE_PORT + 20)) GW_PROBE=$((BASE_PORT + 21)) GW_EPOLL=$((BASE_PORT + 22))

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx" >&2; exit 1; }
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
has() { case " $SCENARIOS " in *" $1 "*) return 0;; esac; return 1; }
epoll_in() { case " $EPOLL_SCENARIOS " in *" $1 "*) return 0;; esac; return 1; }
source bench/lib.sh
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a-b}'; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

# ---- backends, nginx, llmproxy
sim $FAST --ttft 0 --itl 0 --tokens 16
sim $C1 --ttft 100ms --itl 20ms --tokens 100
sim $C2 --ttft 100ms --itl 200ms --tokens 50

nginx_proxy $FAST:$NG_FAST:1024 $C1:$NG_C1:2048 $C2:$NG_C2:8192

gw_config() { # port [transport]
  cat <<YAML
listen: "127.0.0.1:$1"
backends:
  - {url: "http://127.0.0.1:$FAST", name: fast, models: ["fast-model"]}
  - {url: "http://127.0.0.1:$C1", name: c1, models: ["c1-model"]}
  - {url: "http://127.0.0.1:$C2", name: c2, models: ["c2-model"]}
logging: {format: json, access_log: true}
transport: ${2:-auto}
YAML
}
gw_config $GW > "$work/gw.yaml"
gw_config $GW_PROBE > "$work/gw-probe.yaml"
bin/llmproxy --config "$work/gw.yaml" > "$work/gw.log" 2>&1 & gw_pid=$!; pids+=($gw_pid)
wait_ready "http://127.0.0.1:$GW/ready"
gw_java=$(pgrep -f "llmproxy.jar --config $work/gw.yaml" | head -1)
log "llmproxy runs on $(grep -o 'event loops ([a-z_]*)' "$work/gw.log" | head -1)"
epoll=""
if [ -n "$EPOLL_SCENARIOS" ]; then
  gw_config $GW_EPOLL epoll > "$work/gw-epoll.yaml"
  bin/llmproxy --config "$work/gw-epoll.yaml" > "$work/gw-epoll.log" 2>&1 & epoll_pid=$!; pids+=($epoll_pid)
  wait_ready "http://127.0.0.1:$GW_EPOLL/ready"
  epoll=llmproxy-epoll
fi
for p in $NG_FAST $NG_C1 $NG_C2; do wait_ready "http://127.0.0.1:$p/health"; done

url() { # target scenario
  case "$1:$2" in
    direct:fast) echo "http://127.0.0.1:$FAST";; direct:c1) echo "http://127.0.0.1:$C1";; direct:c2) echo "http://127.0.0.1:$C2";;
    nginx:fast) echo "http://127.0.0.1:$NG_FAST";; nginx:c1) echo "http://127.0.0.1:$NG_C1";; nginx:c2) echo "http://127.0.0.1:$NG_C2";;
    llmproxy:*) echo "http://127.0.0.1:$GW";;
    llmproxy-epoll:*) echo "http://127.0.0.1:$GW_EPOLL";;
  esac
}
targets() { # scenario: the targets it runs against
  if [ -n "$epoll" ] && epoll_in "$1"; then echo "direct nginx llmproxy $epoll"; else echo "direct nginx llmproxy"; fi
}
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body   = '{"model":"fast-model","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA

# A JVM compiles its hot code for about 30 s under load on two cores; measured before that, a round
# measures the compiler. Each shape of load needs its own: after 30 s of wrk, the first open loop of
# (b) still set off some 470 compilations in 6 s, and its p99 was 43 to 560 ms instead of 17 to 20
# (docs/BENCHMARKS.md, "Latency at 50% of nginx's rate (b)"). So the warm-up has all three shapes.
log "warming up (JIT): 30 s of closed loop, 10 s of open loop and 5 s of streams on each gateway, less on the others"
for t in llmproxy $epoll; do
  wrk -t2 -c32 -d30s -s "$work/post.lua" "$(url $t fast)/v1/chat/completions" > /dev/null
  open_loop_warmup "$(url $t fast)" fast-model 10
  bench --url "$(url $t c1)" --model c1-model --stream -c 500 -d 5s --warmup 0s --max-tokens 100 > /dev/null
done
for t in direct nginx; do
  wrk -t2 -c32 -d5s -s "$work/post.lua" "$(url $t fast)/v1/chat/completions" > /dev/null
  open_loop_warmup "$(url $t fast)" fast-model 4
done

declare -A A A1 B50 B99 BERR C1_50 C1_99 C1_ITL1 C1_ITL50 C1_ERR C2_50 C2_99 C2_ERR C2_RSS D_HELD D_ERR D_RSS E_IDLE F_READY
rounds() { # scenario: logs each round
  log "($1) round $2 of $ROUNDS"
}

if has a; then
  for r in $(seq 1 "$ROUNDS"); do rounds a "$r"
    for t in $(targets a); do
      out=$(wrk -t2 -c32 -d${SECONDS_PER_RUN}s -s "$work/post.lua" "$(url $t fast)/v1/chat/completions")
      A[$t]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
    done
  done
fi
ng_max=$(echo "${A[nginx]:-}" | median)
if has a1; then
  for r in $(seq 1 "$ROUNDS"); do rounds a1 "$r"
    for t in $(targets a1); do
      out=$(wrk -t1 -c1 -d$((SECONDS_PER_RUN / 2))s --latency -s "$work/post.lua" "$(url $t fast)/v1/chat/completions")
      A1[$t]+="$(echo "$out" | awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}') "
    done
  done
fi
rate=$(awk -v m="${ng_max:-40000}" 'BEGIN {m = (m == "nan") ? 40000 : m; printf "%d", m/2}')
if has b; then
  for r in $(seq 1 "$ROUNDS"); do rounds b "$r"
    for t in $(targets b); do
      j=$(bench --url "$(url $t fast)" --model fast-model --rate "$rate" -c 64 -d ${SECONDS_PER_RUN}s --warmup 5s --ramp-up 3s --max-tokens 16)
      B50[$t]+="$(jget "$j" latency_ms p50) "; B99[$t]+="$(jget "$j" latency_ms p99) "; BERR[$t]+="$(jget "$j" "" errors) "
    done
  done
fi
if has c1; then
  for r in $(seq 1 "$ROUNDS"); do rounds c1 "$r"
    for t in $(targets c1); do
      j=$(bench --url "$(url $t c1)" --model c1-model --stream -c 1000 --ramp-up 2s -d ${SECONDS_PER_RUN}s --warmup 3s --max-tokens 100)
      C1_50[$t]+="$(jget "$j" ttft_ms p50) "; C1_99[$t]+="$(jget "$j" ttft_ms p99) "
      C1_ITL1[$t]+="$(jget "$j" itl_ms p1) "; C1_ITL50[$t]+="$(jget "$j" itl_ms p50) "; C1_ERR[$t]+="$(jget "$j" "" errors) "
    done
  done
fi
if has c2 || has e; then
  for r in $(seq 1 "$ROUNDS"); do rounds c2 "$r"
    for t in $(targets c2); do
      peak_file="$work/rss-peak"; echo 0 > "$peak_file"
      if [ $t = llmproxy ]; then
        ( while kill -0 $gw_pid 2>/dev/null; do m=$(rss_mib $gw_java); [ "$m" -gt "$(cat $peak_file)" ] && echo "$m" > "$peak_file"; sleep 0.2; done ) & sampler=$!
      fi
      j=$(bench --url "$(url $t c2)" --model c2-model --stream -c 5000 --ramp-up 5s -d 8s --warmup 0s --max-tokens 50)
      if [ $t = llmproxy ]; then kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true; C2_RSS[$t]+="$(cat $peak_file) "; fi
      C2_50[$t]+="$(jget "$j" ttft_ms p50) "; C2_99[$t]+="$(jget "$j" ttft_ms p99) "; C2_ERR[$t]+="$(jget "$j" "" errors) "
    done
  done
fi
if has d; then
  for r in $(seq 1 "$ROUNDS"); do rounds d "$r"
    for t in $(targets d); do
      j=$(bench --url "$(url $t fast)" --model fast-model --idle-connections 10000 --hold 8s & bp=$!
        if [ $t = llmproxy ]; then sleep 6; rss_mib $gw_java > "$work/rss-d"; fi; wait $bp) || true
      D_HELD[$t]+="$(jget "$j" "" held) "; D_ERR[$t]+="$(jget "$j" "" errors) "
      [ $t = llmproxy ] && D_RSS[$t]+="$(cat "$work/rss-d") "
    done
  done
fi
if has e || has f; then
  for r in $(seq 1 "$ROUNDS"); do rounds "e, f" "$r"
    # A fresh gateway: time from launch to /ready 200, then its RSS after 5 s idle.
    start=$(date +%s%N)
    bin/llmproxy --config "$work/gw-probe.yaml" > "$work/gw-probe.log" 2>&1 & probe=$!
    wait_ready "http://127.0.0.1:$GW_PROBE/ready"
    F_READY[llmproxy]+="$(( ($(date +%s%N) - start) / 1000000 )) "
    sleep 5
    E_IDLE[llmproxy]+="$(rss_mib "$(pgrep -f "llmproxy.jar --config $work/gw-probe.yaml" | head -1)") "
    kill $probe; wait $probe 2>/dev/null || true
  done
fi

# ---- report
echo
echo "# llmproxy bench/run.sh, $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
all="direct nginx llmproxy $epoll"
cell() { local -n arr=$1; [ -n "${arr[$2]:-}" ] && echo "$3" || echo ""; }
row() { # label, then one value per target of $all
  local label=$1; shift
  printf "| %-34s |" "$label"; for v in "$@"; do printf " %s |" "$v"; done; echo
}
printf "| scenario |"; for t in $all; do printf " %s |" "$t"; done; echo
printf "| --- |"; for t in $all; do printf " --- |"; done; echo
per() { # array, format: median (rounds) | median | each
  local arr=$1 how=$2 out=() t
  for t in $all; do
    case $how in
      rounds) out+=("$(cell $arr $t "$(vals $arr $t) ($(each $arr $t))")");;
      median) out+=("$(cell $arr $t "$(vals $arr $t)")");;
      each) out+=("$(cell $arr $t "$(each $arr $t)")");;
    esac
  done
  printf '%s\n' "${out[@]}"
}
mapfile_row() { local label=$1 arr=$2 how=$3; mapfile -t cells < <(per "$arr" "$how"); row "$label" "${cells[@]}"; }
has a && mapfile_row "(a) req/s, median (rounds)" A rounds
has a1 && mapfile_row "(a1) p50 ms, one connection" A1 median
if has b; then
  mapfile_row "(b) p50 ms at ${rate}/s" B50 median
  mapfile_row "(b) p99 ms at ${rate}/s (rounds)" B99 rounds
  mapfile_row "(b) errors" BERR each
fi
if has c1; then
  mapfile_row "(c1) TTFT p50 ms" C1_50 median
  mapfile_row "(c1) TTFT p99 ms (rounds)" C1_99 rounds
  mapfile_row "(c1) inter-token p1 ms" C1_ITL1 median
  mapfile_row "(c1) inter-token p50 ms" C1_ITL50 median
  mapfile_row "(c1) errors" C1_ERR each
fi
if has c2; then
  mapfile_row "(c2) TTFT p50 ms" C2_50 median
  mapfile_row "(c2) TTFT p99 ms" C2_99 median
  mapfile_row "(c2) errors" C2_ERR each
fi
if has d; then
  mapfile_row "(d) 10,000 idle connections held" D_HELD each
  mapfile_row "(d) errors" D_ERR each
fi
if has e; then
  mapfile_row "(e) RSS MiB idle (rounds)" E_IDLE rounds
  has c2 && mapfile_row "(e) RSS MiB peak under (c2)" C2_RSS rounds
  has d && mapfile_row "(e) RSS MiB with (d)'s connections" D_RSS rounds
fi
has f && mapfile_row "(f) ms from start to /ready" F_READY rounds
# per_round ARRAY A B: A's value over B's, round by round (the two were measured in the same round)
per_round() {
  local -n arr=$1
  local -a a b
  read -r -a a <<< "${arr[$2]}"
  read -r -a b <<< "${arr[$3]}"
  local out="" i
  for i in "${!a[@]}"; do out+="$(ratio "${a[$i]}" "${b[$i]}") "; done
  echo "${out% }"
}
echo
for t in llmproxy $epoll; do
  has a1 && [ -n "${A1[$t]:-}" ] && echo "(a1) $t added at p50 on one connection: $(diff_ms "$(vals A1 $t)" "$(vals A1 direct)") ms (nginx $(diff_ms "$(vals A1 nginx)" "$(vals A1 direct)") ms)"
  has a && [ -n "${A[$t]:-}" ] && echo "(a) $t / nginx = $(ratio "$(vals A $t)" "$(vals A nginx)") (rounds $(per_round A $t nginx)); / direct = $(ratio "$(vals A $t)" "$(vals A direct)")"
  if has b && [ -n "${B50[$t]:-}" ]; then
    echo "(b) $t added over direct: p50 $(diff_ms "$(vals B50 $t)" "$(vals B50 direct)") ms, p99 $(diff_ms "$(vals B99 $t)" "$(vals B99 direct)") ms (nginx: p50 $(diff_ms "$(vals B50 nginx)" "$(vals B50 direct)") ms, p99 $(diff_ms "$(vals B99 nginx)" "$(vals B99 direct)") ms)"
  fi
  if has c1 && [ -n "${C1_99[$t]:-}" ]; then
    echo "(c1) $t added TTFT p99 over direct: $(diff_ms "$(vals C1_99 $t)" "$(vals C1_99 direct)") ms (nginx $(diff_ms "$(vals C1_99 nginx)" "$(vals C1_99 direct)") ms)"
  fi
done
echo "finished in $((SECONDS / 60)) min $((SECONDS % 60)) s (logs in $work)" # bash counts SECONDS from the start
