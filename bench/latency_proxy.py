#!/usr/bin/env python3
"""A delaying TCP proxy for benchmarks with real network latency (this kernel has no ``netem`` qdisc).

    python3 bench/latency_proxy.py --listen 127.0.1.200:0 --count 1000 --upstream 127.0.0.1:3121 \
        [--netns NAME] --rtt-ms 20 [--jitter-ms 2] [--no-connect-rtt]

One process, one asyncio loop, any number of listeners (``--count`` listeners per ``--listen`` address, port 0 =
any free port; the bound endpoints are printed on stdout as one JSON line ``{"endpoints": [[host, port], ...]}``
once all of them listen). Every accepted connection is forwarded to an upstream; ``--upstream`` may be repeated,
and listener i uses upstream i mod len(upstreams). With ``--netns NAME`` (repeatable, one per upstream) the
upstream socket is created inside that network namespace (a thread that joined it creates the socket), so a
pacemaker-remoted in its own netns is reached without a forwarder process per connection.

Each direction of each connection is a delay line: a chunk read at time t is written at
``max(t + rtt/2 + jitter, the previous chunk's time)``, jitter uniform in [-J, +J] and the one-way delay never
below zero, so bytes keep their order in each direction whatever the jitter. On loopback the kernel completes the
TCP handshake at once; a real connect costs one RTT before the client can send, so by default the first
client-to-server chunk waits one RTT more (``--no-connect-rtt`` turns that off). A half-close (EOF) travels
through the delay line like data.

Needs nothing but the standard library (and root for --netns).
"""

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import os
import random
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

CLONE_NEWNET = 0x40000000
CHUNK = 65536


class DelayLine(object):
    """When each chunk of one direction is due: ``rtt/2 + jitter`` after it was read, never before the previous
    one (order is kept), never earlier than the read time itself. Pure: the caller passes the clock."""

    def __init__(self, one_way, jitter=0.0, rng=None, extra_first=0.0):
        self.one_way = float(one_way)
        self.jitter = float(jitter)
        self.rng = rng or random.Random()
        self.extra_first = float(extra_first)
        self.last_due = None

    def due(self, now):
        delay = self.one_way
        if self.jitter:
            delay += self.rng.uniform(-self.jitter, self.jitter)
        delay = max(0.0, delay)
        if self.last_due is None:
            delay += self.extra_first
        due = now + delay
        if self.last_due is not None and due < self.last_due:
            due = self.last_due
        self.last_due = due
        return due


def parse_endpoint(text):
    """(host, port) from HOST:PORT or [V6]:PORT."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:]
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("not HOST:PORT: %r" % text)
    return host, int(port)


class _NetnsSockets(object):
    """Creates upstream sockets inside a network namespace: one thread joins it and makes every socket."""

    def __init__(self, netns):
        self.netns = netns
        self.pool = ThreadPoolExecutor(max_workers=1, initializer=self._join)
        self.pool.submit(lambda: None).result()  # join now, fail early

    def _join(self):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = os.open("/run/netns/%s" % self.netns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns(%s) failed" % self.netns)
        finally:
            os.close(fd)


class Proxy(object):
    def __init__(self, upstreams, rtt, jitter=0.0, connect_rtt=True, netns=None, seed=None):
        self.upstreams = list(upstreams)
        self.one_way = rtt / 2.0
        self.jitter = jitter
        self.connect_rtt = rtt if connect_rtt else 0.0
        self.makers = [_NetnsSockets(name) if name else None for name in (netns or [None] * len(self.upstreams))]
        self.rng = random.Random(seed)
        self.servers = []
        self.connections = 0
        self.active = 0

    async def listen(self, host, port, index):
        upstream = index % len(self.upstreams)
        server = await asyncio.start_server(lambda r, w: self._serve(r, w, upstream), host, port,
                                            backlog=1024, reuse_address=True)
        self.servers.append(server)
        return server.sockets[0].getsockname()[:2]

    async def _connect(self, upstream):
        host, port = self.upstreams[upstream]
        maker = self.makers[upstream]
        if maker is None:
            return await asyncio.open_connection(host, port)
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = await loop.run_in_executor(maker.pool, socket.socket, family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def _serve(self, client_reader, client_writer, upstream):
        self.connections += 1
        self.active += 1
        try:
            try:
                server_reader, server_writer = await self._connect(upstream)
            except OSError:
                client_writer.close()
                return
            up = DelayLine(self.one_way, self.jitter, self.rng, extra_first=self.connect_rtt)
            down = DelayLine(self.one_way, self.jitter, self.rng)
            await asyncio.gather(_pump(client_reader, server_writer, up), _pump(server_reader, client_writer, down),
                                 return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.close()
        finally:
            self.active -= 1


async def _pump(reader, writer, line):
    """Copy one direction through a delay line: a reader task queues (due, chunk), this task writes them when due.
    EOF (b"") is queued too and becomes a half-close; an error on either side closes the writer at once."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        try:
            while True:
                data = await reader.read(CHUNK)
                queue.put_nowait((line.due(loop.time()), data))
                if not data:
                    return
        except (OSError, asyncio.IncompleteReadError):
            queue.put_nowait((loop.time(), None))

    reading = asyncio.ensure_future(read())
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:  # the other side failed: drop the connection like a reset would
                writer.transport.abort()
                return
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
    except OSError:
        writer.transport.abort()
    finally:
        reading.cancel()  # done already, unless this side failed first


async def run(args):
    upstreams = [parse_endpoint(text) for text in args.upstream]
    if args.netns and len(args.netns) != len(upstreams):
        raise SystemExit("--netns must be given once per --upstream")
    proxy = Proxy(upstreams, args.rtt_ms / 1000.0, args.jitter_ms / 1000.0, connect_rtt=not args.no_connect_rtt,
                  netns=args.netns, seed=args.seed)
    endpoints = []
    index = 0
    for text in args.listen:
        host, port = parse_endpoint(text)
        for _ in range(args.count if port == 0 else 1):
            endpoints.append(list(await proxy.listen(host, port, index)))
            index += 1
    sys.stdout.write(json.dumps({"endpoints": endpoints}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in proxy.servers:
        server.close()
    sys.stderr.write("latency_proxy: %d connections\n" % proxy.connections)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", action="append", required=True, metavar="HOST:PORT",
                        help="listen here (port 0: --count listeners on free ports); repeatable")
    parser.add_argument("--count", type=int, default=1, help="listeners per HOST:0 (default 1)")
    parser.add_argument("--upstream", action="append", required=True, metavar="HOST:PORT", help="repeatable")
    parser.add_argument("--netns", action="append", help="the upstream's network namespace (one per --upstream)")
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="each one-way delay +- up to this")
    parser.add_argument("--no-connect-rtt", action="store_true",
                        help="do not add one RTT to the first client-to-server chunk (the TCP handshake's)")
    parser.add_argument("--seed", type=int, help="jitter random seed")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
