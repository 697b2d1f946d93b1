# Helpers shared by the benchmark scripts (sourced; they set $work, a scratch directory, first).
# Processes started with `& pids+=($!)` and an nginx writing $work/nginx.pid are stopped on exit.

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

wait_ready() { # url [curl arguments]: polls every 10 ms, up to 20 s
  for _ in $(seq 1 2000); do curl -sf -o /dev/null "${@:2}" "$1" && return 0; sleep 0.01; done
  echo "$1 never answered" >&2; exit 1
}

# nginx as a reverse proxy (keep-alive upstreams, proxy_buffering off), one server for each
# BACKEND_PORT:LISTEN_PORT[:KEEPALIVE] argument (KEEPALIVE idle upstream connections kept, 1024 unless
# told); its config and logs in $work
nginx_proxy() {
  local upstreams="" servers="" spec backend listen keep
  for spec in "$@"; do
    IFS=: read -r backend listen keep <<< "$spec"
    upstreams+="  upstream b$backend { server 127.0.0.1:$backend; keepalive ${keep:-1024}; }"$'\n'
    servers+="  server { listen 127.0.0.1:$listen backlog=16384; location / { proxy_pass http://b$backend; } }"$'\n'
  done
  cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
worker_rlimit_nofile 65536;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 30000; }
http {
  access_log $work/nginx-access.log;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
$upstreams  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_buffering off;
  proxy_request_buffering off;
  proxy_read_timeout 300s;
$servers}
NGINX
  nginx -c "$work/nginx.conf"
}

# a simulated backend on a port, its log in $work
sim() { bin/llmproxy simulate --port "$1" "${@:2}" > "$work/sim-$1.log" 2>&1 & pids+=($!); }

# bench_json ARGS: llmproxy bench with its JSON result on stdout and its errors in $work/bench-errors.log;
# `bench` is the same, for scripts whose runs share no arguments (auth.sh and hedge.sh redefine it)
bench_json() { bin/llmproxy bench --json --no-progress "$@" 2>>"$work/bench-errors.log"; }
bench() { bench_json "$@"; }

# open_loop_warmup URL MODEL SECONDS: an open loop at 10,000 requests/s, not measured. After a closed
# loop the first open loop sets off a burst of compilation (some 470 methods in 6 s after 30 s of wrk),
# so a target is warmed up with both shapes before an open loop is measured.
open_loop_warmup() {
  bench_json --url "$1" --model "$2" --rate 10000 -c 64 -d "$3s" --warmup 0s --ramp-up 3s --max-tokens 16 > /dev/null
}

# ratio A B [DECIMALS]: A / B, 2 decimals unless told
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {printf "%.*f", d, a/b}'; }

# metric PORT PREFIX: the sum of the Prometheus samples on PORT's /metrics whose line starts with PREFIX
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {printf "%.0f", s}'; }

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# jget JSON OBJECT KEY: a number from llmproxy bench --json ("" for a top-level KEY)
jget() {
  if [ -z "$2" ]; then echo "$1" | sed -E "s/.*\"$3\":([-0-9.eE+]+|true|false).*/\1/"
  else echo "$1" | sed -E "s/.*\"$2\":\{[^}]*\"$3\":([-0-9.eE+]+).*/\1/"; fi
}

# per-target values collected as "v1 v2 ..." in an associative array: their median, or the list
vals() { local -n arr=$1; echo "${arr[$2]:-}" | median; }
each() { local -n arr=$1; echo "${arr[$2]:-}" | xargs; }
