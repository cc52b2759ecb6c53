#!/usr/bin/env bash
# Side-by-side throughput benchmark: direct upstream, HAProxy, nginx and the gateway (release build),
# all on 127.0.0.1, measured by wrk in one run. Prints req/s, p50, p99, errors, CPU µs per request for
# the proxy process, and the gateway's ratios to HAProxy and nginx. Read ratios, not absolute numbers:
# wrk, the upstream and the proxy share the machine.
#
# Usage: scripts/bench.sh [--duration 8s] [--connections 50] [--no-build]
# Needs wrk and nginx (upstream); HAProxy is measured when installed. As root, missing Debian packages
# (wrk nginx-light haproxy) are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
duration=8s
connections=50
build=1
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bench_dir=$(cd "$root/../shared/bench" 2>/dev/null && pwd || true)
if [[ -z "$bench_dir" || ! -f "$bench_dir/upstream-nginx.conf" ]]; then
  bench_dir="$root/scripts/bench"
fi

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || \
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; }
  fi
fi
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is required for the upstream (apt-get install nginx-light)" >&2; exit 1; }

if ((build)); then
  echo "==> building the gateway in release mode"
  swift build -c release --product redfire-gateway >/dev/null
fi
gateway_bin=$(swift build -c release --show-bin-path)/redfire-gateway

work=/tmp/redfire-bench
mkdir -p "$work"
pids=()
cleanup() {
  for f in upstream nginx-proxy haproxy; do
    [[ -f $work/$f.pid ]] && kill "$(cat "$work/$f.pid")" 2>/dev/null || true
    rm -f "$work/$f.pid"
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; return 1
}

nginx -c "$bench_dir/upstream-nginx.conf"
wait_port 19001; wait_port 19002

cat > "$work/gateway.yaml" <<YAML
listen: 127.0.0.1:18083
services:
  trading:
    instances:
      - url: http://127.0.0.1:19001
      - url: http://127.0.0.1:19002
routes:
  - prefix: /api/v1/trading
    service: trading
    strip_prefix: true
YAML
"$gateway_bin" serve --config "$work/gateway.yaml" --log-level warning >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_port 18083

cpu_ticks() { # utime + stime of the given pids, in clock ticks
  local total=0
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    local fields
    fields=$(sed 's/.*) //' "/proc/$pid/stat")
    set -- $fields
    total=$((total + ${12} + ${13}))
  done
  echo $total
}
ticks_per_second=$(getconf CLK_TCK)

results=()
measure() { # name url pids...
  local name=$1 url=$2; shift 2
  wrk -t1 -c"$connections" -d2s "$url" >/dev/null 2>&1 || true   # warm-up
  local before after out
  before=$(cpu_ticks "$@")
  out=$(wrk -t1 -c"$connections" -d"$duration" --latency "$url")
  after=$(cpu_ticks "$@")
  local rps p50 p99 requests non2xx sockerr cpu
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  sockerr=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out"); sockerr=${sockerr:-0}
  if (($# > 0)) && ((requests > 0)); then
    cpu=$(awk -v t=$((after - before)) -v hz="$ticks_per_second" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  else
    cpu="-"
  fi
  results+=("$name|$rps|$p50|$p99|$((non2xx + sockerr))|$cpu")
}

nginx_pids() { pgrep -f "nginx.*proxy-nginx.conf" | tr '\n' ' '; pgrep -P "$(cat $work/nginx-proxy.pid)" 2>/dev/null | tr '\n' ' '; }

measure "direct upstream" "http://127.0.0.1:19001/orders"
if command -v haproxy >/dev/null; then
  haproxy -f "$bench_dir/proxy-haproxy.cfg"; wait_port 18082
  measure "haproxy" "http://127.0.0.1:18082/api/v1/trading/orders" "$(cat $work/haproxy.pid)"
fi
nginx -c "$bench_dir/proxy-nginx.conf"; wait_port 18081
measure "nginx" "http://127.0.0.1:18081/api/v1/trading/orders" $(nginx_pids)
measure "redfire-gateway" "http://127.0.0.1:18083/api/v1/trading/orders" "$gateway_pid"

echo
echo "wrk -t1 -c$connections -d$duration, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-18s %12s %10s %10s %8s %12s\n' target req/s p50 p99 errors "CPU µs/req"
for row in "${results[@]}"; do
  IFS='|' read -r name rps p50 p99 errors cpu <<<"$row"
  printf '%-18s %12s %10s %10s %8s %12s\n' "$name" "$rps" "$p50" "$p99" "$errors" "$cpu"
done
gateway_rps=$(IFS='|' read -r _ rps _ <<<"${results[-1]}"; echo "$rps")
echo
for row in "${results[@]}"; do
  IFS='|' read -r name rps _ <<<"$row"
  [[ $name == haproxy || $name == nginx ]] || continue
  awk -v g="$gateway_rps" -v r="$rps" -v n="$name" 'BEGIN {printf "gateway / %-8s throughput ratio: %.2f\n", n, g / r}'
done
