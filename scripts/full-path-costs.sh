#!/usr/bin/env bash
# What each part of the full path costs, measured separately: four gateways (release build, one event
# loop each) over the nginx upstreams of scripts/bench.sh, adding one piece at a time —
#   proxy      routing, balancing, header policy, metrics
#   +auth      JWT verification (with the token cache) and the route's permission check
#   +limit     a rate-limit decision on every request (a limit no client reaches) and its response fields
#   +log       the access log written to a file (= bench.sh's "gateway full")
# measured by wrk in alternating rounds (the order reverses every round); prints each one's median CPU
# per request (user + system from /proc) and req/s, and what each piece adds.
#
# Usage: scripts/full-path-costs.sh [--rounds 5] [--duration 5s] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
duration=5s
build=1
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bench_dir=$(cd ../shared/bench 2>/dev/null && pwd || echo "$PWD/scripts/bench")
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "$tool is required (apt-get install wrk nginx-light curl)" >&2; exit 1; }; done
((build)) && swift build -c release --product redfire-gateway >/dev/null
gateway_bin=$(swift build -c release --show-bin-path)/redfire-gateway
work=/tmp/redfire-costs
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() {
  [[ -f $work/upstream.pid ]] && kill "$(cat "$work/upstream.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 did not open" >&2; return 1
}
sed "s#pid .*;#pid $work/upstream.pid;#" "$bench_dir/upstream-nginx.conf" > "$work/upstream.conf"
nginx -c "$work/upstream.conf"
wait_port 19001; wait_port 19002

secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
config() { # name port auth limit log
  {
    echo "listen: 127.0.0.1:$2"
    echo "event_loop_threads: 1"
    echo "data_dir: $work/data-$1"
    if (($3)); then
      printf 'auth:\n  jwt_secret: "%s"\n  bcrypt_cost: 4\n  access_token_ttl: 1h\n  roles:\n    trader: [trading:read, trading:write]\n' "$secret"
    fi
    if (($4)); then printf 'rate_limits:\n  default: {rate: 1000000/s, burst: 1000000}\n'; fi
    if (($5)); then printf 'access_log:\n  enabled: true\n  path: %s/access-%s.log\n' "$work" "$1"; fi
    printf 'services:\n  trading:\n    instances:\n      - url: http://127.0.0.1:19001\n      - url: http://127.0.0.1:19002\n'
    printf 'routes:\n  - prefix: /api/v1/trading\n    service: trading\n    strip_prefix: true\n'
    if (($3)); then printf '    permissions: {read: trading:read, write: trading:write}\n'; fi
  } > "$work/$1.yaml"
}
names=(proxy auth limit log)
config proxy 18191 0 0 0
config auth 18192 1 0 0
config limit 18193 1 1 0
config log 18194 1 1 1
declare -A pid_of port_of
port=18191
for name in "${names[@]}"; do
  if [[ $name != proxy ]]; then
    echo "load-test-secret-0123456789" | "$gateway_bin" users add bench --role trader --password-stdin --config "$work/$name.yaml" >/dev/null
  fi
  "$gateway_bin" serve --config "$work/$name.yaml" --log-level warning >"$work/$name.log" 2>&1 &
  pid_of[$name]=$!; pids+=("$!"); port_of[$name]=$port
  wait_port "$port"
  port=$((port + 1))
done
declare -A token_of
for name in auth limit log; do
  token_of[$name]=$(curl -s -X POST "http://127.0.0.1:${port_of[$name]}/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"load-test-secret-0123456789"}' | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [[ -n ${token_of[$name]} ]] || { echo "login to $name failed" >&2; exit 1; }
done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A cpus rates
for ((round = 1; round <= rounds; round++)); do
  order=("${names[@]}")
  ((round % 2)) || order=(log limit auth proxy)
  for name in "${order[@]}"; do
    url="http://127.0.0.1:${port_of[$name]}/api/v1/trading/orders"
    header=(); [[ $name != proxy ]] && header=(-H "Authorization: Bearer ${token_of[$name]}")
    wrk -t1 -c50 -d1s "${header[@]}" "$url" >/dev/null 2>&1 || true
    before=$(cpu "${pid_of[$name]}")
    out=$(wrk -t1 -c50 -d"$duration" "${header[@]}" "$url")
    after=$(cpu "${pid_of[$name]}")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [[ -n $non2xx ]] && { echo "$name: $non2xx non-2xx answers" >&2; exit 1; }
    us=$(awk -v a="$after" -v b="$before" -v t="$ticks" -v n="$requests" 'BEGIN {printf "%.1f", (a - b) / t * 1e6 / n}')
    rate=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
    cpus[$name]+="$us "; rates[$name]+="$rate "
    printf '  round %d %-6s %7s req/s  %6s µs/req\n' "$round" "$name" "$rate" "$us"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo
echo "full path by piece, wrk -t1 -c50 -d$duration, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), medians of $rounds rounds"
printf '%-8s %10s %12s %12s\n' gateway "req/s" "CPU µs/req" "adds µs"
previous=
for name in "${names[@]}"; do
  m=$(median <<<"${cpus[$name]}")
  adds=-; [[ -n $previous ]] && adds=$(awk -v a="$m" -v b="$previous" 'BEGIN {printf "%+.1f", a - b}')
  printf '%-8s %10s %12s %12s\n' "${name/#auth/+auth}" "$(median <<<"${rates[$name]}")" "$m" "$adds" | sed -e 's/^limit /+limit/' -e 's/^log   /+log  /'
  previous=$m
done
