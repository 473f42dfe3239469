"""Node names and resource ids for shell completion: fast, cached, and never a frozen shell.

One cache file per cluster target (``local``, or the SSH destination as given) holds both lists. A lookup:

* answers from the cache while it is younger than ``TTL`` seconds;
* otherwise starts one refresh in a detached process (``transport.cache.run_in_background``) and waits for it
  at most ``wait`` seconds (``REMOTECTL_COMPLETION_TIMEOUT``, default ``DEFAULT_WAIT``); when it is not done by
  then the stale values (or nothing) are offered, and the refresh finishes on its own for the next TAB, killed
  after ``REFRESH_TIMEOUT`` seconds at the latest;
* does not start another refresh while one runs (a lock) or within ``TTL`` of the last attempt, so an
  unreachable cluster costs one short wait per ``TTL``, not one per TAB.

An offline CIB file (``--cib``) is read directly: it is local and quick to parse.
Values from a cluster are hostile: anything that could not be inserted safely on a shell command line is dropped.
"""

from __future__ import annotations

import os
import re
import time
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.display import is_plain
from remotectl.transport import cache

TTL = 30.0
DEFAULT_WAIT = 1.5
MAX_WAIT = 5.0
REFRESH_TIMEOUT = 20
TOOL_TIMEOUT = 15.0
MAX_VALUES = 5000
KINDS = ("nodes", "resources")
FORMAT = 1

# What may be offered on a shell command line as is: no whitespace, quotes, globs, expansions or separators.
_SAFE_VALUE = re.compile(r"[^\s'\"`$\\;&|<>(){}\[\]*?!#~]{1,200}")


def completion_wait() -> float:
    """How long a TAB may wait for a cluster, from REMOTECTL_COMPLETION_TIMEOUT (seconds), within [0, 5]."""
    text = os.environ.get("REMOTECTL_COMPLETION_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_WAIT
    except ValueError:
        value = DEFAULT_WAIT
    if value != value:  # NaN
        value = DEFAULT_WAIT
    return min(max(value, 0.0), MAX_WAIT)


def safe_values(values: Sequence[object]) -> List[str]:
    """Unique strings that can be put on a shell command line verbatim, in their original order."""
    seen = set()
    result = []
    for value in values:
        if (isinstance(value, str) and value not in seen and _SAFE_VALUE.fullmatch(value) and is_plain(value)
                and not value.startswith("-")):  # never a value the command would read as an option
            seen.add(value)
            result.append(value)
            if len(result) >= MAX_VALUES:
                break
    return result


def cache_file_name(target: str) -> str:
    """A readable, injective file name for a cluster target: safe characters kept, the rest %XX-escaped."""
    escaped = "".join(
        ch if (ch.isascii() and (ch.isalnum() or ch in "-_@")) else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in target
    )
    if len(escaped) > 180:
        import hashlib

        escaped = escaped[:100] + "+" + hashlib.sha256(target.encode("utf-8")).hexdigest()[:32]
    return f"completion-{escaped}.json"


# -- fetching (in the refresher) ------------------------------------------------------------------------------
def resource_ids_from_cib(cib_xml) -> List[str]:
    """Ids of the primitives, groups, clones (and legacy masters) and bundles under configuration/resources."""
    from remotectl.pacemaker.constraints import resource_elements
    from remotectl.pacemaker.xmlsafe import parse

    return [element.get("id") for element in resource_elements(parse(cib_xml, "CIB"))]


class _CibOnce:
    """A cluster client that fetches the CIB at most once (node listing and resource ids both need it)."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster
        self._cib = None
        self.live = cluster.live
        self.name = cluster.name

    def cib_xml(self) -> str:
        if self._cib is None:
            if self._cluster.live:
                from remotectl.pacemaker import tools

                self._cib = self._cluster.check_tool(tools.cib_query(), timeout=TOOL_TIMEOUT).stdout
            else:
                self._cib = self._cluster.cib_xml()
        return self._cib

    def crm_mon_xml(self) -> str:
        from remotectl.pacemaker import tools

        return self._cluster.check_tool(tools.crm_mon_xml(), timeout=TOOL_TIMEOUT).stdout

    def __getattr__(self, name):
        return getattr(self._cluster, name)


def _node_names(cluster) -> List[str]:
    from remotectl.actions.nodes import list_nodes

    return safe_values([node.name for node in list_nodes(cluster).nodes])


def _resource_ids(cluster) -> List[str]:
    return safe_values(resource_ids_from_cib(cluster.cib_xml()))


_FETCH = {"nodes": _node_names, "resources": _resource_ids}


def fetch_values(cluster) -> Dict[str, List[str]]:
    """Node names (``actions.nodes.list_nodes``) and resource ids (the CIB) of one cluster, shell-safe."""
    client = _CibOnce(cluster)
    return {kind: fetch(client) for kind, fetch in _FETCH.items()}


def values_from_cib_file(path: str, kind: str) -> List[str]:
    """Completion values of one kind straight from an offline CIB file (no cache): only that kind is computed."""
    from remotectl.transport.cluster import CibFileCluster

    return _FETCH[kind](CibFileCluster(path))


# -- the cache ------------------------------------------------------------------------------------------------
def _entry(target: str) -> Optional[dict]:
    entry = cache.read_json(cache_file_name(target))
    if entry is None or entry.get("format") != FORMAT or entry.get("target") != target:
        return None
    return entry


def _values(entry: Optional[dict], kind: str) -> List[str]:
    if not entry:
        return []
    values = entry.get(kind)
    return safe_values(values) if isinstance(values, list) else []


def _number(entry: Optional[dict], key: str) -> float:
    value = (entry or {}).get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


def refresh(target: str, connect: Callable[[], object]) -> None:
    """Fetch and store the values for ``target`` (runs in the detached refresher; records failures too)."""
    name = cache_file_name(target)
    old = _entry(target) or {}
    base = {"format": FORMAT, "target": target, **{kind: _values(old, kind) for kind in KINDS}}
    base["fetched_at"] = _number(old, "fetched_at")
    cache.write_json(name, dict(base, attempted_at=time.time()))
    try:
        cluster = connect()
        try:
            values = fetch_values(cluster)
        finally:
            close = getattr(cluster, "close", None)
            if close:
                close()
    except Exception as exc:  # any failure: keep the old values, remember when we tried
        message = " ".join(str(exc).split())[:300]
        cache.write_json(name, dict(base, attempted_at=time.time(), error=f"{type(exc).__name__}: {message}"))
        return
    now = time.time()
    cache.write_json(name, dict(base, **values, fetched_at=now, attempted_at=now))


def lookup(
    target: str,
    kind: str,
    connect: Callable[[], object],
    *,
    wait: Optional[float] = None,
    now: Optional[float] = None,
) -> List[str]:
    """Values of ``kind`` ("nodes" or "resources") for the cluster ``target``, within about ``wait`` seconds.

    ``connect()`` builds the cluster client; it is called only in the refresher, so a warm cache imports
    nothing but this module and the cache file code.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown completion kind {kind!r}")
    wait = completion_wait() if wait is None else wait
    current = time.time() if now is None else now
    entry = _entry(target)
    if entry and 0 <= current - _number(entry, "fetched_at") < TTL:
        return _values(entry, kind)
    if cache.cache_dir(create=True) is None:
        return []  # nowhere to keep what a refresher would fetch (e.g. an unusable home): offer nothing
    lock_name = cache_file_name(target)[: -len(".json")] + ".lock"
    lock = cache.try_lock(lock_name)
    if lock is None:  # another TAB's refresher is at work: wait for its result, as long as we may
        return _values(_wait_for_other(target, entry, wait), kind)
    try:
        if entry and 0 <= current - _number(entry, "attempted_at") < TTL:
            return _values(entry, kind)  # the last attempt failed a moment ago: do not retry on every TAB
        cache.run_in_background(lambda: refresh(target, connect), wait=wait, hard_timeout=REFRESH_TIMEOUT)
    finally:
        os.close(lock)
    return _values(_entry(target) or entry, kind)


def _wait_for_other(target: str, entry: Optional[dict], wait: float) -> Optional[dict]:
    """Another process is refreshing: poll its result until it lands or ``wait`` runs out."""
    before = _number(entry, "fetched_at")
    end = time.monotonic() + wait
    while time.monotonic() < end:
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        newer = _entry(target)
        if newer and _number(newer, "fetched_at") > before:
            return newer
    return _entry(target) or entry
