#!/usr/bin/env python3
"""Opens many idle TLS keep-alive connections to a proxy on 127.0.0.1 (for scripts/idle-conns.sh).

Each connection completes the TLS handshake and one GET (the whole response is read, and it
must be a 200 without "Connection: close"), then stays open and silent. With --slow-read RATE,
each connection reads its response's head, then its body at RATE bytes per second: slow
readers, each with a response in flight in the proxy. Output on stdout:
  OPENED ok=N failed=M seconds=T [first_error=...]   once every connection has been tried
  ALIVE n                                              on SIGUSR1: connections not closed by the server
Closes everything and exits on SIGTERM/SIGINT, or by itself after --hold seconds.
"""
import argparse
import asyncio
import math
import signal
import socket
import ssl
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--path", default="/1k")
    ap.add_argument("--concurrency", type=int, default=100, help="handshakes in flight at once")
    ap.add_argument("--hold", type=float, default=600, help="exit by itself after this many seconds")
    ap.add_argument("--open-timeout", type=float, default=300, help="give up opening after this many seconds")
    ap.add_argument("--slow-read", type=int, default=0,
                    help="read each response body at this many bytes per second (0: at once)")
    ap.add_argument("--source-ips", type=int, default=0,
                    help="spread over 127.0.0.1..127.0.0.K (default: one per 15000 connections)")
    return ap.parse_args()


async def open_one(i, a, ctx, sips, conns, stats, sem):
    async with sem:
        try:
            loop = asyncio.get_running_loop()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                if sips > 1:
                    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    sock.bind((f"127.0.0.{1 + i % sips}", 0))
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", a.port)), 30)
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(sock=sock, ssl=ctx, server_hostname="localhost",
                                            ssl_handshake_timeout=30), 60)
            except BaseException:
                sock.close()
                raise
            writer.write(f"GET {a.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = head.decode("latin-1").split("\r\n")
            if not lines[0].startswith("HTTP/1.1 200"):
                raise RuntimeError(f"status line {lines[0]!r}")
            length = None
            for line in lines[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    length = int(v)
                elif k == "connection" and "close" in v.lower():
                    raise RuntimeError("server answered Connection: close")
            if length is None:
                raise RuntimeError("no Content-Length")
            if a.slow_read > 0:
                conns.append((reader, writer))
                stats["ok"] += 1
                stats["trickles"].append(asyncio.create_task(trickle(reader, length, a.slow_read)))
                return
            await asyncio.wait_for(reader.readexactly(length), 30)
            conns.append((reader, writer))
            stats["ok"] += 1
        except Exception as e:  # noqa: BLE001 - every failure is counted and the first is shown
            stats["failed"] += 1
            if stats["first_error"] is None:
                stats["first_error"] = f"{type(e).__name__}: {e}"


async def trickle(reader, length, rate):
    """Reads `length` body bytes at `rate` bytes per second, in ten steps a second."""
    step = max(1, rate // 10)
    left = length
    try:
        while left > 0:
            n = min(step, left)
            await reader.readexactly(n)
            left -= n
            await asyncio.sleep(0.1)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass


async def main():
    a = parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sips = a.source_ips or max(1, math.ceil(a.conns / 15000))
    conns, stats = [], {"ok": 0, "failed": 0, "first_error": None, "trickles": []}
    sem = asyncio.Semaphore(a.concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def report_alive():
        alive = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
        print(f"ALIVE {alive}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, report_alive)

    t0 = time.monotonic()
    tasks = [asyncio.create_task(open_one(i, a, ctx, sips, conns, stats, sem)) for i in range(a.conns)]
    done, pending = await asyncio.wait(tasks, timeout=a.open_timeout)
    for t in pending:
        t.cancel()
    if pending:
        stats["failed"] += len(pending)
        stats["first_error"] = stats["first_error"] or f"{len(pending)} not opened within {a.open_timeout}s"
    err = f" first_error={stats['first_error']!r}" if stats["first_error"] else ""
    print(f"OPENED ok={stats['ok']} failed={stats['failed']} seconds={time.monotonic() - t0:.1f}{err}",
          flush=True)
    try:
        await asyncio.wait_for(stop.wait(), a.hold)
    except asyncio.TimeoutError:
        pass
    for t in stats["trickles"]:
        t.cancel()
    for _, w in conns:
        w.transport.abort()
    await asyncio.sleep(0.1)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
