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

wait_ready() { # url: polls every 10 ms, up to 20 s
  for _ in $(seq 1 2000); do curl -sf -o /dev/null "$1" && return 0; sleep 0.01; done
  echo "$1 never answered" >&2; exit 1
}

# a simulated backend on a port, its log in $work
sim() { bin/llmproxy simulate --port "$1" "${@:2}" > "$work/sim-$1.log" 2>&1 & pids+=($!); }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# jget JSON OBJECT KEY: a number from llmproxy bench --json ("" for a top-level KEY)
jget() {
  if [ -z "$2" ]; then echo "$1" | sed -E "s/.*\"$3\":([-0-9.eE+]+|true|false).*/\1/"
  else echo "$1" | sed -E "s/.*\"$2\":\{[^}]*\"$3\":([-0-9.eE+]+).*/\1/"; fi
}

# per-target values collected as "v1 v2 ..." in an associative array: their median, or the list
vals() { local -n arr=$1; echo "${arr[$2]:-}" | median; }
each() { local -n arr=$1; echo "${arr[$2]:-}" | xargs; }
