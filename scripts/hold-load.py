#!/usr/bin/env python3
"""Steady-rate load over many held keep-alive connections, with the target process's memory.

Opens CONNECTIONS keep-alive connections to 127.0.0.1:PORT, then sends GET PATH at RATE requests/s in
total, spread evenly over the connections (each connection sends one request every CONNECTIONS/RATE
seconds, staggered), for DURATION seconds. Prints requests, errors, latency percentiles and, when
--pid is given, that process's resident memory sampled every second (start, after warm-up, peak, end).

    scripts/hold-load.py --port 18083 --path /api/v1/trading/orders \\
        --connections 10000 --rate 5000 --duration 30 --pid "$(pgrep -f 'redfire-gateway serve')"
"""
import argparse
import asyncio
import time


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def connection(index, args, shared, stats, start_gate):
    period = args.connections / args.rate
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    except OSError:
        stats["connect_errors"] += 1
        return
    stats["open"] += 1
    request = (f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
               + "".join(f"{h}\r\n" for h in args.header) + "\r\n").encode()
    await start_gate.wait()
    deadline = shared["deadline"]
    # Stagger: connection i fires at offset i/rate within each period.
    next_at = time.monotonic() + (index / args.rate) % period
    try:
        while True:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() >= deadline:
                break
            sent = time.monotonic()
            writer.write(request)
            status = await asyncio.wait_for(read_response(reader), timeout=10)
            stats["latencies"].append(time.monotonic() - sent)
            if status >= 400:
                stats["errors"] += 1
            next_at += period
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
        stats["errors"] += 1
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--header", action="append", default=[], help="extra header line, repeatable")
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5, help="seconds before the memory baseline")
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()

    stats = {"open": 0, "connect_errors": 0, "errors": 0, "latencies": []}
    gate = asyncio.Event()
    shared = {"deadline": None}
    memory_before = rss_mb(args.pid) if args.pid else None
    tasks = [asyncio.create_task(connection(i, args, shared, stats, gate)) for i in range(args.connections)]
    # All connections open (and held) before the first request.
    while stats["open"] + stats["connect_errors"] < args.connections:
        await asyncio.sleep(0.05)
    start = time.monotonic()
    shared["deadline"] = start + args.duration
    gate.set()
    samples = []
    while time.monotonic() < shared["deadline"]:
        await asyncio.sleep(1)
        if args.pid:
            samples.append((time.monotonic() - start, rss_mb(args.pid)))
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - start

    latencies = sorted(stats["latencies"])
    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")
    print(f"connections {args.connections} (failed to open: {stats['connect_errors']}), target rate {args.rate:.0f}/s, {args.duration:.0f}s")
    print(f"requests {len(latencies)}  ({len(latencies) / elapsed:.0f}/s)  errors {stats['errors']}")
    print(f"latency ms: p50 {pct(50):.2f}  p90 {pct(90):.2f}  p99 {pct(99):.2f}  p99.9 {pct(99.9):.2f}  max {latencies[-1] * 1000 if latencies else float('nan'):.2f}")
    if samples:
        warm = [mb for t, mb in samples if t >= args.warmup and mb is not None]
        values = [mb for _, mb in samples if mb is not None]
        if warm and values:
            growth = (warm[-1] - warm[0]) / warm[0] * 100
            print(f"resident MB: before load {memory_before:.1f}  after warm-up {warm[0]:.1f}  peak {max(values):.1f}  end {values[-1]:.1f}"
                  f"  growth after warm-up {growth:+.1f}%")


if __name__ == "__main__":
    asyncio.run(main())
