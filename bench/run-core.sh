#!/usr/bin/env bash
# The gateway-core benchmark (issue 3), in one run on one machine: the simulated backend, then the
# same load direct to it, through nginx (keep-alive upstream, proxy_buffering off) and through
# llmproxy (plain routing, access log on, as shipped). Rounds are interleaved; medians and ratios
# are reported. Needs: a JDK 21+, wrk and nginx (apt-get install wrk nginx).
#
#   bench/run-core.sh            # about 6 minutes
#   ROUNDS=5 bench/run-core.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
work="$(mktemp -d /tmp/llmproxy-bench.XXXXXX)"
SIM_PORT=18101 STREAM_SIM_PORT=18102 NGINX_PORT=18190 GW_PORT=18180 GW_STREAM_PORT=18181

[ -f target/llmproxy.jar ] || bin/llmproxy --version >/dev/null
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install nginx" >&2; exit 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

bin/llmproxy simulate --port $SIM_PORT --ttft 0 --itl 0 --tokens 16 > "$work/sim.log" 2>&1 & pids+=($!)
bin/llmproxy simulate --port $STREAM_SIM_PORT --ttft 100ms --itl 20ms --tokens 100 > "$work/sim-stream.log" 2>&1 & pids+=($!)

cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 20000; }
http {
  access_log $work/nginx-access.log;
  upstream sim { server 127.0.0.1:$SIM_PORT; keepalive 512; }
  upstream simstream { server 127.0.0.1:$STREAM_SIM_PORT; keepalive 2048; }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location /stream/ {
      rewrite ^/stream(/.*)\$ \$1 break;
      proxy_pass http://simstream; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 300s;
    }
    location / {
      proxy_pass http://sim; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off;
    }
  }
}
NGINX
nginx -c "$work/nginx.conf"

cat > "$work/gw.yaml" <<YAML
listen: "127.0.0.1:$GW_PORT"
backends:
  - url: "http://127.0.0.1:$SIM_PORT"
logging: {format: json, access_log: true}
YAML
cat > "$work/gw-stream.yaml" <<YAML
listen: "127.0.0.1:$GW_STREAM_PORT"
backends:
  - url: "http://127.0.0.1:$STREAM_SIM_PORT"
logging: {format: json, access_log: true}
YAML
bin/llmproxy --config "$work/gw.yaml" > "$work/gw.log" 2>&1 & gw_pid=$!; pids+=($gw_pid)
wait_port $SIM_PORT; wait_port $STREAM_SIM_PORT; wait_port $NGINX_PORT; wait_port $GW_PORT

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body   = '{"model":"sim-model","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA
url() { case $1 in direct) echo "http://127.0.0.1:$SIM_PORT";; nginx) echo "http://127.0.0.1:$NGINX_PORT";; llmproxy) echo "http://127.0.0.1:$GW_PORT";; esac; }

echo "warming up (JIT) ..." >&2
wrk -t2 -c32 -d60s -s "$work/post.lua" "$(url llmproxy)/v1/chat/completions" > /dev/null
wrk -t2 -c32 -d5s -s "$work/post.lua" "$(url nginx)/v1/chat/completions" > /dev/null
wrk -t2 -c32 -d5s -s "$work/post.lua" "$(url direct)/v1/chat/completions" > /dev/null

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000000}}'; }

declare -A rps p50
for r in $(seq 1 "$ROUNDS"); do
  for t in direct nginx llmproxy; do
    out=$(wrk -t2 -c32 -d${SECONDS_PER_RUN}s -s "$work/post.lua" "$(url $t)/v1/chat/completions")
    rps[$t]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
    lat=$(wrk -t1 -c1 -d${SECONDS_PER_RUN}s --latency -s "$work/post.lua" "$(url $t)/v1/chat/completions")
    p50[$t]+="$(echo "$lat" | awk '$1=="50%" {print $2}' | to_us) "
  done
done

echo "== (a) non-streaming throughput, wrk -t2 -c32, ${ROUNDS}x${SECONDS_PER_RUN}s interleaved"
for t in direct nginx llmproxy; do
  printf "%-9s req/s: %-40s median %s\n" "$t" "${rps[$t]}" "$(echo ${rps[$t]} | tr ' ' '\n' | median)"
done
m_ng=$(echo ${rps[nginx]} | tr ' ' '\n' | median); m_gw=$(echo ${rps[llmproxy]} | tr ' ' '\n' | median)
echo "llmproxy / nginx = $(awk -v a="$m_gw" -v b="$m_ng" 'BEGIN {printf "%.2f", a/b}')"
echo "== (b) latency, one connection (wrk -t1 -c1), p50 in microseconds"
for t in direct nginx llmproxy; do
  printf "%-9s p50 us: %-30s median %s\n" "$t" "${p50[$t]}" "$(echo ${p50[$t]} | tr ' ' '\n' | median)"
done
d=$(echo ${p50[direct]} | tr ' ' '\n' | median); g=$(echo ${p50[llmproxy]} | tr ' ' '\n' | median); n=$(echo ${p50[nginx]} | tr ' ' '\n' | median)
echo "added over direct at p50: llmproxy $(awk -v a="$g" -v b="$d" 'BEGIN {printf "%.0f", a-b}') us, nginx $(awk -v a="$n" -v b="$d" 'BEGIN {printf "%.0f", a-b}') us"

# Streaming: 1,000 concurrent streams, 100 tokens 20 ms apart (TTFT 100 ms at the backend).
kill $gw_pid; wait $gw_pid 2>/dev/null || true
bin/llmproxy --config "$work/gw-stream.yaml" > "$work/gw-stream.log" 2>&1 & gws_pid=$!; pids+=($gws_pid)
wait_port $GW_STREAM_PORT
bench() { local u=$1; shift; bin/llmproxy bench --url "$u" --stream -c 1000 -d "${SECONDS_PER_RUN}s" --warmup 5s --max-tokens 100 --json "$@"; }
bench "http://127.0.0.1:$GW_STREAM_PORT" > /dev/null # warm-up
bench "http://127.0.0.1:$GW_STREAM_PORT" > /dev/null
declare -A ttft99 ttft50 itl99 errs
rss_max=0
for r in $(seq 1 "$ROUNDS"); do
  for t in direct nginx llmproxy; do
    case $t in
      direct) j=$(bench "http://127.0.0.1:$STREAM_SIM_PORT");;
      nginx) j=$(bench "http://127.0.0.1:$NGINX_PORT" --path /stream/v1/chat/completions);;
      llmproxy) j=$(bench "http://127.0.0.1:$GW_STREAM_PORT");;
    esac
    ttft99[$t]+="$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ttft_ms"]["p99"])') "
    ttft50[$t]+="$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ttft_ms"]["p50"])') "
    itl99[$t]+="$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["itl_ms"]["p99"])') "
    errs[$t]+="$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"])') "
    if [ $t = llmproxy ]; then
      hwm=$(awk '/VmHWM/ {print $2}' /proc/$(pgrep -f "llmproxy.jar --config $work/gw-stream.yaml" | head -1)/status)
      [ "$hwm" -gt "$rss_max" ] && rss_max=$hwm
    fi
  done
done
echo "== (c) 1,000 concurrent streams, 100 tokens 20 ms apart, ${ROUNDS}x${SECONDS_PER_RUN}s interleaved (ms)"
for t in direct nginx llmproxy; do
  printf "%-9s ttft p50 %-28s ttft p99 %-28s median p99 %s; itl p99 %s; errors %s\n" "$t" "${ttft50[$t]}" "${ttft99[$t]}" \
    "$(echo ${ttft99[$t]} | tr ' ' '\n' | median)" "$(echo ${itl99[$t]} | tr ' ' '\n' | median)" "${errs[$t]}"
done
d99=$(echo ${ttft99[direct]} | tr ' ' '\n' | median)
echo "added p99 TTFT over direct: llmproxy $(awk -v a="$(echo ${ttft99[llmproxy]} | tr ' ' '\n' | median)" -v b="$d99" 'BEGIN {printf "%.1f", a-b}') ms, nginx $(awk -v a="$(echo ${ttft99[nginx]} | tr ' ' '\n' | median)" -v b="$d99" 'BEGIN {printf "%.1f", a-b}') ms"
echo "llmproxy peak RSS under 1,000 streams: $((rss_max / 1024)) MiB"
echo "(logs in $work)"
