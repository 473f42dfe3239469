"""The benchmark's delaying proxy (bench/latency_proxy.py): its delay line keeps order, its parser, and one real
connection through it on loopback (a generous lower bound only: never an upper bound on wall-clock time)."""

import asyncio
import importlib.util
import random
import socket
import time
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "latency_proxy.py"
_spec = importlib.util.spec_from_file_location("latency_proxy", _PATH)
latency_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(latency_proxy)


def test_delay_line_without_jitter_is_read_time_plus_one_way():
    line = latency_proxy.DelayLine(0.010)
    assert line.due(100.0) == pytest.approx(100.010)
    assert line.due(100.5) == pytest.approx(100.510)


def test_delay_line_keeps_order_under_any_jitter():
    line = latency_proxy.DelayLine(0.010, jitter=0.009, rng=random.Random(7))
    now, previous, delays = 0.0, -1.0, []
    for step in range(5000):
        now += random.Random(step).uniform(0, 0.004)
        due = line.due(now)
        assert due >= previous  # never overtakes the chunk before it
        assert due >= now  # never delivered before it was read
        delays.append(due - now)
        previous = due
    assert min(delays) >= 0.001 - 1e-9  # 10 ms - 9 ms
    assert len({round(d, 6) for d in delays}) > 100  # jitter really varies the delay


def test_delay_line_jitter_larger_than_the_delay_never_goes_negative():
    line = latency_proxy.DelayLine(0.001, jitter=0.050, rng=random.Random(1))
    assert all(line.due(float(i)) >= float(i) for i in range(1000))


def test_first_chunk_pays_the_connect_round_trip_once():
    line = latency_proxy.DelayLine(0.010, extra_first=0.020)
    assert line.due(0.0) == pytest.approx(0.030)
    assert line.due(1.0) == pytest.approx(1.010)


@pytest.mark.parametrize("text, expected", [("127.0.0.1:3121", ("127.0.0.1", 3121)), ("[::1]:0", ("::1", 0)),
                                            ("host.example:65535", ("host.example", 65535))])
def test_parse_endpoint(text, expected):
    assert latency_proxy.parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "host:", ":80", "host:65536", "host:x"])
def test_parse_endpoint_rejects(text):
    with pytest.raises(ValueError):
        latency_proxy.parse_endpoint(text)


def test_bytes_arrive_in_order_and_not_before_the_delay():
    """A real echo server behind the proxy at 40 ms RTT: the echo of many small writes comes back complete and in
    order, and the first byte takes at least the connect RTT plus one RTT (lower bound only)."""

    async def scenario():
        async def echo(reader, writer):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        upstream = server.sockets[0].getsockname()[:2]
        proxy = latency_proxy.Proxy([upstream], rtt=0.040, jitter=0.015, seed=3)
        host, port = await proxy.listen("127.0.0.1", 0, 0)
        reader, writer = await asyncio.open_connection(host, port)
        start = time.monotonic()
        payload = b"".join(b"%05d," % i for i in range(2000))
        for i in range(0, len(payload), 37):
            writer.write(payload[i:i + 37])
            await asyncio.sleep(0)
        await writer.drain()
        first = await reader.readexactly(1)
        first_at = time.monotonic() - start
        rest = await reader.readexactly(len(payload) - 1)
        writer.write_eof()
        assert await reader.read() == b""  # the half-close went through both delay lines
        writer.close()
        for item in proxy.servers + [server]:
            item.close()
        return first + rest, first_at

    echoed, first_at = asyncio.run(scenario())
    assert echoed == b"".join(b"%05d," % i for i in range(2000))
    assert first_at >= 0.040 + 0.040 - 2 * 0.015 - 0.005
