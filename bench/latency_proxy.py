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
import collections
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
    """Upstream sockets created inside a network namespace: one thread joins it and makes them, a batch at a time
    (a thread hop per connection would cost more than the proxying)."""

    BATCH = 64

    def __init__(self, netns, family):
        self.netns = netns
        self.family = family
        self.pool = ThreadPoolExecutor(max_workers=1, initializer=self._join)
        self.stock = self.pool.submit(self._batch).result()  # joins now: fails early

    def _join(self):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = os.open("/run/netns/%s" % self.netns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns(%s) failed" % self.netns)
        finally:
            os.close(fd)

    def _batch(self):
        return [socket.socket(self.family, socket.SOCK_STREAM) for _ in range(self.BATCH)]

    def take(self):
        if not self.stock:
            self.stock = self.pool.submit(self._batch).result()
        sock = self.stock.pop()
        sock.setblocking(False)
        return sock


class _Direction(object):
    """One direction of one connection: chunks wait in order for their due time (one timer at a time), then go
    to ``target``. ``b""`` is EOF (a half-close), None an abort (the source failed)."""

    def __init__(self, loop, line, pair):
        self.loop = loop
        self.line = line
        self.pair = pair
        self.pending = collections.deque()
        self.timer = None
        self.target = None  # the transport to write to, once connected

    def push(self, data):
        self.pending.append((self.line.due(self.loop.time()), data))
        self.arm()

    def arm(self):
        if self.timer is None and self.pending and self.target is not None:
            self.timer = self.loop.call_at(self.pending[0][0], self._flush)

    def _flush(self):
        self.timer = None
        now = self.loop.time()
        first = True
        while self.pending and (first or self.pending[0][0] <= now):
            first = False
            _due, data = self.pending.popleft()
            if data is None:
                self.pair.abort()
                return
            if not data:
                self.pair.eof_delivered(self.target)
                continue
            self.target.write(data)
        self.arm()

    def cancel(self):
        self.pending.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Pair(object):
    """A client connection and its upstream connection, with one delay line per direction."""

    def __init__(self, proxy, upstream):
        self.proxy = proxy
        self.upstream = upstream
        self.loop = asyncio.get_running_loop()
        self.up = _Direction(self.loop, DelayLine(proxy.one_way, proxy.jitter, proxy.rng,
                                                   extra_first=proxy.connect_rtt), self)
        self.down = _Direction(self.loop, DelayLine(proxy.one_way, proxy.jitter, proxy.rng), self)
        self.transports = []
        self.eofs = 0
        self.done = False

    def client_made(self, transport):
        self.proxy.connections += 1
        self.transports.append(transport)
        self.down.target = transport
        self.loop.create_task(self._connect())

    async def _connect(self):
        host, port = self.proxy.upstreams[self.upstream]
        maker = self.proxy.makers[self.upstream]
        try:
            if maker is None:
                transport, _ = await self.loop.create_connection(lambda: _Side(self, self.down), host, port)
            else:
                sock = maker.take()
                try:
                    await self.loop.sock_connect(sock, (host, port))
                except BaseException:
                    sock.close()
                    raise
                transport, _ = await self.loop.create_connection(lambda: _Side(self, self.down), sock=sock)
        except OSError:
            self.abort()
            return
        if self.done:
            transport.abort()
            return
        self.transports.append(transport)
        self.up.target = transport
        self.up.arm()

    def eof_delivered(self, transport):
        if transport.can_write_eof():
            transport.write_eof()
        self.eofs += 1
        if self.eofs == 2:  # both sides have said all they will: done
            self.close(abort=False)

    def abort(self):
        self.close(abort=True)

    def close(self, abort):
        if self.done:
            return
        self.done = True
        self.up.cancel()
        self.down.cancel()
        for transport in self.transports:
            transport.abort() if abort else transport.close()


class _Side(asyncio.Protocol):
    """Reads one side of a pair into the direction that leaves from it (client: up; upstream: down)."""

    def __init__(self, pair, outgoing):
        self.pair = pair
        self.outgoing = outgoing

    def connection_made(self, transport):
        if self.outgoing is self.pair.up:
            self.pair.client_made(transport)

    def data_received(self, data):
        self.outgoing.push(data)

    def eof_received(self):
        self.outgoing.push(b"")
        return True  # keep the transport: the other direction may still be sending (a half-close)

    def connection_lost(self, exc):
        if not self.pair.done:
            self.outgoing.push(None)  # a reset (or a close without EOF) reaches the other side after the delay


class Proxy(object):
    def __init__(self, upstreams, rtt, jitter=0.0, connect_rtt=True, netns=None, seed=None):
        self.upstreams = list(upstreams)
        self.one_way = rtt / 2.0
        self.jitter = jitter
        self.connect_rtt = rtt if connect_rtt else 0.0
        netns = netns or [None] * len(self.upstreams)
        self.makers = [_NetnsSockets(name, socket.AF_INET6 if ":" in host else socket.AF_INET) if name else None
                       for name, (host, _port) in zip(netns, self.upstreams)]
        self.rng = random.Random(seed)
        self.servers = []
        self.connections = 0

    async def listen(self, host, port, index):
        upstream = index % len(self.upstreams)
        loop = asyncio.get_running_loop()
        def accepted():
            pair = _Pair(self, upstream)
            return _Side(pair, pair.up)

        server = await loop.create_server(accepted, host, port, backlog=1024, reuse_address=True)
        self.servers.append(server)
        return server.sockets[0].getsockname()[:2]


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
