"""Several independent SSH "hosts" on loopback for the authkey tests and bench/push.py.

Each host is a real OpenSSH sshd on 127.0.0.1:<port>, started in its own mount namespace with a private tmpfs
mounted on KEY_DIR, so the same path (KEY_DIR/authkey) is a different file on every host, as /etc/pacemaker/authkey
is on different machines. One client key and one known_hosts file serve all of them. Needs root (unshare, mount).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

from tests.integration.sshd import (SSHD, Sshd, client_key, free_port, keygen, known_hosts_line, stop_sshd,
                                    wait_listening, write_config)

KEY_DIR = "/run/remotectl-authkey-test"
KEY_PATH = f"{KEY_DIR}/etc/authkey"


def available() -> bool:
    return (os.geteuid() == 0 and os.path.exists(SSHD) and shutil.which("unshare") is not None
            and shutil.which("nsenter") is not None and shutil.which("ssh-keygen") is not None)


@dataclass
class Host(Sshd):
    """One of the sshds (root@127.0.0.1:port), with the files of its own mount namespace at hand."""

    def _ns(self, argv: List[str], data: bytes = b"") -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(self.process.pid), "-m", "--", *argv], input=data,
                              capture_output=True, check=False)

    def read(self, path: str = KEY_PATH) -> bytes:
        result = self._ns(["cat", "--", path])
        if result.returncode != 0:
            raise FileNotFoundError(path)
        return result.stdout

    def exists(self, path: str = KEY_PATH) -> bool:
        return self._ns(["test", "-e", path]).returncode == 0

    def stat(self, path: str = KEY_PATH) -> tuple:
        """(mode, owner, group)"""
        out = self._ns(["stat", "-c", "%a %U %G", "--", path])
        if out.returncode != 0:
            raise FileNotFoundError(path)
        mode, owner, group = out.stdout.decode().split()
        return int(mode, 8), owner, group

    def write(self, data: bytes, path: str = KEY_PATH, mode: int = 0o640, owner: str = "root:haclient") -> None:
        script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" "$1" && chown "$3" "$1"'
        result = self._ns(["sh", "-c", script, "sh", path, f"{mode:o}", owner], data)
        assert result.returncode == 0, result.stderr

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess:
        return self._ns(["sh", "-c", script, "sh", *args])

    def listdir(self, directory: str = f"{KEY_DIR}/etc") -> List[str]:
        out = self._ns(["ls", "-A", "--", directory])
        return out.stdout.decode().split() if out.returncode == 0 else []

    def clear(self) -> None:
        self._ns(["sh", "-c", f'rm -rf -- "{KEY_DIR}"/* "{KEY_DIR}"/.[!.]*'])

    @contextmanager
    def holding_key_dir(self, directory: str = f"{KEY_DIR}/etc") -> Iterator["DirHold"]:
        """Hold the per-directory lock the remote write script takes (flock on the directory), so a writer that
        reaches it waits there, visibly, until the block ends: a writer held back at a known point, without any
        hook in the script."""
        self.run('mkdir -p -- "$1"', directory)
        holder = subprocess.Popen(["nsenter", "-t", str(self.process.pid), "-m", "--", "flock", directory,
                                   "sh", "-c", "echo held; exec cat >/dev/null"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert holder.stdout.readline() == b"held\n"
            yield DirHold(str(self.process.pid))
        finally:
            holder.stdin.close()
            holder.wait(10)


def _parent(pid: str) -> str:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[1].decode()


def _argv(pid: str) -> List[bytes]:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().split(b"\0")


def _mount_ns(pid: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def in_namespaces(sshd_pids: set) -> List[str]:
    """Every process but the sshds themselves in these hosts' mount namespaces: their sessions, the commands they
    run, and a command whose session ended under it (a killed client), which is no longer an sshd's descendant."""
    spaces = {_mount_ns(pid) for pid in sshd_pids}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in sshd_pids:
            continue
        try:
            if _mount_ns(pid) in spaces:
                found.append(pid)
        except OSError:
            continue
    return found


def writers(sshd_pids: set, path: str = KEY_PATH) -> List[int]:
    """The pids of the remote scripts for `path` on these hosts (other tests' hosts use the same path)."""
    found = []
    for pid in in_namespaces(sshd_pids):
        try:
            if path.encode() in _argv(pid):
                found.append(int(pid))
        except OSError:
            continue
    return found


@dataclass
class DirHold:
    sshd_pid: str

    def waiting_writers(self, path: str = KEY_PATH) -> List[int]:
        """The pids of the `flock` of every write script for `path` on this host waiting for the directory lock."""
        found = []
        for pid in in_namespaces({self.sshd_pid}):
            try:
                if _argv(pid)[:1] == [b"flock"] and path.encode() in _argv(_parent(pid)):
                    found.append(int(pid))
            except (OSError, IndexError):
                continue
        return found

    def stop_writer(self, timeout: float = 30.0, path: str = KEY_PATH) -> int:
        """Once one writer waits for the lock, SIGSTOP its flock and wait until it is stopped (before the lock is
        released, so it cannot have taken it): its pid, for SIGCONT."""
        deadline = time.monotonic() + timeout
        while True:
            writers = self.waiting_writers(path)
            if writers:
                assert len(writers) == 1, writers
                break
            assert time.monotonic() < deadline, "no writer came to wait for the directory lock"
            time.sleep(0.05)
        pid = writers[0]
        os.kill(pid, signal.SIGSTOP)
        while True:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"T":
                    return pid
            assert time.monotonic() < deadline, "the writer did not stop"
            time.sleep(0.01)


@dataclass
class Hosts:
    hosts: List[Host]
    client_key: Path
    known_hosts: Path
    workdir: Path

    @property
    def destinations(self) -> List[str]:
        return [h.destination for h in self.hosts]

    @property
    def remotectl_options(self) -> List[str]:
        return ["--ssh-config", os.devnull, "--identity", str(self.client_key), "--known-hosts",
                str(self.known_hosts)]

    def stop(self) -> None:
        stop_sshd(*self.hosts)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until nothing runs on these hosts but their sshds: every remote writer has ended, also one whose
        session ended under it after a SIGKILL of remotectl (no longer an sshd's descendant), and only these hosts'
        writers count (other tests' hosts use the same paths)."""
        pids = {str(h.process.pid) for h in self.hosts}
        deadline = time.monotonic() + timeout
        while True:
            busy = in_namespaces(pids)
            if not busy:
                return
            assert time.monotonic() < deadline, f"still running on the hosts: {busy}"
            time.sleep(0.05)


def start_hosts(workdir: Path, count: int, *, private_env: bool = False) -> Hosts:
    """count sshds; with private_env each also gets an empty private tmpfs on /etc/default, so a test can give
    each host its own /etc/default/pacemaker (the X.509 settings) without touching this machine's."""
    workdir.mkdir(parents=True, exist_ok=True)
    authorized = client_key(workdir, "remotectl-authkey-client")
    known_hosts = workdir / "known_hosts"
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    hosts: List[Host] = []
    taken = set()
    try:
        for index in range(count):
            host_key = workdir / f"host{index}_ed25519"
            keygen(host_key, f"remotectl-authkey-host{index}")
            port = free_port()
            while port in taken:  # free now, but an sshd started just before may not have bound it yet
                port = free_port()
            taken.add(port)
            config = workdir / f"sshd{index}.conf"
            write_config(config, port=port, host="127.0.0.1", host_key=host_key, pid_file="none",
                         authorized=authorized, log_level="INFO", extra="MaxStartups 100:30:200\nMaxSessions 100\n")
            log = workdir / f"sshd{index}.log"
            env_mount = ("mount -t tmpfs -o mode=0755,size=1m remotectl-env /etc/default && "
                         if private_env else "")
            inner = (f'mkdir -p {KEY_DIR} && mount -t tmpfs -o mode=0755,size=16m remotectl-test {KEY_DIR} '
                     f'&& {env_mount}exec {SSHD} -D -e -f "$0"')
            process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner,
                                        str(config)], stdout=open(log, "wb"), stderr=subprocess.STDOUT)
            hosts.append(Host("127.0.0.1", port, "root", workdir / "client_ed25519", known_hosts,
                              workdir / f"host{index}_ed25519.pub", process, log))
        deadline = time.monotonic() + 15
        for host in hosts:
            wait_listening(host, deadline)
    except BaseException:
        stop_sshd(*hosts)
        raise
    known_hosts.write_text("".join(known_hosts_line(h.host, h.port, h.host_key_pub) + "\n" for h in hosts))
    return Hosts(hosts, workdir / "client_ed25519", known_hosts, workdir)
