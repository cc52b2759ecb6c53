#!/usr/bin/env bash
# Side-by-side throughput benchmark: direct upstream, HAProxy, nginx and the gateway (release build),
# all on 127.0.0.1, measured by wrk in one run. Prints req/s, p50, p99, errors, CPU µs per request for
# the proxy process, and the gateway's ratios to HAProxy and nginx. Read ratios, not absolute numbers:
# wrk, the upstream and the proxy share the machine.
#
# Rounds: every target is measured once per round, in an order that alternates between rounds
# (HAProxy, gateway proxy, nginx, gateway full; then the reverse), so the machine's drift over the
# minutes reaches all of them alike; the table holds each target's median over the rounds, and the
# ratios are ratios of medians. The cluster and N-thread rows are measured once, after the rounds.
#
# TLS rows (the same proxy path behind TLS termination, HAProxy configured the same way: one thread,
# keep-alive, `alpn h2,http/1.1`): "https" is HTTP/1.1 over TLS (wrk), "h2" is HTTP/2 to the proxy
# (h2load, 10 streams per connection; its latency columns are 0: h2load prints no percentiles) —
# both in the alternating rounds; "handshakes" is new TLS connections per second (wrk with
# `Connection: close`: one full handshake per request), measured once after the rounds. The
# certificate is a throw-away ECDSA P-256 one made by openssl. h2load comes from nghttp2-client.
#
# WebSocket rows (HAProxy relaying the same way, scripts/bench/proxy-haproxy-ws.cfg; an echo server and a
# load client of our own, redfire-ws-load, on SwiftNIO): "ws" is messages echoed per second through the
# proxy, 50 connections each sending its next 64-byte message as soon as the last came back, in the
# alternating rounds (CPU per echo: two messages relayed); "ws held" is once after the rounds —
# --ws-held WebSockets (9,000: two descriptors each in a proxy, under a 20,000 limit) held at once, each sending a message a second, with the proxy's resident
# memory and the round-trip latency.
#
# Traced rows: the proxy path with `tracing` on, sampling 1 % and 100 % of new traces, exporting to an
# OTLP sink (nginx answering 200, scripts/bench/otlp-sink-nginx.conf), in the alternating rounds — the
# tracing issue's cost budget (CPU per request +3 % at 1 %, +15 % at 100 %) against "gateway proxy".
#
# Usage: scripts/bench.sh [--rounds 3] [--duration 8s] [--connections 50] [--no-build] [--binary PATH]
#                         [--ws-held 9000] [--no-websocket] [--only "proxy traced-1 traced-100"]
# The "nio relay" rows are the floor of a proxy on SwiftNIO (redfire-ws-load relay, see measure_target).
# --only measures just the named rows in the alternating rounds (haproxy nginx relay relay-task relay-parse proxy full traced-1
# traced-100 https haproxy-https h2 haproxy-h2 ws haproxy-ws): a quick A/B; no handshake, held-WebSocket,
# cluster or Nt rows.
# --binary measures another gateway build (an A/B of two commits: build each, copy the binaries, alternate).
# Needs wrk and nginx (upstream); HAProxy is measured when installed, and the gateway in cluster mode
# when PostgreSQL's server is. As root, missing Debian packages
# (wrk nginx-light haproxy nghttp2-client) are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
duration=8s
connections=50
rounds=3
build=1
gateway_bin=
ws_held=9000
websocket=1
only=
while (($#)); do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --ws-held) ws_held=$2; shift 2 ;;
    --no-websocket) websocket=0; shift ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --binary) gateway_bin=$2; build=0; shift 2 ;;
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
command -v h2load >/dev/null || missing+=(nghttp2-client)
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
  swift build -c release --product redfire-ws-load >/dev/null
fi
[[ -n $gateway_bin ]] || gateway_bin=$(swift build -c release --show-bin-path)/redfire-gateway
ws_load=$(dirname "$gateway_bin")/redfire-ws-load
[[ -x $ws_load ]] || ws_load=$(swift build -c release --show-bin-path)/redfire-ws-load
if ((websocket)) && [[ ! -x $ws_load ]]; then echo "no $ws_load: build it (swift build -c release --product redfire-ws-load) or pass --no-websocket" >&2; exit 1; fi
have_relay=0
[[ -x $ws_load ]] && have_relay=1

work=/tmp/redfire-bench
mkdir -p "$work"
# Held WebSockets take two descriptors each in a proxy (client and instance side), more than a default
# limit allows: raise it for everything started from here (as root, the hard limit too).
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pids=()
cleanup() {
  for f in upstream nginx-proxy haproxy haproxy-tls haproxy-ws otlp-sink; do
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

upstreams='services:
  trading:
    instances:
      - url: http://127.0.0.1:19001
      - url: http://127.0.0.1:19002'
# One event loop, as HAProxy (nbthread 1) and nginx (one worker) run here: the same number of threads
# for every proxy. "gateway proxy Nt" is the proxy path with the default, one event loop per core.
# Proxy path: routing, balancing, header policy, metrics; no auth, no rate limit.
cat > "$work/gateway.yaml" <<YAML
listen: 127.0.0.1:18083
event_loop_threads: 1
$upstreams
routes:
  - prefix: /api/v1/trading
    service: trading
    strip_prefix: true
YAML
# Full path: the same, plus JWT verification, the route's permission check, a rate-limit decision on
# every request (a limit no client reaches) and the access log written to a file.
rm -rf "$work/data" "$work/access.log"
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
cat > "$work/gateway-full.yaml" <<YAML
listen: 127.0.0.1:18084
event_loop_threads: 1
data_dir: $work/data
auth:
  jwt_secret: "$secret"
  bcrypt_cost: 4
  access_token_ttl: 1h
  roles:
    trader: [trading:read, trading:write]
rate_limits:
  default: {rate: 1000000/s, burst: 1000000}
access_log:
  enabled: true
  path: $work/access.log
$upstreams
routes:
  - prefix: /api/v1/trading
    service: trading
    strip_prefix: true
    permissions: {read: trading:read, write: trading:write}
YAML
# TLS: the proxy path behind a TLS listener (HTTP/2 offered), and HAProxy terminating TLS the same way.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$work/tls.key"
cat "$work/tls.crt" "$work/tls.key" > "$work/tls.pem"
cat > "$work/gateway-tls.yaml" <<YAML
listeners:
  - address: 127.0.0.1:18085
    tls:
      certificates:
        - {cert: $work/tls.crt, key: $work/tls.key}
event_loop_threads: 1
$upstreams
routes:
  - prefix: /api/v1/trading
    service: trading
    strip_prefix: true
YAML
sed -e 's|pidfile .*|pidfile '"$work"'/haproxy-tls.pid|' \
    -e 's|bind 127.0.0.1:18082.*|bind 127.0.0.1:18086 ssl crt '"$work"'/tls.pem alpn h2,http/1.1|' \
    "$bench_dir/proxy-haproxy.cfg" > "$work/haproxy-tls.cfg"
have_h2load=0
command -v h2load >/dev/null && have_h2load=1

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
wrk_headers=()
measure() { # name url pids...
  local name=$1 url=$2; shift 2
  wrk -t1 -c"$connections" -d2s "${wrk_headers[@]}" "$url" >/dev/null 2>&1 || true   # warm-up
  local before after out
  before=$(cpu_ticks "$@")
  out=$(wrk -t1 -c"$connections" -d"$duration" --latency "${wrk_headers[@]}" "$url")
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
  printf '  %-18s %12s req/s  p50 %-9s p99 %-9s CPU %s µs/req\n' "$name" "$rps" "$p50" "$p99" "$cpu"
}

measure_h2() { # name url pids... — HTTP/2 with h2load: req/s, errors, CPU (no latency percentiles)
  local name=$1 url=$2; shift 2
  h2load -c"$connections" -m10 -D2 "$url" >/dev/null 2>&1 || true   # warm-up
  local before after out
  before=$(cpu_ticks "$@")
  out=$(h2load -c"$connections" -m10 -D"${duration%s}" "$url" 2>&1)
  after=$(cpu_ticks "$@")
  local rps done failed cpu
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")
  done=$(awk '/^requests:/ {print $8}' <<<"$out")
  failed=$(awk '/^requests:/ {print $10 + $12}' <<<"$out")
  cpu=$(awk -v t=$((after - before)) -v hz="$ticks_per_second" -v n="${done:-0}" 'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-"}')
  results+=("$name|${rps:-0}|0us|0us|${failed:-0}|$cpu")
  printf '  %-18s %12s req/s  %-25s CPU %s µs/req\n' "$name" "${rps:-0}" "(h2load: no percentiles)" "$cpu"
}

ws_connections=50
measure_ws() { # name url interval-ms connections seconds pids... — WebSocket echoes through the proxy
  local name=$1 url=$2 interval=$3 count=$4 seconds=$5; shift 5
  local before after out rate p50 p99 failed received cpu rss
  before=$(cpu_ticks "$@")
  out=$("$ws_load" run --url "$url" --connections "$count" --interval-ms "$interval" --duration "$seconds" 2>&1 | tail -1)
  after=$(cpu_ticks "$@")
  rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status" 2>/dev/null || echo 0)
  json() { sed -n 's/.*"'"$1"'":\([^,}]*\).*/\1/p' <<<"$out" | tr -d '"'; }
  rate=$(json rate); p50=$(json p50_us); p99=$(json p99_us); failed=$(json failed); received=$(json received)
  cpu=$(awk -v t=$((after - before)) -v hz="$ticks_per_second" -v n="${received:-0}" 'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-"}')
  local errors=$(( ${failed:-1} + ($(json open || echo 0) < count ? 1 : 0) ))
  results+=("$name|${rate:-0}|${p50:-0}us|${p99:-0}us|$errors|$cpu")
  printf '  %-18s %12s msg/s  p50 %-9s p99 %-9s CPU %s µs/echo  RSS %s MB  %s\n' "$name" "${rate:-0}" "${p50:-?}us" "${p99:-?}us" "$cpu" "$rss" \
    "$(sed -n 's/.*"error":"\([^"]*\)".*/error: \1/p' <<<"$out")"
  ws_rss["$name"]=$rss
}
declare -A ws_rss

nginx_pids() { pgrep -f "nginx.*proxy-nginx.conf" | tr '\n' ' '; pgrep -P "$(cat $work/nginx-proxy.pid)" 2>/dev/null | tr '\n' ' '; }

# Everything the rounds measure runs from the start, side by side.
have_haproxy=0
if command -v haproxy >/dev/null; then
  haproxy -f "$bench_dir/proxy-haproxy.cfg"; wait_port 18082; have_haproxy=1
fi
nginx -c "$bench_dir/proxy-nginx.conf"; wait_port 18081
"$gateway_bin" serve --config "$work/gateway.yaml" --log-level warning >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_port 18083
echo "load-test-secret-0123456789" | "$gateway_bin" users add bench --role trader --password-stdin --config "$work/gateway-full.yaml" >/dev/null
"$gateway_bin" serve --config "$work/gateway-full.yaml" --log-level warning >"$work/gateway-full.log" 2>&1 &
full_pid=$!
pids+=("$full_pid")
wait_port 18084
"$gateway_bin" serve --config "$work/gateway-tls.yaml" --log-level warning >"$work/gateway-tls.log" 2>&1 &
tls_pid=$!
pids+=("$tls_pid")
wait_port 18085
if ((have_haproxy)); then haproxy -f "$work/haproxy-tls.cfg"; wait_port 18086; fi
token=$(curl -s -X POST http://127.0.0.1:18084/api/v1/auth/login -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"load-test-secret-0123456789"}' | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n $token ]] || { echo "login to the full-path gateway failed" >&2; exit 1; }
# Traced gateways: the proxy path's configuration with tracing on, 1 % and 100 % of new traces.
nginx -c "$root/scripts/bench/otlp-sink-nginx.conf"; wait_port 19004
for traced in "1 18091 0.01" "100 18092 1"; do
  read -r percent port ratio <<<"$traced"
  { sed "s/^listen: .*/listen: 127.0.0.1:$port/" "$work/gateway.yaml"
    echo "tracing: {enabled: true, endpoint: \"http://127.0.0.1:19004/v1/traces\", sample_ratio: $ratio}"; } > "$work/gateway-traced-$percent.yaml"
  "$gateway_bin" serve --config "$work/gateway-traced-$percent.yaml" --log-level warning >"$work/gateway-traced-$percent.log" 2>&1 &
  pids+=("$!")
  declare "traced_pid_$percent=$!"
  wait_port "$port"
done
if ((websocket)); then
  "$ws_load" echo --port 19003 >"$work/ws-echo.log" 2>&1 &
  pids+=("$!")
  wait_port 19003
  cat > "$work/gateway-ws.yaml" <<YAML
listen: 127.0.0.1:18087
event_loop_threads: 1
services:
  echo:
    health_check: {enabled: false}
    instances:
      - url: http://127.0.0.1:19003
routes:
  - prefix: /ws
    service: echo
    websocket: {max_message_size: 65536, idle_timeout: 10m}
YAML
  "$gateway_bin" serve --config "$work/gateway-ws.yaml" --log-level warning >"$work/gateway-ws.log" 2>&1 &
  ws_pid=$!
  pids+=("$ws_pid")
  wait_port 18087
  if ((have_haproxy)); then
    sed -e 's|pidfile .*|pidfile '"$work"'/haproxy-ws.pid|' "$root/scripts/bench/proxy-haproxy-ws.cfg" > "$work/haproxy-ws.cfg"
    haproxy -f "$work/haproxy-ws.cfg"; wait_port 18088
  fi
  "$ws_load" run --url ws://127.0.0.1:18087/ws/echo --connections 10 --duration 2 >/dev/null 2>&1 || true   # warm-up
fi

# The floor: SwiftNIO relaying each connection's bytes to an upstream connection of its own, nothing
# parsed — through two handlers ("nio relay"), and through a task per connection on the gateway's own
# task executor, awaiting the request's bytes and then the response's ("nio relay task"). What the
# gateway costs above "nio relay task" is its own work per request, not SwiftNIO's or the tasks'.
# "nio relay parsing" adds the least a gateway does on the bytes: both messages parsed by the gateway's
# own parser (llhttp), the route's prefix matched and stripped, the fields copied on as bytes with Host,
# X-Forwarded-For/-Proto and a request ID added (the response's without Server, with the ID and a
# Content-Length). What the gateway costs above it is its data model, policies and telemetry.
if ((have_relay)); then
  "$ws_load" relay --port 18093 --upstreams 19001,19002 >"$work/relay.log" 2>&1 &
  relay_pid=$!
  pids+=("$relay_pid")
  "$ws_load" relay --port 18094 --upstreams 19001,19002 --through task >"$work/relay-task.log" 2>&1 &
  relay_task_pid=$!
  pids+=("$relay_task_pid")
  "$ws_load" relay --port 18095 --upstreams 19001,19002 --through parse >"$work/relay-parse.log" 2>&1 &
  relay_parse_pid=$!
  pids+=("$relay_parse_pid")
  wait_port 18093
  wait_port 18094
  wait_port 18095
fi

measure_target() {
  case $1 in
    relay) ((have_relay)) && measure "nio relay" "http://127.0.0.1:18093/api/v1/trading/orders" "$relay_pid" ;;
    relay-task) ((have_relay)) && measure "nio relay task" "http://127.0.0.1:18094/api/v1/trading/orders" "$relay_task_pid" ;;
    relay-parse) ((have_relay)) && measure "nio relay parsing" "http://127.0.0.1:18095/api/v1/trading/orders" "$relay_parse_pid" ;;
    haproxy) ((have_haproxy)) && measure "haproxy" "http://127.0.0.1:18082/api/v1/trading/orders" "$(cat $work/haproxy.pid)" ;;
    nginx) measure "nginx" "http://127.0.0.1:18081/api/v1/trading/orders" $(nginx_pids) ;;
    proxy) measure "gateway proxy" "http://127.0.0.1:18083/api/v1/trading/orders" "$gateway_pid" ;;
    traced-1) measure "gateway traced 1%" "http://127.0.0.1:18091/api/v1/trading/orders" "$traced_pid_1" ;;
    traced-100) measure "gateway traced 100%" "http://127.0.0.1:18092/api/v1/trading/orders" "$traced_pid_100" ;;
    haproxy-https) ((have_haproxy)) && measure "haproxy https" "https://127.0.0.1:18086/api/v1/trading/orders" "$(cat $work/haproxy-tls.pid)" ;;
    https) measure "gateway https" "https://127.0.0.1:18085/api/v1/trading/orders" "$tls_pid" ;;
    haproxy-h2) ((have_haproxy && have_h2load)) && measure_h2 "haproxy h2" "https://127.0.0.1:18086/api/v1/trading/orders" "$(cat $work/haproxy-tls.pid)" ;;
    h2) ((have_h2load)) && measure_h2 "gateway h2" "https://127.0.0.1:18085/api/v1/trading/orders" "$tls_pid" ;;
    haproxy-ws) ((have_haproxy && websocket)) && measure_ws "haproxy ws" ws://127.0.0.1:18088/ws/echo 0 "$ws_connections" "${duration%s}" "$(cat $work/haproxy-ws.pid)" ;;
    ws) ((websocket)) && measure_ws "gateway ws" ws://127.0.0.1:18087/ws/echo 0 "$ws_connections" "${duration%s}" "$ws_pid" ;;
    full)
      wrk_headers=(-H "Authorization: Bearer $token")
      measure "gateway full" "http://127.0.0.1:18084/api/v1/trading/orders" "$full_pid"
      wrk_headers=() ;;
  esac
}
measure "direct upstream" "http://127.0.0.1:19001/orders"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds ($(date -u +%H:%M:%SZ))"
  if ((round % 2)); then order="haproxy proxy relay-task relay-parse relay traced-1 traced-100 nginx full haproxy-https https haproxy-h2 h2 haproxy-ws ws"
  else order="ws haproxy-ws h2 haproxy-h2 https haproxy-https full nginx traced-100 traced-1 relay relay-parse relay-task proxy haproxy"; fi
  for target in $order; do [[ -z $only || " $only " == *" $target "* ]] && measure_target "$target"; done
done
if [[ -n $only ]]; then
  kill "$tls_pid" "$gateway_pid" "$full_pid" 2>/dev/null || true
  ((websocket)) && kill "$ws_pid" 2>/dev/null || true
fi
# New TLS connections per second: every request on a connection of its own.
if [[ -z $only ]]; then
wrk_headers=(-H "Connection: close")
((have_haproxy)) && measure "haproxy handshakes" "https://127.0.0.1:18086/api/v1/trading/orders" "$(cat $work/haproxy-tls.pid)"
measure "gateway handshakes" "https://127.0.0.1:18085/api/v1/trading/orders" "$tls_pid"
wrk_headers=()
kill "$tls_pid"; wait "$tls_pid" 2>/dev/null || true
# Held WebSockets: many at once, each a message a second — resident memory and latency under them.
if ((websocket)); then
  ((have_haproxy)) && measure_ws "haproxy ws held" ws://127.0.0.1:18088/ws/echo 1000 "$ws_held" 20 "$(cat $work/haproxy-ws.pid)"
  measure_ws "gateway ws held" ws://127.0.0.1:18087/ws/echo 1000 "$ws_held" 20 "$ws_pid"
  kill "$ws_pid"; wait "$ws_pid" 2>/dev/null || true
fi
kill "$gateway_pid" "$full_pid"; wait "$gateway_pid" "$full_pid" 2>/dev/null || true
rm -f "$work/access.log"

# Cluster mode: the proxy path's configuration with a cluster store (a throw-away PostgreSQL), one event
# loop — the row to compare with "gateway proxy": the proxy path touches no store, so its CPU per
# request should match; the store's own CPU over the run is printed below the table.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
pg_note=
if [[ -n $pg_bin && -x $pg_bin/initdb ]]; then
  as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  pg_dir=$(mktemp -d /tmp/redfire-bench-pg-XXXXXX); chmod 755 "$pg_dir"
  [[ $(id -u) == 0 ]] && chown postgres "$pg_dir"
  as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U redfire --auth=trust -E UTF8 --no-sync >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/pg.log" -w -o "-p 18090 -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg "$pg_bin/createdb" -h 127.0.0.1 -p 18090 -U redfire redfire
  { cat "$work/gateway.yaml"; echo 'cluster: {store: "postgres://redfire@127.0.0.1:18090/redfire", node_name: bench}'; } > "$work/gateway-cluster.yaml"
  "$gateway_bin" serve --config "$work/gateway-cluster.yaml" --log-level warning >"$work/gateway-cluster.log" 2>&1 &
  cluster_pid=$!
  pids+=("$cluster_pid")
  wait_port 18083
  pg_before=$(cpu_ticks $(pgrep -u postgres -f "postgres.*$pg_dir" ; pgrep -f "postgres: .*redfire" | tr '\n' ' '))
  measure "gateway cluster" "http://127.0.0.1:18083/api/v1/trading/orders" "$cluster_pid"
  pg_after=$(cpu_ticks $(pgrep -u postgres -f "postgres.*$pg_dir" ; pgrep -f "postgres: .*redfire" | tr '\n' ' '))
  pg_note="cluster store (PostgreSQL) CPU during the gateway cluster run: $(awk -v t=$((pg_after - pg_before)) -v hz="$ticks_per_second" 'BEGIN {printf "%.2f", t / hz}') s"
  kill "$cluster_pid"; wait "$cluster_pid" 2>/dev/null || true
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
else
  pg_note="no gateway cluster row: PostgreSQL's server is not installed (apt-get install postgresql)"
fi

grep -v '^event_loop_threads:' "$work/gateway.yaml" > "$work/gateway-nt.yaml"
"$gateway_bin" serve --config "$work/gateway-nt.yaml" --log-level warning >"$work/gateway-nt.log" 2>&1 &
nt_pid=$!
pids+=("$nt_pid")
wait_port 18083
measure "gateway proxy Nt" "http://127.0.0.1:18083/api/v1/trading/orders" "$nt_pid"
kill "$nt_pid"; wait "$nt_pid" 2>/dev/null || true
fi

to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%f", v / 1000; else if (v ~ /ms$/) printf "%f", v + 0; else if (v ~ /s$/) printf "%f", v * 1000; else print 0 }'; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# One row per target: medians over its measurements (latencies in ms), errors summed, and how many.
summary=()
for name in "direct upstream" haproxy nginx "nio relay" "nio relay task" "nio relay parsing" "gateway proxy" "gateway traced 1%" "gateway traced 100%" "gateway full" "gateway cluster" "gateway proxy Nt" \
            "haproxy https" "gateway https" "haproxy h2" "gateway h2" "haproxy handshakes" "gateway handshakes" \
            "haproxy ws" "gateway ws" "haproxy ws held" "gateway ws held"; do
  rows=()
  for row in "${results[@]}"; do [[ ${row%%|*} == "$name" ]] && rows+=("$row"); done
  ((${#rows[@]})) || continue
  col() { for row in "${rows[@]}"; do IFS='|' read -r _ rps p50 p99 errors cpu <<<"$row"; case $1 in
    rps) echo "$rps" ;; p50) to_ms "$p50"; echo ;; p99) to_ms "$p99"; echo ;; cpu) if [[ $cpu != - ]]; then echo "$cpu"; fi ;; errors) echo "$errors" ;; esac; done; true; }
  summary+=("$name|$(col rps | median)|$(col p50 | median)|$(col p99 | median)|$(col errors | awk '{s += $1} END {print s + 0}')|$(col cpu | median)|${#rows[@]}")
done

echo
echo "wrk -t1 -c$connections -d$duration, $(nproc) cores, $rounds rounds, $(date -u +%Y-%m-%dT%H:%MZ); medians over the rounds"
printf '%-18s %12s %10s %10s %8s %12s %7s\n' target req/s "p50 ms" "p99 ms" errors "CPU µs/req" rounds
for row in "${summary[@]}"; do
  IFS='|' read -r name rps p50 p99 errors cpu n <<<"$row"
  printf '%-18s %12.0f %10.3f %10.3f %8s %12s %7s\n' "$name" "$rps" "$p50" "$p99" "$errors" "$cpu" "$n"
done
[[ -n ${pg_note:-} ]] && echo "$pg_note"
echo
stat_of() { # name → median req/s, p99 ms, CPU µs/req
  for row in "${summary[@]}"; do
    IFS='|' read -r name rps _ p99 _ cpu _ <<<"$row"
    [[ $name == "$1" ]] && { echo "$rps $p99 $cpu"; return; }
  done
}
for gateway in "gateway proxy" "gateway full" "gateway proxy Nt"; do
  read -r grps gp99 gcpu <<<"$(stat_of "$gateway")"
  [[ -n $grps ]] || continue
  for reference in haproxy nginx; do
    read -r rrps rp99 rcpu <<<"$(stat_of "$reference")"
    [[ -n $rrps ]] || continue
    awk -v g="$grps" -v r="$rrps" -v gp="$gp99" -v rp="$rp99" -v gc="$gcpu" -v rc="$rcpu" -v n="$gateway" -v ref="$reference" \
      'BEGIN {printf "%-16s / %-8s throughput %.2f×   p99 %.2f×   CPU/req %s\n", n, ref, g / r, (rp > 0 ? gp / rp : 0), (rc + 0 > 0 && gc + 0 > 0 ? sprintf("%.2f×", gc / rc) : "-")}'
  done
done
for pair in "nio relay|haproxy" "nio relay task|haproxy" "nio relay parsing|haproxy" "gateway proxy|nio relay task" "gateway proxy|nio relay parsing" "gateway https|haproxy https" "gateway h2|haproxy h2" "gateway handshakes|haproxy handshakes" "gateway ws|haproxy ws"; do
  read -r grps gp99 gcpu <<<"$(stat_of "${pair%%|*}")"
  read -r rrps rp99 rcpu <<<"$(stat_of "${pair##*|}")"
  [[ -n $grps && -n $rrps ]] || continue
  awk -v g="$grps" -v r="$rrps" -v gc="$gcpu" -v rc="$rcpu" -v n="${pair%%|*}" -v ref="${pair##*|}" \
    'BEGIN {printf "%-18s / %-18s throughput %.2f×   CPU/req %s\n", n, ref, g / r, (rc + 0 > 0 && gc + 0 > 0 ? sprintf("%.2f×", gc / rc) : "-")}'
done
for name in "haproxy ws held" "gateway ws held"; do
  [[ -n ${ws_rss[$name]:-} ]] && printf '%-18s resident memory %s MB with %s WebSockets held\n' "$name" "${ws_rss[$name]}" "$ws_held"
done

read -r prps _ pcpu <<<"$(stat_of "gateway proxy")"
for name in "gateway traced 1%" "gateway traced 100%"; do
  read -r trps _ tcpu <<<"$(stat_of "$name")"
  [[ -n $trps && -n $prps ]] || continue
  awk -v t="$trps" -v p="$prps" -v tc="$tcpu" -v pc="$pcpu" -v n="$name" \
    'BEGIN {printf "%-20s / gateway proxy throughput %.2f×   CPU/req %+.1f %%\n", n, t / p, (pc > 0 ? (tc / pc - 1) * 100 : 0)}'
done
true
