"""Helpers shared by the lab kinds (lab.py's netns lab, hosts.py's nspawn lab): errors, /proc process identity,
log tails, private files. Standard library only."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

class LabError(RuntimeError):
    """The lab could not be brought to the requested state."""


class LabTimeout(LabError):
    """A wait_for() condition did not become true in time."""


# --- /proc helpers: processes are identified by (pid, start time) so a recycled pid is never signalled ------------


class ProcStat(NamedTuple):
    state: str
    ppid: int
    session: int
    start: int  # clock ticks after boot: with the pid, it names one process for good


def _proc_stat(pid: int) -> Optional[ProcStat]:
    """The fields of /proc/PID/stat the lab needs, or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(fields[0], int(fields[1]), int(fields[3]), int(fields[19]))


def _all_procs() -> Iterator[Tuple[int, ProcStat]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat.state != "Z":
                yield int(entry), stat


# Daemons started by this process, kept so that they are reaped (no zombies) and Popen never warns about them.
_children: Dict[int, subprocess.Popen] = {}


def _reap(pid: int) -> None:
    if pid in _children:
        _children[pid].poll()


def _alive(pid: int, start: int) -> bool:
    _reap(pid)
    stat = _proc_stat(pid)
    return stat is not None and stat.state != "Z" and stat.start == start


def _descendants(pid: int) -> List[Tuple[int, int]]:
    """All live descendants of pid as (pid, starttime), parents first."""
    children: Dict[int, List[Tuple[int, int]]] = {}
    for child, stat in _all_procs():
        children.setdefault(stat.ppid, []).append((child, stat.start))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child[0])
    return found


def _session_members(leader: int, start: int) -> List[Tuple[int, int]]:
    """Live processes of the session that the process (leader, start) started, even those orphaned by its death.
    The kernel does not reuse a pid while it still names a session, so if the pid now names another process,
    the session is gone."""
    stat = _proc_stat(leader)
    if stat is not None and stat.start != start:
        return []
    return [(pid, stat.start) for pid, stat in _all_procs() if stat.session == leader and pid != leader]


def _signal(procs: Sequence[Tuple[int, int]], sig: int) -> None:
    for pid, start in procs:
        if _alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _wait_gone(procs: Sequence[Tuple[int, int]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(pid, start) for pid, start in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _terminate(procs: Sequence[Tuple[int, int]], timeout: float) -> None:
    """SIGTERM, then SIGKILL whatever is still there after timeout."""
    _signal(procs, signal.SIGTERM)
    if not _wait_gone(procs, timeout):
        _signal(procs, signal.SIGKILL)
        _wait_gone(procs, 5)


def _remove_ipc_leftovers(procs: Sequence[Tuple[int, int]]) -> None:
    """Remove the libqb IPC buffers and corosync blackbox that dead lab daemons left in /dev/shm. They are named
    after the server's pid (qb-PID-CLIENT-..., qb-corosync-PID-blackbox-...); a daemon killed with SIGKILL (a crash,
    a CI timeout) cannot remove them itself, and the blackbox alone holds 8 MB of RAM."""
    dead = {pid for pid, start in procs if not _alive(pid, start)}
    for entry in Path("/dev/shm").iterdir():
        match = re.match(r"qb-(?:corosync-)?(\d+)-", entry.name)
        if match and int(match.group(1)) in dead:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)


def _listening(port: int, address: Optional[str] = None, pid: str = "self") -> bool:
    """Whether a TCP socket listens on port (on address, or on a wildcard) in the network namespace of pid.

    Read from /proc rather than probed with a connect, which a forwarder would accept whatever is behind it."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            hex_addr, hex_port = fields[1].split(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:
                continue
            wildcard = set(hex_addr) == {"0"}
            if address is None or wildcard:
                return True
            if table == "tcp" and socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1]) == address:
                return True
    return False


def _ssh_banner(address: str, port: int) -> bool:
    """Whether an sshd answers with its banner (through a forwarder, a bare TCP accept proves nothing)."""
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.settimeout(1)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _tail(path: Path, lines: int = 15, pattern: Optional[str] = None) -> str:
    """The last lines of a log (only those matching pattern), indented for an error message."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"  ({path} not readable)"
    kept = [line for line in text.splitlines() if pattern is None or re.search(pattern, line)]
    return "\n".join(f"  {line}" for line in kept[-lines:])


def _write_private(path: Path, data: bytes, mode: int, uid: int = 0, gid: int = 0) -> None:
    """Write a file that is never readable by others, not even for a moment (via a temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _bool_attrs(attrs: Dict[str, str]) -> Dict[str, Any]:
    parsed: Dict[str, Any] = {}
    for key, value in attrs.items():
        parsed[key] = {"true": True, "false": False}.get(value, value)
    return parsed
