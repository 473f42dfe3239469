"""The hosts lab's container supervisor: one process that keeps each lab host's systemd-nspawn running as wanted.

It is started (in its own session) by ``lab.py up --hosts`` and runs ``python3 supervisor.py STATE_DIR``. For each
host it reads ``STATE_DIR/ctl/<host>.want`` ("up", "up <owner>" or "down") and writes ``<host>.state``
("running <nspawn pid> <leader pid>", "starting" or "stopped"). A container that exits while wanted up (a
``systemctl reboot`` inside ends nspawn, exit status 133, or a crash) is booted again, as systemd-nspawn@.service
would. The guest host's want file is written by the lab's resource agent on a cluster node (the ctl directory is
bind-mounted into the cluster nodes as /run/remotectl-lab), which makes the guest a container that the cluster
starts and stops. It also runs the host-side socat forwarders (127.0.2.N:22/3121 -> the lab LAN).

On SIGTERM it powers every container off (SIGTERM to nspawn = clean poweroff), stops the forwarders, removes the
cgroups it created and exits. Mounts and namespaces belong to ``lab.py`` (created by up, removed by down).
Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

CGROUP_HIERARCHIES = ("unified", "systemd")
NSPAWN = "systemd-nspawn"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def cgroup_dirs(name: str) -> List[Path]:
    return [Path("/sys/fs/cgroup") / h / f"rl2-{name}" for h in CGROUP_HIERARCHIES
            if (Path("/sys/fs/cgroup") / h).is_dir()]


def remove_cgroups(name: str) -> None:
    """rmdir the host's cgroup tree (nspawn --keep-unit leaves payload/supervisor below it), deepest first."""
    for top in cgroup_dirs(name):
        if not top.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def leader_of(nspawn_pid: int) -> Optional[int]:
    """The container's PID 1 as seen from the host: nspawn's child."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class Host:
    def __init__(self, spec: Dict[str, object], state_dir: Path):
        self.name = str(spec["name"])
        self.root = Path(str(spec["root"]))
        self.netns = str(spec["netns"])
        self.binds = list(spec.get("binds", []))
        self.ctl = state_dir / "ctl"
        self.console = state_dir / "logs" / f"{self.name}.console.log"
        self.proc: Optional[subprocess.Popen] = None
        self.boots = 0
        self.stopping_since: Optional[float] = None

    def want(self) -> str:
        try:
            return (self.ctl / f"{self.name}.want").read_text().split()[0]
        except (OSError, IndexError):
            return "down"

    def write_state(self, text: str) -> None:
        tmp = self.ctl / f".{self.name}.state"
        tmp.write_text(text + "\n")
        os.replace(tmp, self.ctl / f"{self.name}.state")

    def start(self) -> None:
        for top in cgroup_dirs(self.name):
            top.mkdir(exist_ok=True)
        tops = cgroup_dirs(self.name)

        def enter_cgroup() -> None:  # own cgroup per nspawn, or --keep-unit puts every payload at /payload
            for top in tops:
                with open(top / "cgroup.procs", "w") as procs:
                    procs.write(str(os.getpid()))

        argv = [NSPAWN, "-q", "-D", str(self.root), "-b", "-M", self.name, "--register=no", "--keep-unit",
                f"--network-namespace-path=/run/netns/{self.netns}", "--capability=CAP_NET_ADMIN",
                "--kill-signal=SIGRTMIN+3"]
        argv += [f"--bind={b}" for b in self.binds]
        env = {"PATH": PATH, "LC_ALL": "C.UTF-8", "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        with open(self.console, "ab") as out:
            out.write(f"\n=== lab supervisor: boot {self.boots + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=env, preexec_fn=enter_cgroup)
        self.boots += 1
        self.stopping_since = None
        self.write_state("starting")

    def poll(self) -> None:
        """Advance this host towards what is wanted."""
        want = self.want()
        running = self.proc is not None and self.proc.poll() is None
        if self.proc is not None and not running:
            rc = self.proc.returncode
            with open(self.console, "ab") as out:
                out.write(f"=== lab supervisor: nspawn exited with {rc}\n".encode())
            self.proc = None
            self._after_exit()
        if want == "up" and self.proc is None:
            self.start()
        elif want == "up" and self.proc is not None:
            leader = leader_of(self.proc.pid)
            if leader:
                self.write_state(f"running {self.proc.pid} {leader} {self.boots}")
        elif want != "up" and self.proc is not None:
            self.stop(wait=False)
        elif want != "up":
            self.write_state("stopped")

    def stop(self, wait: bool = True, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)  # nspawn -b: a clean poweroff of the container
        elif time.monotonic() - self.stopping_since > timeout:
            self.proc.kill()
        if wait:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
            self._after_exit()

    def _after_exit(self) -> None:
        remove_cgroups(self.name)
        try:
            os.rmdir(f"/run/systemd/nspawn/propagate/{self.name}")
        except OSError:
            pass
        self.write_state("stopped")


def forwarder(address: str, port: int, lan_netns: str, log: Path) -> subprocess.Popen:
    inner = f"ip netns exec {lan_netns} socat STDIO TCP\\:{address}\\:{port}"
    with open(log, "ab") as out:
        return subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind={address},reuseaddr,fork", f"EXEC:{inner}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env={"PATH": PATH})


def main(state_dir: Path) -> int:
    spec = json.loads((state_dir / "hosts.json").read_text())
    hosts = [Host(h, state_dir) for h in spec["hosts"]]
    forwarders = [forwarder(h["address"], p, spec["lan_netns"], state_dir / "logs" / "forwarders.log")
                  for h in spec["hosts"] for p in (22, 3121)]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    (state_dir / "ctl" / "supervisor.ready").write_text(f"{os.getpid()}\n")
    while not stop:
        for host in hosts:
            host.poll()
        # restart a forwarder that died (never happens unless someone kills it)
        for i, fwd in enumerate(forwarders):
            if fwd.poll() is not None:
                h = spec["hosts"][i // 2]
                forwarders[i] = forwarder(h["address"], (22, 3121)[i % 2], spec["lan_netns"],
                                          state_dir / "logs" / "forwarders.log")
        time.sleep(0.2)
    for host in hosts:  # all power off in parallel
        if host.proc is not None and host.stopping_since is None:
            host.stopping_since = time.monotonic()
            host.proc.send_signal(signal.SIGTERM)
    for host in hosts:
        host.stop(wait=True)
    for fwd in forwarders:
        fwd.terminate()
    for fwd in forwarders:
        try:
            fwd.wait(5)
        except subprocess.TimeoutExpired:
            fwd.kill()
    (state_dir / "ctl" / "supervisor.ready").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
