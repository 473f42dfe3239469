"""Benchmark: remotectl's safe PSK probe (probe_many, and sequential probe()) against a sequential gnutls-cli loop
over the same N endpoints, measured in the same run.

    python bench/probe.py [-n 100] [--workers 16] [--via-forwarder]

Needs root (it starts its own throwaway pacemaker-remoted in a netns ``rprobe-<pid>-bench`` with a fresh random
key, and tears it down). The endpoints are that one remoted repeated N times. By default everything runs inside
the remoted's netns, so no forwarder cost is measured; --via-forwarder goes through the socat forwarder on
127.0.1.N instead (adds a fork + ``ip netns exec`` per connection, for both sides).

gnutls-cli gets the key in hex on its command line (visible in /proc): acceptable only for this throwaway key.
Note that gnutls-cli COMPLETES the handshake, which the probe never does (remoted logs "connection accepted").
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from remotectl.transport import psk_probe  # noqa: E402
from tests.integration.probe_servers import (  # noqa: E402
    ACCEPTED_LINE, ProbeLab, call_in_netns, missing_requirements)


def gnutls_cli_loop(endpoints, key_hex):
    completed = 0
    for host, port in endpoints:
        proc = subprocess.run(["gnutls-cli", "--pskusername", "lrmd", "--pskkey", key_hex, "--priority",
                               "NORMAL:+PSK", "-p", str(port), host], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if proc.returncode == 0 and "Handshake was completed" in proc.stdout:
            completed += 1
    return completed


def measure(endpoints, key, key_hex, workers, timeout):
    out = {}
    psk_probe.probe(endpoints[0][0], endpoints[0][1], key, timeout=timeout)  # warm-up (library load)

    latencies, verdicts = [], []
    start = time.perf_counter()
    for host, port in endpoints:
        t0 = time.perf_counter()
        verdicts.append(psk_probe.probe(host, port, key, timeout=timeout).verdict)
        latencies.append((time.perf_counter() - t0) * 1000.0)
    out["sequential_s"] = time.perf_counter() - start
    out["sequential_ok"] = verdicts.count("match")
    out["latency_median_ms"] = statistics.median(latencies)
    out["latency_p90_ms"] = sorted(latencies)[int(0.9 * (len(latencies) - 1))]

    cpu0 = time.process_time()
    start = time.perf_counter()
    results = psk_probe.probe_many(endpoints, key, timeout=timeout, workers=workers)
    out["many_s"] = time.perf_counter() - start
    out["many_cpu_s"] = time.process_time() - cpu0
    out["many_ok"] = sum(1 for r in results if r.verdict == "match")

    start = time.perf_counter()
    out["cli_ok"] = gnutls_cli_loop(endpoints, key_hex)
    out["cli_s"] = time.perf_counter() - start
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=100, help="endpoints to probe (default 100)")
    parser.add_argument("--workers", type=int, default=16, help="probe_many thread pool size (default 16)")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--via-forwarder", action="store_true", help="go through the socat forwarder on 127.0.1.N")
    args = parser.parse_args(argv)

    missing = missing_requirements() + ([] if subprocess.run(["which", "gnutls-cli"], stdout=subprocess.DEVNULL)
                                        .returncode == 0 else ["gnutls-cli not installed"])
    if missing:
        print("bench/probe.py cannot run here: " + "; ".join(missing), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="rprobe-bench-") as work:
        key_path = os.path.join(work, "throwaway-authkey")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(4096))
        key = psk_probe.read_key(key_path)
        key_hex = key.hex()
        with ProbeLab(os.path.join(work, "lab")) as lab:
            remoted = lab.remoted("bench", key_path)
            if args.via_forwarder:
                endpoints = [(remoted.host, remoted.port)] * args.count
                figures = measure(endpoints, key, key_hex, args.workers, args.timeout)
                where = "through the socat forwarder %s:%d" % (remoted.host, remoted.port)
            else:
                endpoints = [("127.0.0.1", remoted.inner_port)] * args.count
                figures = call_in_netns(remoted.netns, measure, endpoints, key, key_hex, args.workers, args.timeout)
                where = "inside the remoted's netns (127.0.0.1:%d)" % remoted.inner_port
            accepted = remoted.count(ACCEPTED_LINE)

    n = args.count
    print("PSK probe benchmark: %d endpoints = one standalone pacemaker-remoted (GnuTLS %s, Python %s), %s"
          % (n, psk_probe.gnutls_version(), sys.version.split()[0], where))
    print("  %-38s %8.3f s  %7.2f ms/endpoint  matches %d/%d" % ("probe_many (workers=%d)" % args.workers,
          figures["many_s"], figures["many_s"] * 1000 / n, figures["many_ok"], n))
    print("  %-38s %8.3f s  %7.2f ms/endpoint  matches %d/%d  (median %.2f ms, p90 %.2f ms)"
          % ("sequential probe()", figures["sequential_s"], figures["sequential_s"] * 1000 / n,
             figures["sequential_ok"], n, figures["latency_median_ms"], figures["latency_p90_ms"]))
    print("  %-38s %8.3f s  %7.2f ms/endpoint  completed %d/%d" % ("sequential gnutls-cli loop",
          figures["cli_s"], figures["cli_s"] * 1000 / n, figures["cli_ok"], n))
    print("  ratio gnutls-cli loop / probe_many:        %.1fx" % (figures["cli_s"] / figures["many_s"]))
    print("  ratio gnutls-cli loop / sequential probe:  %.1fx" % (figures["cli_s"] / figures["sequential_s"]))
    print("  probe_many client CPU: %.3f ms/probe" % (figures["many_cpu_s"] * 1000 / n))
    print("  remoted 'connection accepted' lines: %d (all from gnutls-cli; the %d probes completed none)"
          % (accepted, 2 * n + 1))
    ok = figures["many_ok"] == n and figures["sequential_ok"] == n and figures["cli_ok"] == n and accepted == n
    if not ok:
        print("UNEXPECTED: not every probe matched / gnutls-cli handshake completed / accept count", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
