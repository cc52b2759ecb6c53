#!/usr/bin/env bash
# A local RedFire cluster: one PostgreSQL, the five demo services, three gateways sharing the store, and
# HAProxy in front. Prints where to point curl and the consoles; Ctrl-C stops everything.
#
# HAProxy runs in HTTP mode: it balances per request (not per connection), so keep-alive clients spread
# over the gateways and a `split` rate limit sees even traffic; it checks each gateway's GET /ready; and
# it adds X-Forwarded-For, which the gateways trust from 127.0.0.1 (`trusted_proxies`), so per-client
# rate limits and the login throttle see the real client. (TCP mode would be the choice for end-to-end
# TLS to the gateways; they speak plain HTTP today.)
#
# Usage: scripts/cluster.sh [--no-build] [--binary PATH] [--port 8080] [--check]
# --binary runs another build of the gateway (a debug one, say); --check starts everything, checks that a
# drain made on one gateway reaches the others, that requests through HAProxy succeed — also under load
# while the gateway doing the cluster's housekeeping is killed with SIGKILL — that the killed one leaves
# the cluster view and its housekeeping falls to another, then stops.
# Needs: PostgreSQL's server (apt-get install postgresql) and HAProxy (apt-get install haproxy); as root,
# missing packages are installed. PostgreSQL runs as the `postgres` user when this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=1
front_port=8080
bin=
check=0
while (($#)); do
  case "$1" in
    --no-build) build=0; shift ;;
    --binary) bin=$2; build=0; shift 2 ;;
    --check) check=1; shift ;;
    --port) front_port=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
missing=()
[[ -n $pg_bin && -x $pg_bin/initdb ]] || missing+=(postgresql)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || \
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; }
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  else
    echo "missing: ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1
  fi
fi

if ((build)); then
  echo "==> building the gateway (release)"
  swift build -c release --product redfire-gateway >/dev/null
fi
[[ -n $bin ]] || bin=$(swift build -c release --show-bin-path)/redfire-gateway

work=$(mktemp -d /tmp/redfire-cluster-XXXXXX)
chmod 755 "$work"
pids=()
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  echo; echo "==> stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  echo "logs kept in $work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "==> PostgreSQL (initdb in $work/pg)"
mkdir -p "$work/pg" && [[ $(id -u) == 0 ]] && chown postgres "$work" "$work/pg"
pg_port=$(free_port)
as_pg "$pg_bin/initdb" -D "$work/pg" -U redfire --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U redfire redfire
store="postgres://redfire@127.0.0.1:$pg_port/redfire"

echo "==> demo services"
"$bin" demo-services --write-config "$work/services.yaml" >"$work/services.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/services.yaml ]] && break; sleep 0.1; done
[[ -s $work/services.yaml ]] || { echo "the demo services did not start (see $work/services.log)" >&2; exit 1; }

secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
admin_token=${REDFIRE_ADMIN_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
gateway_ports=()
gateway_pids=()
for name in node-a node-b node-c; do
  port=$(free_port)
  gateway_ports+=("$port")
  mkdir -p "$work/$name"
  {
    echo "listen: 127.0.0.1:$port"
    echo "data_dir: $work/$name"
    echo "trusted_proxies: [127.0.0.1/32]"
    echo "admin: {token: \"$admin_token\"}"
    echo "auth:"
    echo "  jwt_secret: \"$secret\""
    echo "  roles: {trader: [\"trading:*\", \"vnpy:read\", \"strategy:read\", \"adapter:read\", \"monitor:read\"], admin: [\"gateway:admin\"]}"
    echo "  public_paths: [/api/v1/auth/login, /api/v1/auth/register, /api/v1/auth/refresh, /health, /ready]"
    echo "  default_roles: [trader]"
    echo "cluster: {store: \"$store\", node_name: $name$( ((check)) && echo ", housekeeping_interval: 2s")}"
    # (--check sends more than one client's share through: every request is proxied, none limited.)
    if ((check)); then echo "rate_limits: {default: {rate: 10000/s, burst: 1000, scope: split}}"
    else echo "rate_limits: {default: {rate: 300/s, burst: 100, scope: split}}"; fi
    cat "$work/services.yaml"
  } >"$work/$name.yaml"
  "$bin" serve --config "$work/$name.yaml" --no-tui >"$work/$name.log" 2>&1 &
  pids+=($!)
  gateway_pids+=($!)
done
# A fourth configuration for a console of your own (node name `console`, any free port).
sed -e 's/^listen: .*/listen: 127.0.0.1:0/; s/node_name: node-a/node_name: console/; s#data_dir: .*#data_dir: '"$work"'/console#' \
  "$work/node-a.yaml" >"$work/console.yaml"
for port in "${gateway_ports[@]}"; do
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
done

echo "==> HAProxy on 127.0.0.1:$front_port (HTTP mode)"
{
  echo "global"
  echo "  maxconn 4096"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 2s"
  echo "  timeout client 60s"
  echo "  timeout server 60s"
  echo "  option forwardfor"
  echo "  option http-keep-alive"
  echo "  option redispatch"
  echo "  retries 3"
  echo "  retry-on all-retryable-errors"
  echo "frontend redfire"
  echo "  bind 127.0.0.1:$front_port"
  echo "  default_backend gateways"
  echo "backend gateways"
  echo "  balance roundrobin"
  echo "  option httpchk GET /ready"
  i=0
  for port in "${gateway_ports[@]}"; do
    echo "  server node-$i 127.0.0.1:$port check inter 1s fall 2 rise 2"
    i=$((i + 1))
  done
} >"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)

cat <<TEXT

RedFire cluster running (work directory $work):
  front door (HAProxy):  http://127.0.0.1:$front_port
  gateways:              node-a http://127.0.0.1:${gateway_ports[0]}   node-b http://127.0.0.1:${gateway_ports[1]}   node-c http://127.0.0.1:${gateway_ports[2]}
  cluster store:         $store
  admin token:           $admin_token

Try:
  curl -s -X POST localhost:$front_port/api/v1/auth/register -H 'Content-Type: application/json' -d '{"username":"alice","password":"correct-horse-battery"}'
  curl -s -X POST localhost:$front_port/api/v1/auth/login -H 'Content-Type: application/json' -d '{"username":"alice","password":"correct-horse-battery"}'
  curl -s -H "Authorization: Bearer $admin_token" localhost:${gateway_ports[0]}/gateway/cluster
  curl -s -X POST -H "Authorization: Bearer $admin_token" localhost:${gateway_ports[1]}/gateway/services/user_trading/instances/user_trading-1/drain
A console of your own, as a fourth node sharing the store (drain from it; the others follow):
  $bin serve --config $work/console.yaml
Ctrl-C stops everything.
TEXT

if ((check)); then
  echo "==> checking"
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$front_port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs -X POST "localhost:$front_port/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d '{"username":"alice","password":"correct-horse-battery"}' >/dev/null
  token=$(curl -fs -X POST "localhost:$front_port/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"alice","password":"correct-horse-battery"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  ok=0
  for _ in $(seq 30); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "localhost:$front_port/api/v1/trading/orders")
    [[ $code == 200 ]] && ok=$((ok + 1))
  done
  echo "30 requests through HAProxy with a token from the cluster: $ok answered 200"
  curl -fs -X POST -H "Authorization: Bearer $admin_token" \
    "localhost:${gateway_ports[0]}/gateway/services/user_trading/instances/user_trading-1/drain" >/dev/null
  seen=0
  for _ in $(seq 20); do
    state=$(curl -fs -H "Authorization: Bearer $admin_token" "localhost:${gateway_ports[2]}/gateway/services/user_trading" \
      | python3 -c 'import json,sys; print(next(i["state"] for i in json.load(sys.stdin)["instances"] if i["id"]=="user_trading-1"))')
    [[ $state == drain* ]] && { seen=1; break; }
    sleep 0.1
  done
  # Each gateway joins with its first heartbeat once it listens (cluster.heartbeat_interval, 1 s).
  for _ in $(seq 50); do
    nodes=$(curl -fs -H "Authorization: Bearer $admin_token" "localhost:${gateway_ports[1]}/gateway/cluster" \
      | python3 -c 'import json,sys; print(" ".join(n["name"] for n in json.load(sys.stdin)["nodes"]))')
    [[ $nodes == "node-a node-b node-c" ]] && break
    sleep 0.1
  done
  echo "drain on node-a seen on node-c: $([[ $seen == 1 ]] && echo yes || echo no); nodes alive: $nodes"
  [[ $ok == 30 && $seen == 1 && $nodes == "node-a node-b node-c" ]] || { echo "check failed" >&2; exit 1; }
  # kill -9 one gateway — the one doing the cluster's housekeeping — under load through HAProxy: 8
  # keep-alive clients for 6 s, the kill after 2. The others serve every request (HAProxy retries a
  # request the dead one took, `retry-on`), the killed node leaves every node's cluster view within its
  # timeout, and the next housekeeping run falls to a node alive.
  cluster_json() { curl -fs -H "Authorization: Bearer $admin_token" "localhost:${gateway_ports[0]}/gateway/cluster"; }
  victim=
  for _ in $(seq 50); do
    victim=$(cluster_json | python3 -c 'import json,sys; print((json.load(sys.stdin).get("housekeeping") or {}).get("node", ""))')
    [[ $victim == node-b || $victim == node-c ]] && break
    # node-a answers the checks; if it did the last run, wait for one by another node (every 2 s here).
    sleep 0.2
  done
  [[ $victim == node-b || $victim == node-c ]] || victim=node-b
  victim_pid=${gateway_pids[$([[ $victim == node-b ]] && echo 1 || echo 2)]}
  load=$(python3 - "$front_port" "$token" "$victim_pid" <<'PY'
import http.client, os, sys, threading, time
port, token, victim = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
counts, lock = {}, threading.Lock()
stop = time.time() + 6
def client():
    connection = None
    while time.time() < stop:
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/api/v1/trading/orders", headers={"Authorization": "Bearer " + token})
            response = connection.getresponse()
            response.read()
            outcome = str(response.status)
            if (response.getheader("Connection") or "").lower() == "close":
                connection.close()
                connection = None
        except Exception as error:
            outcome = "error:" + type(error).__name__
            connection = None
        with lock:
            counts[outcome] = counts.get(outcome, 0) + 1
threads = [threading.Thread(target=client) for _ in range(8)]
for thread in threads:
    thread.start()
time.sleep(2)
os.kill(victim, 9)
for thread in threads:
    thread.join()
failed = sum(n for outcome, n in counts.items() if outcome not in ("200", "429"))
print(f"{sum(counts.values())} {failed} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
PY
)
  read -r total failed outcomes <<<"$load"
  echo "$total requests through HAProxy by 8 clients in 6 s, $victim (doing housekeeping) killed with SIGKILL after 2 s: $failed failed ($outcomes)"
  departed=no
  for _ in $(seq 80); do
    alive=$(cluster_json | python3 -c 'import json,sys; print(" ".join(n["name"] for n in json.load(sys.stdin)["nodes"]))')
    [[ $alive != *"$victim"* && $(wc -w <<<"$alive") == 2 ]] && { departed=yes; break; }
    sleep 0.1
  done
  echo "$victim gone from node-a's /gateway/cluster within its timeout: $departed"
  moved=no
  for _ in $(seq 50); do
    runner=$(cluster_json | python3 -c 'import json,sys; print((json.load(sys.stdin).get("housekeeping") or {}).get("node", ""))')
    [[ -n $runner && $runner != "$victim" ]] && { moved=yes; break; }
    sleep 0.2
  done
  echo "the next housekeeping run by another node: $moved ($runner)"
  [[ $failed == 0 && $departed == yes && $moved == yes ]] || { echo "check failed" >&2; exit 1; }
  echo "check passed"
  exit 0
fi
wait
