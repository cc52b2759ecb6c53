#!/usr/bin/env bash
# Soak and held-connection runs of the release gateway (proxy path) against the nginx upstreams of
# scripts/bench.sh:
#   1. --soak SECONDS (default 300) of wrk at full speed (50 connections); resident memory sampled every
#      10 s; prints errors and the growth after a 30 s warm-up.
#   2. 10,000 keep-alive connections held for 30 s at ~5,000 req/s (wrk, one request per connection
#      every 2 s on average at random phases); prints p50/p99, errors and resident memory.
# Usage: scripts/soak.sh [--soak 300] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
soak=300
build=1
while (($#)); do
  case "$1" in
    --soak) soak=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bench_dir=$(cd ../shared/bench 2>/dev/null && pwd || echo "$PWD/scripts/bench")
((build)) && swift build -c release --product redfire-gateway >/dev/null
gateway_bin=$(swift build -c release --show-bin-path)/redfire-gateway
work=/tmp/redfire-bench
mkdir -p "$work"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cleanup() {
  [[ -f $work/upstream.pid ]] && kill "$(cat "$work/upstream.pid")" 2>/dev/null || true
  [[ -n ${gateway_pid:-} ]] && kill "$gateway_pid" 2>/dev/null || true
}
trap cleanup EXIT
nginx -c "$bench_dir/upstream-nginx.conf"
cat > "$work/soak.yaml" <<YAML
listen: 127.0.0.1:18085
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
start_gateway() {
  "$gateway_bin" serve --config "$work/soak.yaml" --log-level warning >"$work/soak.log" 2>&1 &
  gateway_pid=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18085) 2>/dev/null && return 0; sleep 0.05; done
  echo "gateway did not start" >&2; exit 1
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$gateway_pid/status"; }
url=http://127.0.0.1:18085/api/v1/trading/orders

start_gateway
echo "==> soak: ${soak}s of wrk -t1 -c50 (proxy path)"
wrk -t1 -c50 -d"${soak}s" --latency "$url" >"$work/soak-wrk.txt" 2>&1 &
wrk_pid=$!
samples=()
for ((t = 10; t <= soak; t += 10)); do
  sleep 10
  samples+=("$t:$(rss_mb)")
done
wait "$wrk_pid" || true
grep -E "requests in|Requests/sec|Non-2xx|Socket errors|99%" "$work/soak-wrk.txt" | sed 's/^/    /'
printf '    resident MB by time:'; for s in "${samples[@]}"; do printf ' %s' "${s#*:}"; done; echo
awk -v list="${samples[*]}" 'BEGIN {
  n = split(list, items, " "); first = 0
  for (i = 1; i <= n; i++) { split(items[i], kv, ":"); if (kv[1] >= 30 && first == 0) first = kv[2]; last = kv[2] }
  if (first > 0) printf "    growth after the 30 s warm-up: %+.1f%% (%.1f → %.1f MB)\n", (last - first) / first * 100, first, last
}'
kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true

start_gateway
echo "==> 10,000 held connections, ~5,000 req/s for 30 s"
cat > "$work/delay.lua" <<'LUA'
-- One request per connection every 2 s on average, at random phases: a steady rate, not bursts.
math.randomseed(os.time())
function delay()
  return math.random(0, 4000)
end
LUA
echo "    resident MB before: $(rss_mb)"
wrk -t2 -c10000 -d30s -s "$work/delay.lua" --latency "$url" 2>&1 | grep -E "requests in|Requests/sec|Non-2xx|Socket errors|50%|99%" | sed 's/^/    /'
echo "    resident MB after: $(rss_mb)"
