"""Name lookups: DNS is I/O, so it lives with the other transports (the actions layer only matches the answers)."""

from __future__ import annotations

import socket
from typing import Dict, FrozenSet


class AddressCache:
    """Best-effort name -> IP addresses, each name looked up once; a name that does not resolve maps to itself."""

    def __init__(self) -> None:
        self._cache: Dict[str, FrozenSet[str]] = {}

    def addresses(self, host: str) -> FrozenSet[str]:
        if host not in self._cache:
            try:
                infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
                found = frozenset(info[4][0] for info in infos)
            except (OSError, UnicodeError):
                found = frozenset()
            self._cache[host] = found | {host}
        return self._cache[host]
