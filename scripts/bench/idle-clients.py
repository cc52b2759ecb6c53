#!/usr/bin/env python3
"""Opens N keep-alive connections to a proxy on 127.0.0.1, sends one GET on each, reads its response
whole, then holds them idle and prints the proxy's resident memory before and with them.

Usage: idle-clients.py PORT PATH COUNT PID  → "before_kb with_kb held"
"""
import asyncio
import sys


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


async def one(port, path, held):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(4096)
        if not chunk:
            raise ConnectionError("closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    while lengths and len(body) < lengths[0]:
        body += await reader.read(4096)
    held.append(writer)


async def main():
    port, path, count, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    before = rss_kb(pid)
    held, gate = [], asyncio.Semaphore(200)

    async def guarded():
        async with gate:
            await one(port, path, held)

    await asyncio.gather(*(guarded() for _ in range(count)))
    await asyncio.sleep(2)  # settled: nothing in flight
    print(before, rss_kb(pid), len(held))
    for writer in held:
        writer.close()


asyncio.run(main())
