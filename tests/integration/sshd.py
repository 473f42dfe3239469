"""A real OpenSSH sshd on 127.0.0.1 for transport tests: generated host key, client key and known_hosts.

The pieces (client key, config, waiting for it to listen, known_hosts line, stopping) also serve authkey_hosts.py,
which starts several sshds, each in its own mount namespace."""

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


def client_key(workdir: Path, comment: str) -> Path:
    """The client key workdir/client_ed25519, allowed in by the authorized_keys file this returns."""
    keygen(workdir / "client_ed25519", comment)
    authorized = workdir / "authorized_keys"
    shutil.copy(workdir / "client_ed25519.pub", authorized)
    authorized.chmod(0o600)
    return authorized


def write_config(path: Path, *, port: int, host: str, host_key: Path, pid_file: str, authorized: Path,
                 log_level: str, extra: str = "") -> None:
    """Key-only root login for the client key in authorized, with the sftp subsystem; extra: more config lines."""
    path.write_text(
        f"Port {port}\nListenAddress {host}\nHostKey {host_key}\nPidFile {pid_file}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PubkeyAuthentication yes\nAuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\n"
        f"{extra}Subsystem sftp internal-sftp\nLogLevel {log_level}\n"
    )


def wait_listening(sshd: Sshd, deadline: float) -> None:
    """Until sshd accepts connections; RuntimeError (with its log) when it exits or time.monotonic() passes
    deadline."""
    while True:
        if sshd.process.poll() is not None:
            raise RuntimeError(f"sshd exited: {sshd.log.read_text()[-2000:]}")
        try:
            socket.create_connection((sshd.host, sshd.port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not listen on {sshd.host}:{sshd.port}: "
                                   f"{sshd.log.read_text()[-2000:]}") from None
            time.sleep(0.05)


def known_hosts_line(host: str, port: int, host_key_pub: Path) -> str:
    key_type, key = host_key_pub.read_text().split()[:2]
    return f"[{host}]:{port} {key_type} {key}"


def start_sshd(workdir: Path, host: str = "127.0.0.1") -> Sshd:
    workdir.mkdir(parents=True, exist_ok=True)
    keygen(workdir / "host_ed25519", "remotectl-test-host")
    authorized = client_key(workdir, "remotectl-test-client")
    port = free_port(host)
    config = workdir / "sshd_config"
    write_config(config, port=port, host=host, host_key=workdir / "host_ed25519", pid_file=str(workdir / "sshd.pid"),
                 authorized=authorized, log_level="VERBOSE")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = workdir / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    known_hosts = workdir / "known_hosts"
    sshd = Sshd(host, port, getpass.getuser(), workdir / "client_ed25519", known_hosts, workdir / "host_ed25519.pub",
                process, log)
    try:
        wait_listening(sshd, time.monotonic() + 10)
    except RuntimeError:
        process.kill()
        raise
    known_hosts.write_text(known_hosts_line(host, port, sshd.host_key_pub) + "\n")
    return sshd


def stop_sshd(*servers: Sshd) -> None:
    """SIGTERM every server, then wait for each (SIGKILL after 5 s)."""
    for server in servers:
        server.process.terminate()
    for server in servers:
        try:
            server.process.wait(5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
