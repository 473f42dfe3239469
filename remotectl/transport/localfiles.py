"""Secret files on this machine: atomic creation of a key file and bounded reads of one.

`write_secret_file` creates a temp file next to the target that already has its final mode (and owner) before a
single byte is written, writes, fsyncs, then moves it into place: `os.replace` when overwriting is allowed,
otherwise `os.link` + unlink, which refuses atomically if the target appeared in the meantime. The temp file is
removed on every error path (and on Ctrl-C); a SIGKILL can leave only a private (final-mode) temp file named
`.remotectl.<pid>.*`, which the next write in that directory removes.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import stat
import tempfile
from dataclasses import dataclass
from typing import Optional, Tuple

from remotectl.reports import RefusedError, RemotectlError

_TEMP_RE = re.compile(r"^\.remotectl\.(\d+)\.")


@dataclass(frozen=True)
class LocalFileInfo:
    path: str
    size: int
    mode: int
    owner: str
    group: str


def account_ids(user: str, group: str) -> Optional[Tuple[int, int]]:
    """(uid, gid) when both exist here, else None."""
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _name_of_uid(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _name_of_gid(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def file_info(path: str) -> LocalFileInfo:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RemotectlError(f"{path} does not exist") from None
    except OSError as exc:
        raise RemotectlError(f"cannot stat {path}: {exc.strerror}") from None
    return LocalFileInfo(path, st.st_size, stat.S_IMODE(st.st_mode), _name_of_uid(st.st_uid), _name_of_gid(st.st_gid))


def read_secret_file(path: str, limit: int, *, what: str = "key file") -> bytes:
    """Read a key file (or another small file, named `what` in errors) of at most `limit` bytes (a larger one is
    refused without reading it all). Only a regular file (a symlink to one is fine), checked before reading: a FIFO
    would hang, a device never end."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
                raise RemotectlError(f"{what} {path} is {kind}, not a regular file")
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise RemotectlError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise RemotectlError(f"{what} {path} is a directory") from None
    except OSError as exc:
        raise RemotectlError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        tail = "; is it really a Pacemaker authkey?" if what == "key file" else ""
        raise RemotectlError(f"{what} {path} is larger than {limit} bytes{tail}")
    return data


def is_regular_or_absent(path: str) -> bool:
    """Nothing at path, or a regular file (not a symlink, directory or device): what may be replaced."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True


def make_private_dir(path: str) -> None:
    """Create directory path (and parents) with mode 0700 when it does not exist."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise RemotectlError(f"cannot create directory {path}: {exc.strerror}") from None


def remove_stale_temp_files(directory: str) -> int:
    """Remove `.remotectl.<pid>.*` files in directory whose writer process is gone."""
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        match = _TEMP_RE.match(name)
        if not match:
            continue
        if os.path.exists(f"/proc/{match.group(1)}"):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed += 1
        except OSError:
            pass
    return removed


def write_secret_file(
    path: str,
    data: bytes,
    *,
    mode: int = 0o400,
    owner: Optional[Tuple[int, int]] = None,
    overwrite: bool = False,
) -> None:
    """Atomically install `data` at `path` with `mode` (and `owner` (uid, gid) when given).
    Raises RefusedError when path exists and overwrite is False, and when overwrite would replace anything but a
    regular file (a device node, FIFO, socket or directory; a symbolic link, which is named, not followed)."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    if not overwrite and os.path.lexists(path):
        raise RefusedError(f"{path} already exists; pass --force to replace it")
    if overwrite:
        _refuse_unless_regular(path)
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o750)
        except OSError as exc:
            raise RemotectlError(f"cannot create directory {directory}: {exc.strerror}") from None
    remove_stale_temp_files(directory)
    old_umask = os.umask(0o077)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".remotectl.{os.getpid()}.", dir=directory)
    except OSError as exc:
        raise RemotectlError(f"cannot create a file in {directory}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    try:
        try:
            os.fchmod(fd, mode)  # the final mode before any byte is written
            if owner is not None:
                os.fchown(fd, owner[0], owner[1])
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise RefusedError(f"{path} already exists; pass --force to replace it") from None
            os.unlink(tmp)
        tmp = None
        _fsync_directory(directory)
    except OSError as exc:
        raise RemotectlError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def _refuse_unless_regular(path: str) -> None:
    """--force replaces a regular file only: renaming over /dev/null or a FIFO would swap a system file for a key,
    and replacing a symlink would silently write somewhere else than the operator may think (its target)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RemotectlError(f"cannot stat {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise RefusedError(f"{path} is a symbolic link (to {target}); refusing to replace it: give the "
                           "path of the file itself")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "not a regular file")
        raise RefusedError(f"{path} is {kind}; --force replaces only a regular file")


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
