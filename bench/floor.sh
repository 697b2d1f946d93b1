#!/usr/bin/env bash
# What the forwarding stack costs by itself (issue 4's bars): nginx, the least a forwarder can do on
# raw Netty and on Vert.x 5's HTTP server and client (bench/floor/*.java, run from source against
# llmproxy's jar), and llmproxy, against the same simulated backends, in one run, ROUNDS rounds with
# the targets interleaved, medians and ratios to nginx:
#   a   non-streaming throughput, wrk -t2 -c32
#   b   latency at a fixed rate, open loop (llmproxy bench --rate, as bench/run.sh's (b)), after 10 s of
#       open loop on each target: RATE, or half of nginx's (a) in the first round when a runs too, else
#       17,000/s; p50 and p99 and what each adds over direct
#   c1  1,000 concurrent streams of 100 tokens 20 ms apart (llmproxy bench): TTFT, inter-token p1,
#       and the CPU each target's event loops spent
# Each target's event-loop threads are checked to share the work.
# Needs a JDK 21+, nginx and wrk (apt-get install -y nginx wrk). About 9 minutes; b adds about 5.
#
#   bench/floor.sh
#   SCENARIOS=c1 bench/floor.sh
#   SCENARIOS="a b" bench/floor.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
WARMUP_SECONDS="${WARMUP_SECONDS:-$SECONDS_PER_RUN}" # non-streaming load on each target before the rounds
SCENARIOS="${SCENARIOS:-a c1}"
BASE_PORT="${BASE_PORT:-18450}"
work="$(mktemp -d /tmp/llmproxy-floor.XXXXXX)"
SIM=$((BASE_PORT + 1)) NG=$((BASE_PORT + 2)) NETTY=$((BASE_PORT + 3)) VERTX=$((BASE_PORT + 4)) LP=$((BASE_PORT + 5))
# the c1 backend, and the nginx and forwarders in front of it (llmproxy routes to it by model)
SIM_C1=$((BASE_PORT + 11)) NG_C1=$((BASE_PORT + 12)) NETTY_C1=$((BASE_PORT + 13)) VERTX_C1=$((BASE_PORT + 14))
TARGETS="direct nginx netty vertx llmproxy"

for tool in nginx wrk; do command -v $tool >/dev/null || { echo "$tool is missing: apt-get install -y nginx wrk" >&2; exit 1; }; done
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
source bench/lib.sh
source bin/jdk.sh
pick_java_home # the forwarders are compiled from source against the jar: the JDK bin/llmproxy uses
java="$JAVA_HOME/bin/java"

has() { case " $SCENARIOS " in *" $1 "*) return 0;; esac; return 1; }
sim $SIM --ttft 0 --itl 0 --tokens 16
sim $SIM_C1 --ttft 100ms --itl 20ms --tokens 100
nginx_proxy $SIM:$NG:1024 $SIM_C1:$NG_C1:2048
# the heap, Unsafe memory access (the option exists from JDK 23 on) and buffer allocator
# (VertxSetup.preferPooledAllocator) that the gateway runs with
jdk_runtime_options
jvm=(-Xms32m -Xmx512m --enable-native-access=ALL-UNNAMED "${jdk_unsafe_opts[@]}" -Dio.netty.allocator.type=pooled)
forwarder() { # Netty|Vertx LISTEN BACKEND
  "$java" "${jvm[@]}" -cp target/llmproxy.jar "bench/floor/$1Forwarder.java" "$2" "$3" > "$work/$1-$2.log" 2>&1 & pids+=($!)
}
forwarder Netty $NETTY $SIM; forwarder Vertx $VERTX $SIM
forwarder Netty $NETTY_C1 $SIM_C1; forwarder Vertx $VERTX_C1 $SIM_C1
printf 'listen: "127.0.0.1:%s"\nbackends:\n  - {url: "http://127.0.0.1:%s", name: sim, models: ["sim-model"]}\n  - {url: "http://127.0.0.1:%s", name: c1, models: ["c1-model"]}\n' \
  $LP $SIM $SIM_C1 > "$work/llmproxy.yaml"
bin/llmproxy --config "$work/llmproxy.yaml" > "$work/llmproxy.log" 2>&1 & pids+=($!)

port() { case $1 in direct) echo $SIM;; nginx) echo $NG;; netty) echo $NETTY;; vertx) echo $VERTX;; llmproxy) echo $LP;; esac; }
port_c1() { case $1 in direct) echo $SIM_C1;; nginx) echo $NG_C1;; netty) echo $NETTY_C1;; vertx) echo $VERTX_C1;; llmproxy) echo $LP;; esac; }
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"sim-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA
wait_ready "http://127.0.0.1:$SIM/health"
wait_ready "http://127.0.0.1:$LP/ready"
for p in $NETTY $VERTX $NETTY_C1 $VERTX_C1; do wait_ready "http://127.0.0.1:$p/v1/chat/completions" -X POST -d '{}'; done
wait_ready "http://127.0.0.1:$NG_C1/health"
log "transports: raw Netty $(grep -o '([a-z_]*)' "$work/Netty-$NETTY.log"), Vert.x $(grep -o '([a-z_]*)' "$work/Vertx-$VERTX.log"), llmproxy $(grep -o 'event loops ([a-z_]*)' "$work/llmproxy.log" | head -1 | cut -d' ' -f3)"

# the pid listening on a port (a JVM's event loops are threads of it)
pid_of() { ss -Hltnp "sport = :$1" | sed -E 's/.*pid=([0-9]+).*/\1/' | head -n 1; }
# CPU ticks per event-loop thread (Vert.x: vert.x-eventloop-thread-N; Netty: multiThreadIoEventLoopGroup-N-M)
loop_ticks() { for t in /proc/$1/task/*; do case "$(cat "$t/comm")" in vert.x-eventloo*|multiThreadIoEv*) awk '{printf "%d ", $14+$15}' "$t/stat";; esac; done; }

# CPU ticks (10 ms) a target's forwarding threads used so far: a JVM's event loops, nginx's workers
target_ticks() { # target port
  case $1 in
    direct) echo 0;;
    nginx) for w in $(pgrep -f "nginx: worker"); do awk '{print $14+$15}' "/proc/$w/stat"; done | awk '{s += $1} END {print s+0}';;
    *) loop_ticks "$(pid_of "$2")" | tr ' ' '\n' | awk '{s += $1} END {print s+0}';;
  esac
}

declare -A RPS LOOPS B_50 B_99 B_ERR C1_50 C1_99 C1_ITL1 C1_ERR C1_CPU
if has a || has b; then
  log "warming up: ${WARMUP_SECONDS} s of load on each target"
  for t in $TARGETS; do wrk -t2 -c32 -d${WARMUP_SECONDS}s -s "$work/post.lua" "http://127.0.0.1:$(port $t)/v1/chat/completions" > /dev/null; done
fi
if has b; then
  log "warming up: 10 s of open loop on each target"
  for t in $TARGETS; do open_loop_warmup "http://127.0.0.1:$(port $t)" sim-model 10; done
fi
if has c1; then
  log "warming up: 5 s of 500 streams on each target"
  for t in $TARGETS; do
    bench --url "http://127.0.0.1:$(port_c1 $t)" --model c1-model --stream -c 500 -d 5s --warmup 0s --max-tokens 100 > /dev/null
  done
fi
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS"
  if has a; then
    for t in $TARGETS; do
      p=$(pid_of "$(port $t)")
      before=$(loop_ticks "$p")
      out=$(wrk -t2 -c32 -d${SECONDS_PER_RUN}s -s "$work/post.lua" "http://127.0.0.1:$(port $t)/v1/chat/completions")
      after=$(loop_ticks "$p")
      RPS[$t]+="$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') "
      [ -n "$before" ] && LOOPS[$t]="$(paste -d' ' <(echo "$before" | tr ' ' '\n') <(echo "$after" | tr ' ' '\n') | awk 'NF==2 {printf "%d ", $2-$1}')"
    done
  fi
  if has b; then
    # the rate, fixed in the first round: RATE, or half of nginx's (a) in that round (17,000/s without a)
    [ -n "${rate:-}" ] || rate=${RATE:-$(echo "${RPS[nginx]:-}" | median | awk '{printf "%d", ($1 == "nan") ? 17000 : $1 / 2}')}
    for t in $TARGETS; do
      j=$(bench --url "http://127.0.0.1:$(port $t)" --model sim-model --rate "$rate" -c 64 -d ${SECONDS_PER_RUN}s \
        --warmup 5s --ramp-up 3s --max-tokens 16)
      B_50[$t]+="$(jget "$j" latency_ms p50) "; B_99[$t]+="$(jget "$j" latency_ms p99) "
      B_ERR[$t]+="$(jget "$j" "" errors) "
    done
  fi
  if has c1; then
    for t in $TARGETS; do
      before=$(target_ticks $t "$(port_c1 $t)")
      j=$(bench --url "http://127.0.0.1:$(port_c1 $t)" --model c1-model --stream -c 1000 --ramp-up 2s \
        -d ${SECONDS_PER_RUN}s --warmup 3s --max-tokens 100)
      after=$(target_ticks $t "$(port_c1 $t)")
      C1_50[$t]+="$(jget "$j" ttft_ms p50) "; C1_99[$t]+="$(jget "$j" ttft_ms p99) "
      C1_ITL1[$t]+="$(jget "$j" itl_ms p1) "; C1_ERR[$t]+="$(jget "$j" "" errors) "
      C1_CPU[$t]+="$((after - before)) "
    done
  fi
done

echo
if has a; then
  ng=$(echo "${RPS[nginx]}" | median)
  echo "| non-streaming req/s, wrk -t2 -c32 | median (rounds) | / nginx | event-loop CPU ticks, last round |"
  echo "| --- | ---: | ---: | --- |"
  for t in $TARGETS; do
    m=$(echo "${RPS[$t]}" | median)
    echo "| $t | $m (${RPS[$t]% }) | $(ratio "$m" "$ng") | ${LOOPS[$t]:-} |"
  done
  echo
fi
if has b; then
  d50=$(vals B_50 direct) d99=$(vals B_99 direct)
  echo "| b: open loop at ${rate}/s, -c 64 | p50 ms (rounds) | added p50 ms | p99 ms (rounds) | added p99 ms | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for t in $TARGETS; do
    m50=$(vals B_50 $t) m99=$(vals B_99 $t)
    echo "| $t | $m50 ($(each B_50 $t)) | $(awk -v a="$m50" -v b="$d50" 'BEGIN {printf "%+.3f", a-b}') | $m99 ($(each B_99 $t)) | $(awk -v a="$m99" -v b="$d99" 'BEGIN {printf "%+.1f", a-b}') | $(each B_ERR $t) |"
  done
  echo
fi
if has c1; then
  echo "| c1: 1,000 streams, 100 tokens 20 ms apart | TTFT p50 ms | TTFT p99 ms (rounds) | inter-token p1 ms | errors | forwarding CPU ticks (rounds) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for t in $TARGETS; do
    echo "| $t | $(vals C1_50 $t) | $(vals C1_99 $t) ($(each C1_99 $t)) | $(vals C1_ITL1 $t) | $(each C1_ERR $t) | $(vals C1_CPU $t) ($(each C1_CPU $t)) |"
  done
fi
