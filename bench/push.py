#!/usr/bin/env python3
"""Pushing one authkey to N SSH targets: `remotectl authkey push` against a sequential `scp` loop, in one run.

    .venv/bin/python bench/push.py [--targets 8] [--runs 5] [--bytes 256] [--bashrc both|as-is|masked]
    .venv/bin/python bench/push.py --lab [--runs 5]                            # the hosts lab's nodes

Loopback mode starts N real OpenSSH sshd processes on 127.0.0.1, each in its own mount namespace with a private
tmpfs for the key directory (tests/integration/authkey_hosts.py), so every target has its own file at the same
path, like separate machines. Lab mode pushes to the cluster, remote and guest nodes of the running hosts lab
(``python3 tests/lab/lab.py up --hosts``; REMOTECTL_LAB2_INSTANCE picks the instance) at
/etc/pacemaker/authkey.remotectl-bench (removed afterwards; the lab's real key is untouched).

Every run pushes a fresh random key (so no target is skipped as unchanged) with each tool, alternating which goes
first; the figures are medians of wall-clock time of the whole command, including process start-up. The `scp`
loop does less than remotectl: one plain copy per target (SFTP, OpenSSH's default), no temp file + rename, no
mode/owner, no backup, no read-back; remotectl makes 1 SSH round trip per target (one script: the probe, facts and
state, then the atomic write, which reads the installed file back), concurrently over all targets.

Every remotectl round trip is a command run by root's login shell on the target (sshd always runs commands that
way), and bash sources ~/.bashrc for commands started by sshd. On the development machines root's ~/.bashrc runs
`pyenv init` (about 90 ms of CPU per command), which scp's SFTP transfer (internal-sftp, no shell) never pays. So
loopback mode measures twice by default: with root's ~/.bashrc as it is on this machine ("as-is"), and with it
masked inside the sshd's private mount namespace ("masked", like a node whose root shell starts quickly).
"""

from __future__ import annotations

import argparse
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

LAB_PATH = "/etc/pacemaker/authkey.remotectl-bench"


def timed(argv, **kwargs) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, **kwargs)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(argv)}\n{result.stderr.decode()[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=8, help="loopback targets (default 8)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bytes", type=int, default=256, help="key size (default 256)")
    parser.add_argument("--lab", action="store_true", help="push to the running hosts lab's nodes instead")
    parser.add_argument("--bashrc", choices=["both", "as-is", "masked"], default="both",
                        help="loopback mode: root's ~/.bashrc on the targets as it is, masked, or both (default)")
    args = parser.parse_args()

    python = sys.executable
    remotectl = [python, "-m", "remotectl"]
    work = Path(tempfile.mkdtemp(prefix="remotectl-bench-push-"))
    cleanup = None
    if args.lab:
        from tests.lab.hosts import HostsLab

        lab = HostsLab()
        if not lab.is_up():
            raise SystemExit("the hosts lab is not running: python3 tests/lab/lab.py up --hosts")
        names = lab.node_names
        options = lab.remotectl_ssh_options
        targets = names
        path = LAB_PATH
        scp_targets = [(["-F", str(lab.ssh_config)], f"{name}:{path}") for name in names]

        def cleanup():
            for name in names:
                lab.ssh(name, ["sh", "-c", f'rm -f {path} {path}.bak-*'], check=False)
        label = f"lab nodes ({', '.join(names)})"
    else:
        from tests.integration import authkey_hosts

        if not authkey_hosts.available():
            raise SystemExit("loopback mode needs root, sshd, unshare and nsenter")
        hosts = authkey_hosts.start_hosts(work / "hosts", args.targets)
        options = hosts.remotectl_options
        targets = hosts.destinations
        path = authkey_hosts.KEY_PATH
        for host in hosts.hosts:
            host.run(f"mkdir -p {os.path.dirname(path)}")
        ssh_opts = ["-F", os.devnull, "-i", str(hosts.client_key), "-o", f"UserKnownHostsFile={hosts.known_hosts}",
                    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        scp_targets = [(ssh_opts + ["-P", str(h.port)], f"root@127.0.0.1:{path}") for h in hosts.hosts]
        cleanup = hosts.stop
        label = f"{args.targets} loopback sshd targets"

    def measure(variant: str) -> None:
        times = {"remotectl": [], "scp loop": []}
        key = work / "authkey"
        for run in range(args.runs + 1):  # run 0 is a warm-up (page cache, first connections)
            key.write_bytes(os.urandom(args.bytes))
            key.chmod(0o400)

            def run_remotectl():
                return timed(remotectl + options + ["authkey", "push", "--key", str(key), "--path", path,
                                                    "--no-backup", "--json", *targets], cwd=ROOT)

            def run_scp():
                start = time.perf_counter()
                for opts, dest in scp_targets:
                    timed(["scp", "-q", *opts, str(key), dest])
                return time.perf_counter() - start

            order = [("remotectl", run_remotectl), ("scp loop", run_scp)]
            if run % 2:
                order.reverse()
            for name, fn in order:
                elapsed = fn()
                if run:
                    times[name].append(elapsed)
        ours, theirs = statistics.median(times["remotectl"]), statistics.median(times["scp loop"])
        print(f"push a {args.bytes}-byte key to {label}{variant}, median of {args.runs} runs (after 1 warm-up):")
        print(f"  remotectl authkey push  {ours:7.3f} s   (runs: {', '.join(f'{t:.3f}' for t in times['remotectl'])})")
        print(f"  sequential scp loop     {theirs:7.3f} s   (runs: {', '.join(f'{t:.3f}' for t in times['scp loop'])})")
        print(f"  ratio scp/remotectl     {theirs / ours:7.2f}x " + ("(remotectl faster)" if theirs > ours else
                                                                  "(scp loop faster)"), flush=True)

    try:
        if args.lab:
            measure("")
        else:
            variants = ["as-is", "masked"] if args.bashrc == "both" else [args.bashrc]
            for variant in variants:
                for host in hosts.hosts:
                    masked = host.run("mountpoint -q /root/.bashrc").returncode == 0
                    if variant == "masked" and not masked:
                        host.run("[ ! -e /root/.bashrc ] || mount --bind /dev/null /root/.bashrc")
                    elif variant == "as-is" and masked:
                        host.run("umount /root/.bashrc")
                measure(f", root's ~/.bashrc {variant}")
    finally:
        if cleanup:
            cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
