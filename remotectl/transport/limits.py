"""How many sockets this process may still open: the default concurrency of a fan-out must fit the open-file
limit (RLIMIT_NOFILE), so the default never ends in EMFILE."""

from __future__ import annotations

import os
from typing import Optional

# Descriptors kept free for what a run opens beside its sockets: the key file, lazily imported modules, GnuTLS's
# configuration, the idna codec getaddrinfo may load, rich's terminal probing.
RESERVE = 16


def open_fds() -> Optional[int]:
    """How many descriptors this process holds now (None when /proc is not there)."""
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return max(0, len(os.listdir(path)) - 1)  # minus the one listdir itself opened
        except OSError:
            continue
    return None


def soft_nofile() -> Optional[int]:
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def socket_budget(per_worker: int = 1, reserve: int = RESERVE) -> Optional[int]:
    """How many workers, each holding ``per_worker`` sockets at once, fit under the soft open-file limit with
    ``reserve`` descriptors to spare (at least 1); None when there is no limit to respect."""
    limit = soft_nofile()
    if limit is None:
        return None
    held = open_fds()
    if held is None:
        held = 3 + reserve  # stdio and friends, counted twice rather than too few
    return max(1, (limit - held - reserve) // max(1, per_worker))


def cap_workers(wanted: int, per_worker: int = 1) -> int:
    """``wanted``, lowered when its sockets would not fit the open-file limit."""
    budget = socket_budget(per_worker)
    return max(1, wanted if budget is None else min(wanted, budget))
