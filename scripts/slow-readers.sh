#!/usr/bin/env bash
# Memory under slow readers (release gateway, proxy path): N clients (default 1,000) each download a
# 50 MB response at ~32 KB/s for 20 s, then all leave. Prints the gateway's resident memory before,
# at its peak while they read, and for 30 s after they left; the growth per reader; and whether memory
# came back within 20 % of the baseline.
#
# Usage: scripts/slow-readers.sh [--readers 1000] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
readers=1000
build=1
while (($#)); do
  case "$1" in
    --readers) readers=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v nginx >/dev/null || { echo "nginx is required (apt-get install nginx-light)" >&2; exit 1; }
((build)) && swift build -c release --product redfire-gateway >/dev/null
gateway_bin=$(swift build -c release --show-bin-path)/redfire-gateway
work=/tmp/redfire-bench
mkdir -p "$work"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cleanup() {
  [[ -f $work/big-upstream.pid ]] && kill "$(cat "$work/big-upstream.pid")" 2>/dev/null || true
  [[ -n ${gateway_pid:-} ]] && kill "$gateway_pid" 2>/dev/null || true
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 did not open" >&2; return 1
}

[[ -f $work/big.bin && $(stat -c %s "$work/big.bin") == 52428800 ]] || head -c 52428800 /dev/urandom > "$work/big.bin"
cat > "$work/big-upstream.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/big-upstream.pid;
error_log $work/big-upstream-error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.0.1:19011 backlog=4096; root $work; location / { } location = /health { return 200 "ok"; } }
}
CONF
nginx -c "$work/big-upstream.conf"
wait_port 19011
cat > "$work/slow.yaml" <<YAML
listen: 127.0.0.1:18087
services:
  files:
    instances:
      - url: http://127.0.0.1:19011
    timeouts: {idle: 120s}
routes:
  - prefix: /files
    service: files
    strip_prefix: true
YAML
"$gateway_bin" serve --config "$work/slow.yaml" --log-level warning >"$work/slow-gateway.log" 2>&1 &
gateway_pid=$!
wait_port 18087
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$gateway_pid/status"; }
curl -s -o /dev/null http://127.0.0.1:18087/files/big.bin --max-time 30   # one whole download: warm-up
sleep 2
baseline=$(rss_mb)
echo "==> $readers slow readers of a 50 MB response (~32 KB/s each for 20 s); baseline $baseline MB"

python3 - "$readers" <<'PY' &
import asyncio, sys
readers = int(sys.argv[1])
async def reader():
    r, w = await asyncio.open_connection("127.0.0.1", 18087, limit=1 << 16)
    w.write(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    await w.drain()
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    got = 0
    while loop.time() < end:
        chunk = await r.read(4096)
        if not chunk:
            break
        got += len(chunk)
        await asyncio.sleep(0.125)   # 4 KB every 125 ms: ~32 KB/s
    w.close()
    return got
async def main():
    results = []
    for start in range(0, readers, 100):   # connect in steps of 100
        results += [asyncio.create_task(reader()) for _ in range(start, min(readers, start + 100))]
        await asyncio.sleep(0.05)
    done = await asyncio.gather(*results, return_exceptions=True)
    ok = [d for d in done if isinstance(d, int) and d > 0]
    print(f"    readers that got bytes: {len(ok)} of {readers}; mean {sum(ok) / max(1, len(ok)) / 1024:.0f} KB read each (the rest of each 50 MB was never sent)")
asyncio.run(main())
PY
client=$!
peak=$baseline
for _ in $(seq 1 22); do
  sleep 1
  now=$(rss_mb)
  awk -v a="$now" -v b="$peak" 'BEGIN {exit !(a > b)}' && peak=$now
done
wait "$client" || true
echo "    peak while reading: $peak MB (growth $(awk -v p="$peak" -v b="$baseline" 'BEGIN {printf "%.1f MB, %.0f KB per reader", p - b, (p - b) * 1024 / '"$readers"'}'))"
printf '    after they left, MB by second:'
after=""
for second in $(seq 1 30); do
  sleep 1
  after=$(rss_mb)
  ((second % 5 == 0)) && printf ' %s@%ss' "$after" "$second"
done
echo
awk -v a="$after" -v b="$baseline" 'BEGIN {printf "    30 s after: %.1f MB, %+.0f%% of the baseline (target: within 20%%)\n", a, (a - b) / b * 100}'
echo "    $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
