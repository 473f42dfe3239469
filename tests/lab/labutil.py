"""Helpers of the hosts lab (hosts.py, hostsetup.py, faults.py): errors, /proc process identity, log tails,
private files. Standard library only."""

from __future__ import annotations

import contextlib
import os
import re
import signal
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


def _alive(pid: int, start: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat.state != "Z" and stat.start == start


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
