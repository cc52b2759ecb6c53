#!/usr/bin/env bash
# Latency as a separate client sees it while 10,000 keep-alive connections are held, side by side with
# nginx and HAProxy as proxies (release gateway, proxy path, all on 127.0.0.1).
#
# Each round, for one target: wrk holds 10,000 connections that send one request every ~2 s at random
# phases (~4,500 req/s in all); after they are established, a separate probe (another wrk, 10
# connections, one request per connection every 10 ms) measures p50/p99 for 15 s. Reported per target,
# as medians over the rounds (targets alternate: nginx, HAProxy, gateway, nginx, …): probe p50 and p99,
# the held load's req/s, resident memory of the proxy with the connections held, and memory per held
# connection (resident with them minus before, over 10,000).
#
# --idle: memory only — 10,000 keep-alive connections each make one request and then stay idle
# (scripts/bench/idle-clients.py); per target, resident memory before and with them, KB per idle
# connection, medians over the rounds, and the gateway's ratio to HAProxy's.
#
# Usage: scripts/held.sh [--rounds 3] [--no-build] [--idle]
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$PWD
rounds=3
build=1
idle=0
while (($#)); do
  case "$1" in
    --idle) idle=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bench_dir=$(cd ../shared/bench 2>/dev/null && pwd || echo "$PWD/scripts/bench")
for tool in wrk nginx haproxy; do command -v $tool >/dev/null || { echo "$tool is required (apt-get install wrk nginx-light haproxy)" >&2; exit 1; }; done
((build)) && swift build -c release --product redfire-gateway >/dev/null
gateway_bin=$(swift build -c release --show-bin-path)/redfire-gateway
work=/tmp/redfire-bench
mkdir -p "$work"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
target_pid=
cleanup() {
  for f in upstream nginx-proxy haproxy-held; do
    [[ -f $work/$f.pid ]] && kill "$(cat "$work/$f.pid")" 2>/dev/null || true
    rm -f "$work/$f.pid"
  done
  [[ -n ${gateway_pid:-} ]] && kill "$gateway_pid" 2>/dev/null || true
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 did not open" >&2; return 1
}

nginx -c "$bench_dir/upstream-nginx.conf"
wait_port 19001
# HAProxy as in the shared reference, with room for 10,000 clients (its descriptor estimate, two per
# client, exceeds a hard limit of 20,000; with connection reuse it needs far fewer).
sed -e 's/maxconn 8000/maxconn 10020\n  no strict-limits/' -e "s#/tmp/redfire-bench/haproxy.pid#$work/haproxy-held.pid#" "$bench_dir/proxy-haproxy.cfg" > "$work/haproxy-held.cfg"
cat > "$work/held.yaml" <<YAML
listen: 127.0.0.1:18086
event_loop_threads: 1
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
cat > "$work/held.lua" <<'LUA'
-- One request per connection every 2 s on average, at random phases: a steady rate, not bursts.
math.randomseed(os.time())
function delay() return math.random(0, 4000) end
LUA
cat > "$work/probe.lua" <<'LUA'
function delay() return 10 end
LUA

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0; else if (v ~ /s$/) printf "%.3f", v * 1000; else print 0 }'; }

start() { # target → sets target_pid, url
  case $1 in
    nginx)
      nginx -c "$bench_dir/proxy-nginx.conf"; wait_port 18081
      target_pid=$(pgrep -P "$(cat $work/nginx-proxy.pid)" | head -1)
      url=http://127.0.0.1:18081/api/v1/trading/orders ;;
    haproxy)
      haproxy -f "$work/haproxy-held.cfg"; wait_port 18082
      target_pid=$(cat "$work/haproxy-held.pid")
      url=http://127.0.0.1:18082/api/v1/trading/orders ;;
    gateway)
      "$gateway_bin" serve --config "$work/held.yaml" --log-level warning >"$work/held-gateway.log" 2>&1 &
      gateway_pid=$!
      wait_port 18086
      target_pid=$gateway_pid
      url=http://127.0.0.1:18086/api/v1/trading/orders ;;
  esac
}
stop() {
  case $1 in
    nginx) kill "$(cat $work/nginx-proxy.pid)"; rm -f "$work/nginx-proxy.pid" ;;
    haproxy) kill "$(cat $work/haproxy-held.pid)"; rm -f "$work/haproxy-held.pid" ;;
    gateway) kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true; gateway_pid= ;;
  esac
  sleep 1
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

if ((idle)); then
  declare -A idle_rss idle_per
  for ((round = 1; round <= rounds; round++)); do
    for target in nginx haproxy gateway; do
      start $target
      wrk -t1 -c20 -d1s "$url" >/dev/null 2>&1 || true   # warm-up (upstream connections)
      hostless=${url#http://127.0.0.1:}
      read -r before with held < <(python3 "$root_dir/scripts/bench/idle-clients.py" "${hostless%%/*}" "/${hostless#*/}" 10000 "$target_pid" 2>&1 \
        | tail -1 | awk 'NF == 3 {print $1, $2, $3; next} {print 0, 0, 0}')
      printf '  round %d %-8s %5s idle connections  rss %7.1f → %7.1f MB  %.2f KB each\n' "$round" "$target" "$held" \
        "$(awk -v k="$before" 'BEGIN {print k / 1024}')" "$(awk -v k="$with" 'BEGIN {print k / 1024}')" "$(awk -v a="$with" -v b="$before" -v n="$held" 'BEGIN {print n ? (a - b) / n : 0}')"
      idle_rss[$target]+="$(awk -v k="$with" 'BEGIN {printf "%.1f", k / 1024}') "
      idle_per[$target]+="$(awk -v a="$with" -v b="$before" -v n="$held" 'BEGIN {printf "%.2f", n ? (a - b) / n : 0}') "
      stop $target
    done
  done
  echo
  echo "10,000 idle keep-alive connections (one request each, then held), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), medians of $rounds rounds"
  printf '%-8s %10s %14s\n' target "RSS MB" "KB/connection"
  for target in nginx haproxy gateway; do
    printf '%-8s %10s %14s\n' $target "$(median <<<"${idle_rss[$target]}")" "$(median <<<"${idle_per[$target]}")"
  done
  gm=$(median <<<"${idle_per[gateway]}"); hm=$(median <<<"${idle_per[haproxy]}")
  awk -v g="$gm" -v h="$hm" 'BEGIN {if (h > 0) printf "gateway memory per idle connection: %.2f× HAProxy\n", g / h}'
  exit 0
fi

declare -A p50s p99s rates rsss perconn errors
for ((round = 1; round <= rounds; round++)); do
  for target in nginx haproxy gateway; do
    start $target
    wrk -t1 -c20 -d1s "$url" >/dev/null 2>&1 || true   # warm-up (upstream connections)
    before=$(rss_kb "$target_pid")
    wrk -t1 -c10000 -d27s --timeout 10s -s "$work/held.lua" "$url" >"$work/held-wrk.txt" 2>&1 &
    held_wrk=$!
    sleep 8   # the 10,000 connections are established and in their steady rhythm
    probe=$(wrk -t1 -c10 -d15s --timeout 10s -s "$work/probe.lua" --latency "$url" 2>&1)
    with=$(rss_kb "$target_pid")
    wait "$held_wrk" || true
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$probe")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$probe")")
    rate=$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/held-wrk.txt")
    err=$(cat "$work/held-wrk.txt" <(echo "$probe") | awk -F'[ ,]+' '/Non-2xx/ {n += $NF} /Socket errors/ {n += $4 + $6 + $8 + $10} END {print n + 0}')
    p50s[$target]+="$p50 "; p99s[$target]+="$p99 "; rates[$target]+="$rate "
    rsss[$target]+="$(awk -v k="$with" 'BEGIN {printf "%.1f", k / 1024}') "
    perconn[$target]+="$(awk -v a="$with" -v b="$before" 'BEGIN {printf "%.1f", (a - b) / 10000}') "
    errors[$target]+="$err "
    printf '  round %d %-8s probe p50 %7.3f ms  p99 %8.3f ms  held %5s req/s  rss %7.1f MB  errors %s\n' \
      "$round" "$target" "$p50" "$p99" "$rate" "$(awk -v k="$with" 'BEGIN {print k / 1024}')" "$err"
    stop $target
  done
done

echo
echo "10,000 held connections (~4,500 req/s) + probe (10 connections, 1 request / 10 ms each), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), medians of $rounds rounds"
printf '%-8s %12s %12s %12s %10s %14s %8s\n' target "probe p50" "probe p99" "held req/s" "RSS MB" "KB/connection" errors
for target in nginx haproxy gateway; do
  printf '%-8s %9s ms %9s ms %12s %10s %14s %8s\n' $target "$(median <<<"${p50s[$target]}")" "$(median <<<"${p99s[$target]}")" \
    "$(median <<<"${rates[$target]}")" "$(median <<<"${rsss[$target]}")" "$(median <<<"${perconn[$target]}")" "$(tr ' ' '+' <<<"${errors[$target]}" | sed 's/+$//' | bc)"
done
g=$(median <<<"${p99s[gateway]}"); n=$(median <<<"${p99s[nginx]}"); h=$(median <<<"${p99s[haproxy]}")
awk -v g="$g" -v n="$n" -v h="$h" 'BEGIN {printf "gateway probe p99: %.2f× nginx, %.2f× HAProxy\n", g / n, g / h}'
gm=$(median <<<"${perconn[gateway]}"); hm=$(median <<<"${perconn[haproxy]}")
awk -v g="$gm" -v h="$hm" 'BEGIN {if (h > 0) printf "gateway memory per held connection: %.2f× HAProxy\n", g / h}'
