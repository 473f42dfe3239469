"""A real OpenSSH sshd on 127.0.0.1 for transport tests: generated host key, client key and known_hosts."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Sshd:
    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key_pub: Path
    process: subprocess.Popen
    log: Path

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)


def start_sshd(workdir: Path, host: str = "127.0.0.1") -> Sshd:
    workdir.mkdir(parents=True, exist_ok=True)
    keygen(workdir / "host_ed25519", "remotectl-test-host")
    keygen(workdir / "client_ed25519", "remotectl-test-client")
    authorized = workdir / "authorized_keys"
    shutil.copy(workdir / "client_ed25519.pub", authorized)
    authorized.chmod(0o600)
    port = free_port(host)
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {host}\nHostKey {workdir / 'host_ed25519'}\nPidFile {workdir / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PubkeyAuthentication yes\nAuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = workdir / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"sshd did not listen on {host}:{port}: {log.read_text()[-2000:]}")
    known_hosts = workdir / "known_hosts"
    host_pub = (workdir / "host_ed25519.pub").read_text().split()
    known_hosts.write_text(f"[{host}]:{port} {host_pub[0]} {host_pub[1]}\n")
    return Sshd(host, port, getpass.getuser(), workdir / "client_ed25519", known_hosts,
                workdir / "host_ed25519.pub", process, log)


def stop_sshd(sshd: Sshd) -> None:
    sshd.process.terminate()
    try:
        sshd.process.wait(5)
    except subprocess.TimeoutExpired:
        sshd.process.kill()
        sshd.process.wait()
