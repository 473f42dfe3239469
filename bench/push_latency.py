#!/usr/bin/env python3
"""`authkey push` and `authkey verify` to 50 and 200 SSH hosts behind 20 ms of network latency, against sequential
`scp` / `ssh sha256sum` loops measured in the same run and against the CPU lower bound.

    .venv/bin/python bench/push_latency.py [--hosts 50 200] [--rtt-ms 20] [--runs 3] [--sample 20]
        [--parallel N] [--bashrc masked|as-is]

Needs root: every host is a real OpenSSH sshd on 127.0.0.1 in its own mount namespace with a private tmpfs for the
key directory (tests/integration/authkey_hosts.py), reached through bench/latency_proxy.py (one process, one
listener per host, each direction delayed rtt/2, one more RTT for the TCP handshake). known_hosts names the proxy
ports, so host keys are checked as usual.

Per size N and tool, the median of --runs runs of the whole command (process start-up included):
- `remotectl authkey push --path P --no-backup --json` of a fresh random key to the N hosts (so none is
  unchanged); `remotectl authkey verify --key K --path P --json` of the same hosts afterwards;
- the sequential baselines: `scp` of the key to each host, and `ssh host sha256sum P` for verify, over the first
  --sample hosts, scaled to N (a loop over 200 hosts at 20 ms would take minutes per run);
- the CPU lower bound: the CPU the command cost (remotectl's own, from wait4, plus every sshd's and its
  session's, from the cumulative child times of the sshd listeners) divided by the cores; the proxy's CPU (the
  stand-in for the network, which competes for the same cores) is shown apart;
- remotectl's peak RSS (ru_maxrss from wait4).

root's ~/.bashrc on this machine runs `pyenv init` (about 90 ms of CPU for every command sshd starts, which scp's
internal-sftp never pays): --bashrc masked (default) bind-mounts /dev/null over it inside the hosts' namespaces,
like a node whose root shell starts quickly; --bashrc as-is leaves it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int, children: bool = True) -> float:
    """utime + stime of pid (and with children: of its reaped children), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])
    reaped = int(fields[13]) + int(fields[14]) if children else 0
    return (own + reaped) / TICK


def run_measured(argv, **kwargs):
    """(wall seconds, CPU seconds of the process and its children, peak RSS in MiB, stdout)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, **kwargs)
        stdout = process.stdout.read()  # until EOF; then wait4 (not Popen.wait) reaps it, with its rusage
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.stdout.close()
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        if code != 0:
            errors.seek(0)
            try:
                nodes = json.loads(stdout)["nodes"]
                problems = sorted({n.get("error") or "" for n in nodes if not n.get("ok")})[:5]
            except (ValueError, KeyError):
                problems = []
            raise SystemExit(f"failed ({code}): {shlex.join(argv[:12])} ...\n{errors.read().decode()[-3000:]}"
                             f"{problems}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout


def timed(argv) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(argv)}\n{result.stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def start_proxy(upstreams, rtt_ms):
    argv = [sys.executable, str(ROOT / "bench" / "latency_proxy.py"), "--listen", "127.0.0.1:0",
            "--count", str(len(upstreams)), "--rtt-ms", str(rtt_ms)]
    for port in upstreams:
        argv += ["--upstream", f"127.0.0.1:{port}"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    endpoints = json.loads(process.stdout.readline())["endpoints"]
    return process, [port for _host, port in endpoints]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=20, help="hosts the sequential loops go through (scaled)")
    parser.add_argument("--parallel", type=int, help="remotectl's --parallel (default: its own)")
    parser.add_argument("--bashrc", choices=["masked", "as-is"], default="masked")
    parser.add_argument("--bytes", type=int, default=256)
    args = parser.parse_args()

    from tests.integration import authkey_hosts
    from tests.integration.sshd import known_hosts_line

    if not authkey_hosts.available():
        raise SystemExit("needs root, sshd, unshare and nsenter")
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="remotectl-bench-push-latency-"))
    count = max(args.hosts)
    hosts = authkey_hosts.start_hosts(work / "hosts", count)
    proxy = None
    try:
        path = authkey_hosts.KEY_PATH
        for host in hosts.hosts:
            host.run(f"mkdir -p {os.path.dirname(path)}")
            if args.bashrc == "masked":
                host.run("[ ! -e /root/.bashrc ] || mount --bind /dev/null /root/.bashrc")
        proxy, ports = start_proxy([h.port for h in hosts.hosts], args.rtt_ms)
        known = work / "known_hosts_proxied"
        known.write_text("".join(known_hosts_line("127.0.0.1", port, h.host_key_pub) + "\n"
                                 for port, h in zip(ports, hosts.hosts)))
        options = ["--ssh-config", os.devnull, "--identity", str(hosts.client_key), "--known-hosts", str(known)]
        ssh_opts = ["-F", os.devnull, "-i", str(hosts.client_key), "-o", f"UserKnownHostsFile={known}",
                    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        remotectl = [sys.executable, "-m", "remotectl", *options]
        parallel = ["--parallel", str(args.parallel)] if args.parallel else []
        key = work / "authkey"
        sshd_pids = [h.process.pid for h in hosts.hosts]
        print(f"{count} sshd hosts behind {args.rtt_ms:g} ms RTT (bench/latency_proxy.py), {cores} cores, "
              f"root's ~/.bashrc {args.bashrc}, load before: {os.getloadavg()[0]:.2f}", flush=True)

        def servers_cpu() -> float:
            return sum(proc_cpu(pid) for pid in sshd_pids)

        def measured(argv):
            hosts.wait_idle()
            before, proxy_before = servers_cpu(), proc_cpu(proxy.pid, children=False)
            wall, cpu, rss, out = run_measured(argv, cwd=ROOT)
            hosts.wait_idle()  # the sessions' sshds have exited and been reaped: their CPU is counted
            return wall, cpu, servers_cpu() - before, proc_cpu(proxy.pid, children=False) - proxy_before, rss, out

        for n in args.hosts:
            targets = [f"root@127.0.0.1:{port}" for port in ports[:n]]
            sample = list(zip(ports[:min(n, args.sample)], range(n)))
            rows = {"push": [], "verify": []}
            loops = {"scp": [], "ssh": []}
            for run in range(args.runs + 1):  # run 0 warms up (page cache, imports)
                key.write_bytes(os.urandom(args.bytes))
                key.chmod(0o400)
                push = measured(remotectl + ["authkey", "push", "--key", str(key), "--path", path, "--no-backup",
                                             "--json", *parallel, *targets])
                doc = json.loads(push[-1])
                if doc["summary"] != {"written": n}:
                    raise SystemExit(f"push did not write every host: {doc['summary']}")
                verify = measured(remotectl + ["authkey", "verify", "--key", str(key), "--path", path, "--json",
                                               *parallel, *targets])
                if not json.loads(verify[-1])["ok"]:
                    raise SystemExit("verify: not every host has the key")
                start = time.perf_counter()
                for port, _ in sample:
                    timed(["scp", "-q", *ssh_opts, "-P", str(port), str(key), f"root@127.0.0.1:{path}"])
                scp = (time.perf_counter() - start) * n / len(sample)
                start = time.perf_counter()
                for port, _ in sample:
                    timed(["ssh", *ssh_opts, "-p", str(port), "root@127.0.0.1", "sha256sum", path])
                ssh = (time.perf_counter() - start) * n / len(sample)
                if run:
                    rows["push"].append(push[:-1])
                    rows["verify"].append(verify[:-1])
                    loops["scp"].append(scp)
                    loops["ssh"].append(ssh)
            print(f"\n{n} hosts, median of {args.runs} runs (after 1 warm-up); sequential loops over {len(sample)} "
                  f"hosts, scaled to {n}; load now {os.getloadavg()[0]:.2f}")
            for name, baseline in (("push", "scp"), ("verify", "ssh")):
                walls = [r[0] for r in rows[name]]
                wall = statistics.median(walls)
                client = statistics.median(r[1] for r in rows[name])
                server = statistics.median(r[2] for r in rows[name])
                proxied = statistics.median(r[3] for r in rows[name])
                rss = max(r[4] for r in rows[name])
                loop = statistics.median(loops[baseline])
                bound = (client + server) / cores
                print(f"  authkey {name:<6} {wall:7.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}); "
                      f"peak RSS {rss:.0f} MiB")
                print(f"    CPU: remotectl {client:.2f} s + sshd/sessions {server:.2f} s = "
                      f"{(client + server) * 1000 / n:.1f} ms per host; lower bound {bound:.2f} s on {cores} cores "
                      f"-> {wall / bound:.2f}x the bound (proxy {proxied:.2f} s more CPU; with it "
                      f"{wall / (bound + proxied / cores):.2f}x)")
                verdict = ("met" if loop / wall >= 20 and wall / bound <= 3 else "NOT met")
                if name == "push":
                    print(f"    sequential scp loop {loop:7.2f} s -> {loop / wall:.1f}x faster")
                else:
                    print(f"    sequential `ssh sha256sum` loop {loop:7.2f} s -> {loop / wall:.1f}x faster "
                          f"(scp loop {statistics.median(loops['scp']):.2f} s -> "
                          f"{statistics.median(loops['scp']) / wall:.1f}x)")
                print(f"    acceptance (>= 20x the sequential loop, <= 3x the CPU bound): {verdict}")
            sys.stdout.flush()
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        hosts.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
