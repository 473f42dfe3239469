"""A small private on-disk cache (``$XDG_CACHE_HOME/remotectl``, else ``~/.cache/remotectl``) and a refresher
that runs in the background with a deadline, so that shell completion never waits long for a slow cluster.

Files are JSON documents of at most ``MAX_BYTES``, written atomically with mode 0600 in a 0700 directory owned
by the user; anything else found there (a symlink, a file owned by someone else, a huge or garbled file) is
treated as "no cache", never trusted and never followed. Only the standard library at import time (writing uses
``localfiles.write_secret_file``); imported only when completion asks for a node name or a resource id.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import stat
import time
from typing import Any, Callable, Dict, Optional

MAX_BYTES = 1024 * 1024
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def cache_dir(*, create: bool = False) -> Optional[str]:
    """The cache directory, or None when it cannot be used safely (then callers simply do without a cache)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says relative values are to be ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    path = os.path.join(base, "remotectl")
    try:
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return None
    return path


def _path(name: str, *, create: bool = False) -> Optional[str]:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad cache file name {name!r}")
    directory = cache_dir(create=create)
    return os.path.join(directory, name) if directory else None


def read_json(name: str) -> Optional[Dict[str, Any]]:
    """The JSON object stored under ``name``, or None (missing, not ours, not a regular file, too big, garbled)."""
    path = _path(name)
    if path is None:
        return None
    try:
        fd = os.open(path, _OPEN_READ)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > MAX_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        return None
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def write_json(name: str, document: Dict[str, Any]) -> bool:
    """Store ``document`` under ``name`` atomically with mode 0600. False when there is no usable cache dir."""
    from remotectl.reports import RemotectlError
    from remotectl.transport.localfiles import write_secret_file

    path = _path(name, create=True)
    if path is None:
        return False
    data = json.dumps(document, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_BYTES:
        return False
    try:
        write_secret_file(path, data, mode=0o600, overwrite=True)
    except RemotectlError:
        return False
    return True


def remove_json(name: str) -> None:
    """Forget what is stored under ``name`` (nothing to do when it is not there)."""
    path = _path(name)
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def try_lock(name: str) -> Optional[int]:
    """Take the exclusive lock ``name`` without waiting: a file descriptor (the lock lives as long as it, in
    this process and in children forked while it is open), or None when someone else holds it."""
    path = _path(name, create=True)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def run_in_background(work: Callable[[], None], *, wait: float, hard_timeout: int) -> bool:
    """Run ``work()`` in a detached process and wait at most ``wait`` seconds for it to finish.

    True when it finished in time. Otherwise it carries on alone (its stdin, stdout and stderr on /dev/null, so a
    shell capturing our output does not wait for it either), in its own session, and is killed together with
    anything it started after ``hard_timeout`` seconds. What it produces must go to a file (e.g. ``write_json``).
    Locks held by the caller are inherited: close your copy after this returns.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; tested through the completion integration tests
        try:
            os.close(read_end)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)  # the grandchild is reparented to init: no zombie in the caller
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)

            def deadline(signum, frame):
                os.killpg(0, signal.SIGKILL)

            signal.signal(signal.SIGALRM, deadline)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.alarm(max(1, int(hard_timeout)))
            work()
            signal.alarm(0)
            os.killpg(0, signal.SIGKILL)  # nothing it started outlives it (ourselves included: the end)
        except BaseException:
            pass
        finally:
            os._exit(0)  # the write end closes here: that is the "finished" signal
    os.close(write_end)
    try:
        os.waitpid(pid, 0)
        end = time.monotonic() + max(0.0, wait)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                ready, _, _ = select.select([read_end], [], [], left)
            except InterruptedError:
                continue
            if ready:
                return os.read(read_end, 1) == b""
    finally:
        os.close(read_end)
