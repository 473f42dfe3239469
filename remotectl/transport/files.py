"""File operations on a host through a Runner (local or SSH), for small sensitive files such as authkeys.

Everything goes through one constant POSIX sh script whose arguments are passed as separate, quoted argv
elements; file content only ever travels on stdin. The write is atomic: a temp file created private in the same
directory, given its final mode before any byte is written, checked against the expected sha256 (so a
connection that dies mid-transfer can never install a truncated key), fsynced, chowned, then renamed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

from remotectl.transport.base import CommandResult, Runner, TransportError

_STAT_SCRIPT = 'exec stat -L -c "%s %a %U %G" -- "$1"'

_SHA256_SCRIPT = 'set -e; test -r "$1"; sha256sum < "$1" | cut -d" " -f1; stat -L -c %s -- "$1"'

_WRITE_SCRIPT = r"""
set -eu
target=$1 mode=$2 owner=$3 want=$4 backup=$5
dir=$(dirname -- "$target")
umask 077
[ -d "$dir" ] || mkdir -p -m 0750 -- "$dir"
tmp=$(mktemp "$dir/.remotectl.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT HUP INT TERM
chmod "$mode" "$tmp"
cat > "$tmp"
got=$(sha256sum < "$tmp" | cut -d" " -f1)
if [ "$got" != "$want" ]; then echo "content check failed (incomplete transfer)" >&2; exit 65; fi
[ -z "$owner" ] || chown -- "$owner" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
if [ -n "$backup" ] && [ -e "$target" ]; then cp -p -- "$target" "$backup"; fi
mv -f -- "$tmp" "$target"
trap - EXIT HUP INT TERM
sync -- "$dir" 2>/dev/null || true
"""


@dataclass(frozen=True)
class RemoteFileState:
    path: str
    exists: bool
    size: Optional[int] = None
    mode: Optional[int] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    sha256: Optional[str] = None
    readable: bool = True

    @property
    def fingerprint(self) -> Optional[str]:
        return f"sha256:{self.sha256}" if self.sha256 else None


def sha256_fingerprint(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _sh(runner: Runner, script: str, *args: str, stdin: Optional[bytes] = None, timeout: float = 60) -> CommandResult:
    return runner.run(["sh", "-c", script, "remotectl", *args], stdin=stdin, timeout=timeout)


def file_state(runner: Runner, path: str) -> RemoteFileState:
    """Size, mode, owner, group and sha256 of a file; the content itself never leaves the host."""
    stat = _sh(runner, _STAT_SCRIPT, path)
    if stat.rc != 0:
        if "No such file" in stat.stderr:
            return RemoteFileState(path, exists=False)
        raise TransportError(f"{runner.name}: cannot stat {path}: {stat.first_error_line()}")
    size, mode, owner, group = stat.stdout.split()
    digest = _sh(runner, _SHA256_SCRIPT, path)
    if digest.rc != 0:
        return RemoteFileState(path, True, int(size), int(mode, 8), owner, group, None, readable=False)
    return RemoteFileState(path, True, int(size), int(mode, 8), owner, group, digest.stdout.split()[0])


def write_file_atomic(
    runner: Runner,
    path: str,
    data: bytes,
    *,
    mode: int = 0o400,
    owner: Optional[str] = None,
    backup_path: Optional[str] = None,
) -> None:
    """Replace path with data atomically (see module docstring). owner is `user[:group]`."""
    want = hashlib.sha256(data).hexdigest()
    result = _sh(runner, _WRITE_SCRIPT, path, f"{mode:o}", owner or "", want, backup_path or "", stdin=data)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot write {path}: {result.first_error_line()}")


def read_small_file(runner: Runner, path: str, limit: int = 1 << 20) -> bytes:
    """Read a small non-secret text file (e.g. /etc/default/pacemaker); missing → b''."""
    result = runner.run(["sh", "-c", 'test ! -e "$1" || exec head -c "$2" -- "$1"', "remotectl", path, str(limit)])
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot read {path}: {result.first_error_line()}")
    return result.stdout.encode("utf-8", "surrogateescape")
