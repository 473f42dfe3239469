"""Several independent SSH "hosts" on loopback for the authkey tests and bench/push.py.

Each host is a real OpenSSH sshd on 127.0.0.1:<port>, started in its own mount namespace with a private tmpfs
mounted on KEY_DIR, so the same path (KEY_DIR/authkey) is a different file on every host, as /etc/pacemaker/authkey
is on different machines. One client key and one known_hosts file serve all of them. Needs root (unshare, mount).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

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


def start_hosts(workdir: Path, count: int, *, private_env: bool = False) -> Hosts:
    """count sshds; with private_env each also gets an empty private tmpfs on /etc/default, so a test can give
    each host its own /etc/default/pacemaker (the X.509 settings) without touching this machine's."""
    workdir.mkdir(parents=True, exist_ok=True)
    authorized = client_key(workdir, "remotectl-authkey-client")
    known_hosts = workdir / "known_hosts"
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    hosts: List[Host] = []
    try:
        for index in range(count):
            host_key = workdir / f"host{index}_ed25519"
            keygen(host_key, f"remotectl-authkey-host{index}")
            port = free_port()
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
