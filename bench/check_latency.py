#!/usr/bin/env python3
"""`remotectl check` over many endpoints behind real network latency, against a sequential `gnutls-cli` loop
measured in the same run, and against the CPU lower bound.

    .venv/bin/python bench/check_latency.py [--counts 50,200,1000] [--rtts 20,100] [--remoteds 4] [--samples 20]
    .venv/bin/python bench/check_latency.py --sweep 4,8,16,32,64,128,256 --counts 1000 --rtts 0,20,100

Needs root, pacemaker-remoted, gnutls-cli (tests/integration/probe_servers.py starts the remoteds, each in its own
netns, with one fresh throwaway key). The endpoints are listeners of bench/latency_proxy.py (one process), spread
over ``--remoteds`` real pacemaker-remoted instances, each direction delayed by RTT/2 (+- ``--jitter-ms``), plus
one RTT for the TCP connect (see the proxy). RTT 0 means loopback: the same proxy without any delay (its own CPU
then competes with remotectl's). pacemaker-remoted listens with a backlog of 10: several endpoints share one
remoted here (in the field each is its own host), so keep --parallel / --remoteds below ~10, or a dropped SYN
costs its probe a 1 s retransmit (the default 16 remoteds x 10 = up to 160 at once).

Per (RTT, N) it prints:

* remotectl: wall-clock time of the whole ``remotectl check --json --key K host:port...`` process (Python start-up
  included), its CPU (user + sys) and peak RSS from the child's own rusage (wait4), and how many verdicts were
  ``match``;
* the gnutls-cli loop: ``--samples`` sequential ``gnutls-cli`` runs through the same proxy, their mean scaled to N
  (said so in the output; running 1,000 at 100 ms would take minutes);
* the CPU lower bound: remotectl's measured CPU per probe (the whole process's CPU / N, start-up included) x N /
  cores, i.e. the time the command could not beat on this machine even with infinite concurrency;
* the ratios: gnutls-cli loop / remotectl (the acceptance target: >= 100x for 1,000 endpoints at 20 ms) and
  remotectl / CPU lower bound.

``--sweep W1,W2,...`` instead runs remotectl with each ``--parallel`` value and prints throughput (probes/s), for
choosing the default worker count (remotectl/actions/check.py documents the choice).

gnutls-cli gets the throwaway key in hex on its command line: acceptable only for this throwaway key.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.integration.probe_servers import ProbeLab, missing_requirements  # noqa: E402

PROXY = os.path.join(ROOT, "bench", "latency_proxy.py")
CORES = os.cpu_count() or 1
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pids):
    """CPU seconds (user + sys) the processes used so far, from /proc (the proxy's and the remoteds')."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / float(TICKS)


def start_proxy(lab, remoteds, rtt_ms, jitter_ms, count):
    """The proxy with ``count`` listeners over 4 fresh 127.0.1.N addresses, upstreams = the remoteds (in their
    netns). Returns (proc, [(host, port)])."""
    argv = [sys.executable, PROXY, "--rtt-ms", str(rtt_ms), "--jitter-ms", str(jitter_ms if rtt_ms else 0),
            "--count", str(-(-count // 4))] + ([] if rtt_ms else ["--no-connect-rtt"])
    for _ in range(4):
        argv += ["--listen", "%s:0" % lab.host()]
    for remoted in remoteds:
        argv += ["--upstream", "127.0.0.1:%d" % remoted.inner_port, "--netns", remoted.netns]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    lab.procs.append(proc)  # stopped by the lab's close() like its own servers
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("latency_proxy.py did not start (exit %s)" % proc.wait())
    return proc, [tuple(e) for e in json.loads(line)["endpoints"]][:count]


def run_check(endpoints, key_path, workers=None, infra=((), ())):
    """The whole remotectl process: (wall s, cpu s, peak RSS MiB, matches, (CPU s of each group of ``infra`` pids
    meanwhile))."""
    argv = [sys.executable, "-m", "remotectl", "check", "--json", "--key", key_path]
    if workers:
        argv += ["--parallel", str(workers)]
    argv += ["%s:%d" % endpoint for endpoint in endpoints]
    infra_before = [cpu_of(pids) for pids in infra]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        infra_cpu = tuple(cpu_of(pids) - before for pids, before in zip(infra, infra_before))
        proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        out.seek(0)
        text = out.read().decode()
    try:
        results = json.loads(text)["results"]
    except (ValueError, KeyError):
        raise SystemExit("remotectl check gave no JSON (exit %s): %s" % (proc.returncode, err[-2000:]))
    matches = sum(1 for r in results if r["verdict"] == "match")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, matches, infra_cpu


def gnutls_cli_sample(endpoints, key_hex, samples):
    """Mean seconds of one sequential gnutls-cli run over the first ``samples`` endpoints, and how many completed."""
    completed = 0
    chosen = [endpoints[i * len(endpoints) // samples] for i in range(samples)]
    start = time.perf_counter()
    for host, port in chosen:
        proc = subprocess.run(["gnutls-cli", "--pskusername", "lrmd", "--pskkey", key_hex, "--priority",
                               "NORMAL:+PSK", "-p", str(port), host], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if proc.returncode == 0 and "Handshake was completed" in proc.stdout:
            completed += 1
    return (time.perf_counter() - start) / samples, completed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="50,200,1000", help="endpoint counts (default 50,200,1000)")
    parser.add_argument("--rtts", default="20,100", help="RTTs in ms (0 = the proxy without delay)")
    parser.add_argument("--jitter-ms", type=float, default=2.0, help="one-way jitter (default +-2 ms)")
    parser.add_argument("--remoteds", type=int, default=16, help="pacemaker-remoted instances (default 16)")
    parser.add_argument("--samples", type=int, default=20, help="gnutls-cli runs per RTT, scaled to N")
    parser.add_argument("--parallel", type=int, help="remotectl check --parallel (default: remotectl's)")
    parser.add_argument("--sweep", help="comma-separated --parallel values: print throughput for each")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.counts.split(",")]
    rtts = [float(x) for x in args.rtts.split(",")]
    sweep = [int(x) for x in args.sweep.split(",")] if args.sweep else None

    missing = missing_requirements() + ([] if subprocess.run(["which", "gnutls-cli"], stdout=subprocess.DEVNULL)
                                        .returncode == 0 else ["gnutls-cli not installed"])
    if missing:
        print("bench/check_latency.py cannot run here: " + "; ".join(missing), file=sys.stderr)
        return 2
    ok = True
    print("remotectl check behind latency: %d cores, %d pacemaker-remoted, RLIMIT_NOFILE %s, jitter +-%g ms"
          % (CORES, args.remoteds, resource.getrlimit(resource.RLIMIT_NOFILE)[0], args.jitter_ms))
    with tempfile.TemporaryDirectory(prefix="rcheck-bench-") as work:
        key_path = os.path.join(work, "throwaway-authkey")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(4096))
        with open(key_path, "rb") as handle:
            key_hex = handle.read().hex()
        with ProbeLab(os.path.join(work, "lab")) as lab:
            remoteds = [lab.remoted("bench%d" % i, key_path) for i in range(args.remoteds)]
            for rtt in rtts:
                proxy, endpoints = start_proxy(lab, remoteds, rtt, args.jitter_ms, max(counts))
                infra = ([proxy.pid], [_remoted_pid(r) for r in remoteds])
                run_check(endpoints[:2], key_path)  # warm the page cache and bytecode
                where = "%g ms RTT (+ 1 RTT connect)" % rtt if rtt else "loopback (proxy without delay)"
                if sweep:
                    for n in counts:
                        print("[%s] N=%d: throughput vs --parallel" % (where, n))
                        for workers in sweep:
                            wall, cpu, rss, matches, icpu = run_check(endpoints[:n], key_path, workers, infra)
                            ok = ok and matches == n
                            print("  --parallel %4d  %7.2f s  %7.0f probes/s  cpu %5.2f s  rss %5.1f MiB  "
                                  "match %d/%d  (cpu: proxy %.2f s, remoteds %.2f s)"
                                  % ((workers, wall, n / wall, cpu, rss, matches, n) + icpu))
                    continue
                cli_each, cli_ok = gnutls_cli_sample(endpoints, key_hex, args.samples)
                ok = ok and cli_ok == args.samples
                for n in counts:
                    wall, cpu, rss, matches, icpu = run_check(endpoints[:n], key_path, args.parallel, infra)
                    ok = ok and matches == n
                    cli = cli_each * n
                    bound = cpu / CORES
                    print("[%s] N=%d" % (where, n))
                    print("  remotectl check (whole process)  %8.2f s   cpu %.2f s (%.2f ms/probe)   peak RSS %.1f MiB"
                          "   match %d/%d" % (wall, cpu, cpu * 1000 / n, rss, matches, n))
                    print("  gnutls-cli loop (scaled)         %8.2f s   = %d sequential runs x %.1f ms each, "
                          "%d/%d completed" % (cli, n, cli_each * 1000, cli_ok, args.samples))
                    print("  CPU lower bound                  %8.2f s   = %.2f ms/probe x %d / %d cores"
                          % (bound, cpu * 1000 / n, n, CORES))
                    print("  (meanwhile on the same %d cores: the proxy used %.2f s of CPU, the remoteds %.2f s)"
                          % ((CORES,) + icpu))
                    print("  ratio gnutls-cli loop / remotectl: %.1fx    remotectl / CPU lower bound: %.2fx"
                          % (cli / wall, wall / bound))
                proxy.terminate()
                proxy.wait(timeout=10)
    if not ok:
        print("UNEXPECTED: not every probe matched / gnutls-cli handshake completed", file=sys.stderr)
    return 0 if ok else 1


def _remoted_pid(remoted):
    """pacemaker-remoted's own pid: ``ip netns exec`` execs it, so it is the Popen's pid."""
    return remoted.proc.pid


if __name__ == "__main__":
    sys.exit(main())
