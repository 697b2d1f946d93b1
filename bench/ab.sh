#!/usr/bin/env bash
# Two or more builds of llmproxy side by side, for a change whose effect is smaller than the noise
# between two runs: each build is a git revision (built into a scratch worktree) or a jar. The
# gateways run at once, as bin/llmproxy runs them (without the class-data archive), in front of one
# simulated backend (the `fast` one of bench/run.sh), and take turns round by round, each round
# starting with the next build:
#   - throughput: wrk -t2 -c32 for SECONDS_PER_RUN s; requests/s, and the gateway's CPU per request
#     (utime + stime from /proc/<pid>/stat over the round);
#   - ALLOC=1: then heap allocated per request, from /metrics (jvm_gc_memory_allocated_bytes_total
#     over llmproxy_requests_total), each read after a jcmd GC.run, around 10 s of the same load;
#   - STREAMS=N: then, ROUNDS times, heap allocated per forwarded event under N streams (a second
#     simulated backend, (c1)'s: TTFT 100 ms, 100 tokens 20 ms apart), over the completion tokens
#     counted, around 10 s of `llmproxy bench --stream -c N` (each read after a jcmd GC.run), with
#     that run's TTFT p99.
# Medians per build at the end. OPTS_N gives the Nth build (from 1) extra JVM options, so one jar
# can run against itself with a setting changed. Needs a JDK 21+ and wrk (apt-get install -y wrk).
#
#   bench/ab.sh d02001f HEAD
#   ROUNDS=8 ALLOC=1 bench/ab.sh old.jar target/llmproxy.jar
#   OPTS_2="-Dio.netty.allocator.type=pooled" bench/ab.sh target/llmproxy.jar target/llmproxy.jar
#   STREAMS=500 bench/ab.sh c638a34 b267e42
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-6}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
WARMUP_SECONDS="${WARMUP_SECONDS:-20}"
BASE_PORT="${BASE_PORT:-18550}"
[ $# -ge 2 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
work="$(mktemp -d /tmp/llmproxy-ab.XXXXXX)"
[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
source bench/lib.sh
source bin/jdk.sh
pick_java_home
java="$JAVA_HOME/bin/java"

# the options bin/llmproxy gives the gateway on this JDK
jdk_runtime_options
jvm=("${jdk_trim_opts[@]}" -Xms32m -Xmx512m -XX:+ExitOnOutOfMemoryError "${jdk_unsafe_opts[@]}")

names=() jars=()
for b in "$@"; do
  if [ -f "$b" ]; then
    jar="$b"
  else
    rev="$(git rev-parse --short "$b^{commit}")"
    log "building $b ($rev)"
    git worktree add -q --detach "$work/src-$rev" "$rev"
    (cd "$work/src-$rev" && ./mvnw -q -B -o -DskipTests package 2>/dev/null || ./mvnw -q -B -DskipTests package)
    jar="$work/$rev.jar"
    cp "$work/src-$rev/target/llmproxy.jar" "$jar"
    git worktree remove --force "$work/src-$rev"
  fi
  names+=("$b") jars+=("$jar")
done

SIM=$BASE_PORT STREAM_SIM=$((BASE_PORT + 99))
sim $SIM --ttft 0 --itl 0 --tokens 16
[ -z "${STREAMS:-}" ] || sim $STREAM_SIM --ttft 100ms --itl 20ms --tokens 100
gw_pids=() ports=()
for i in "${!jars[@]}"; do
  port=$((BASE_PORT + 1 + i))
  {
    printf 'listen: "127.0.0.1:%s"\nbackends:\n  - {url: "http://127.0.0.1:%s", name: sim, models: ["sim-model"]}\n' $port $SIM
    [ -z "${STREAMS:-}" ] || printf '  - {url: "http://127.0.0.1:%s", name: c1, models: ["c1-model"]}\n' $STREAM_SIM
    printf 'logging: {format: json, access_log: true}\n'
  } > "$work/gw-$i.yaml"
  opts_var="OPTS_$((i + 1))"
  read -r -a extra <<< "${!opts_var:-}"
  [ ${#extra[@]} -eq 0 ] || names[$i]+=" (${extra[*]})"
  "$java" "${jvm[@]}" "${extra[@]}" -jar "${jars[$i]}" --config "$work/gw-$i.yaml" > "$work/gw-$i.log" 2>&1 & pids+=($!)
  gw_pids+=($!) ports+=($port)
done
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"sim-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA
wait_ready "http://127.0.0.1:$SIM/health"
for p in "${ports[@]}"; do wait_ready "http://127.0.0.1:$p/ready"; done
url() { echo "http://127.0.0.1:${ports[$1]}/v1/chat/completions"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

log "warming up: ${WARMUP_SECONDS} s of load on each build"
for i in "${!jars[@]}"; do wrk -t2 -c32 -d"${WARMUP_SECONDS}s" -s "$work/post.lua" "$(url $i)" > /dev/null; done

declare -A RPS US
for r in $(seq 1 "$ROUNDS"); do
  line="round $r:"
  # Each round starts with the next build. In a fixed order, the build measured first in every round
  # came out ahead: 83450bf against a later build made 5% more requests/s when first, and the same
  # when second.
  for k in "${!jars[@]}"; do
    i=$(( (k + r - 1) % ${#jars[@]} ))
    c0=$(ticks "${gw_pids[$i]}")
    out="$(wrk -t2 -c32 -d"${SECONDS_PER_RUN}s" -s "$work/post.lua" "$(url $i)")"
    c1=$(ticks "${gw_pids[$i]}")
    n="$(echo "$out" | awk '/requests in/ {print $1}')"
    rps="$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
    us="$(awk -v c=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", c * 1e6 / hz / n}')"
    RPS[$i]+="$rps " US[$i]+="$us "
    line+="  ${names[$i]} $rps req/s $us µs"
  done
  log "$line"
done

# after a full GC (the counter moves when the GC's notification is handled): the heap allocated so
# far, and the requests answered, by gateway I
heap_and_requests() {
  "$JAVA_HOME/bin/jcmd" "${gw_pids[$1]}" GC.run > /dev/null
  sleep 1
  echo "$(metric "${ports[$1]}" jvm_gc_memory_allocated_bytes_total) $(metric "${ports[$1]}" llmproxy_requests_total)"
}
declare -A BYTES
head="| build | req/s, median (rounds) | CPU µs per request, median (rounds) |" rule="| --- | ---: | ---: |"
if [ "${ALLOC:-0}" = 1 ]; then
  head+=" heap bytes allocated per request |" rule+=" ---: |"
  for i in "${!jars[@]}"; do
    read -r a0 n0 < <(heap_and_requests "$i")
    wrk -t2 -c32 -d10s -s "$work/post.lua" "$(url $i)" > /dev/null
    read -r a1 n1 < <(heap_and_requests "$i")
    BYTES[$i]=" $(( (a1 - a0) / (n1 - n0) )) |"
  done
fi

declare -A EVENT_BYTES EB TP
if [ -n "${STREAMS:-}" ]; then
  head+=" heap bytes allocated per event, $STREAMS streams, median (rounds) | TTFT p99 ms, $STREAMS streams, median (rounds) |"
  rule+=" ---: | ---: |"
  completions='llmproxy_tokens_total{backend="c1",model="c1-model",type="completion"'
  streams() { bench_json --url "http://127.0.0.1:${ports[$1]}" --model c1-model --stream -c "$STREAMS" -d 10s --warmup 0s --ramp-up 2s --max-tokens 100; }
  for i in "${!jars[@]}"; do streams "$i" > /dev/null; done # the streaming path's warm-up
  for r in $(seq 1 "$ROUNDS"); do
    line="streams, round $r:"
    for k in "${!jars[@]}"; do
      i=$(( (k + r - 1) % ${#jars[@]} ))
      "$JAVA_HOME/bin/jcmd" "${gw_pids[$i]}" GC.run > /dev/null; sleep 1
      a0=$(metric "${ports[$i]}" jvm_gc_memory_allocated_bytes_total) t0=$(metric "${ports[$i]}" "$completions")
      j="$(streams "$i")"
      "$JAVA_HOME/bin/jcmd" "${gw_pids[$i]}" GC.run > /dev/null; sleep 1
      a1=$(metric "${ports[$i]}" jvm_gc_memory_allocated_bytes_total) t1=$(metric "${ports[$i]}" "$completions")
      b=$(( (a1 - a0) / (t1 - t0) )) p99="$(jget "$j" ttft_ms p99)"
      EB[$i]+="$b " TP[$i]+="$p99 "
      line+="  ${names[$i]} $b B/event, TTFT p99 $p99 ms"
    done
    log "$line"
  done
  for i in "${!jars[@]}"; do EVENT_BYTES[$i]=" $(vals EB $i) ($(each EB $i)) | $(vals TP $i) ($(each TP $i)) |"; done
fi

echo
echo "$head"
echo "$rule"
for i in "${!jars[@]}"; do
  echo "| ${names[$i]} | $(vals RPS $i) ($(each RPS $i)) | $(vals US $i) ($(each US $i)) |${BYTES[$i]:-}${EVENT_BYTES[$i]:-}"
done
echo "(logs in $work)"
