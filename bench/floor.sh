#!/usr/bin/env bash
# What the forwarding stack costs by itself (issue 4's throughput bar): non-streaming throughput of
# nginx, of the least a forwarder can do on raw Netty and on Vert.x 5's HTTP server and client
# (bench/floor/*.java, run from source against llmproxy's jar), and of llmproxy, against the same
# simulated backend, in one run: wrk -t2 -c32, ROUNDS rounds with the targets interleaved, medians
# and ratios to nginx. Each target's event-loop threads are checked to share the work.
# Needs a JDK 21+, nginx and wrk (apt-get install -y nginx wrk). About 4 minutes.
#
#   bench/floor.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
BASE_PORT="${BASE_PORT:-18450}"
work="$(mktemp -d /tmp/llmproxy-floor.XXXXXX)"
SIM=$((BASE_PORT + 1)) NG=$((BASE_PORT + 2)) NETTY=$((BASE_PORT + 3)) VERTX=$((BASE_PORT + 4)) LP=$((BASE_PORT + 5))
TARGETS="direct nginx netty vertx llmproxy"

for tool in nginx wrk; do command -v $tool >/dev/null || { echo "$tool is missing: apt-get install -y nginx wrk" >&2; exit 1; }; done
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
source bench/lib.sh
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"

sim $SIM --ttft 0 --itl 0 --tokens 16
nginx_proxy $SIM:$NG
jvm=(-Xms64m -Xmx512m --enable-native-access=ALL-UNNAMED)
"$java" "${jvm[@]}" -cp target/llmproxy.jar bench/floor/NettyForwarder.java $NETTY $SIM > "$work/netty.log" 2>&1 & pids+=($!)
"$java" "${jvm[@]}" -cp target/llmproxy.jar bench/floor/VertxForwarder.java $VERTX $SIM > "$work/vertx.log" 2>&1 & pids+=($!)
printf 'listen: "127.0.0.1:%s"\nbackends: [{url: "http://127.0.0.1:%s", name: sim}]\n' $LP $SIM > "$work/llmproxy.yaml"
bin/llmproxy --config "$work/llmproxy.yaml" > "$work/llmproxy.log" 2>&1 & pids+=($!)

port() { case $1 in direct) echo $SIM;; nginx) echo $NG;; netty) echo $NETTY;; vertx) echo $VERTX;; llmproxy) echo $LP;; esac; }
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"sim-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA
wait_ready "http://127.0.0.1:$SIM/health"
wait_ready "http://127.0.0.1:$LP/ready"
for t in netty vertx; do wait_ready "http://127.0.0.1:$(port $t)/v1/chat/completions" -X POST -d '{}'; done

# the pid listening on a port (a JVM's event loops are threads of it)
pid_of() { ss -Hltnp "sport = :$1" | sed -E 's/.*pid=([0-9]+).*/\1/' | head -n 1; }
# CPU ticks per event-loop thread (Vert.x: vert.x-eventloop-thread-N; Netty: multiThreadIoEventLoopGroup-N-M)
loop_ticks() { for t in /proc/$1/task/*; do case "$(cat "$t/comm")" in vert.x-eventloo*|multiThreadIoEv*) awk '{printf "%d ", $14+$15}' "$t/stat";; esac; done; }

log "warming up: ${SECONDS_PER_RUN} s of load on each target"
for t in $TARGETS; do wrk -t2 -c32 -d${SECONDS_PER_RUN}s -s "$work/post.lua" "http://127.0.0.1:$(port $t)/v1/chat/completions" > /dev/null; done

declare -A RPS LOOPS
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS"
  for t in $TARGETS; do
    p=$(pid_of "$(port $t)")
    before=$(loop_ticks "$p")
    out=$(wrk -t2 -c32 -d${SECONDS_PER_RUN}s -s "$work/post.lua" "http://127.0.0.1:$(port $t)/v1/chat/completions")
    after=$(loop_ticks "$p")
    RPS[$t]+="$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') "
    [ -n "$before" ] && LOOPS[$t]="$(paste -d' ' <(echo "$before" | tr ' ' '\n') <(echo "$after" | tr ' ' '\n') | awk 'NF==2 {printf "%d ", $2-$1}')"
  done
done

ng=$(echo "${RPS[nginx]}" | median)
echo
echo "| non-streaming req/s, wrk -t2 -c32 | median (rounds) | / nginx | event-loop CPU ticks, last round |"
echo "| --- | ---: | ---: | --- |"
for t in $TARGETS; do
  m=$(echo "${RPS[$t]}" | median)
  echo "| $t | $m (${RPS[$t]% }) | $(ratio "$m" "$ng") | ${LOOPS[$t]:-} |"
done
