"""Fail counts and failure expiry (lib/pengine/failcounts.c ``pe_get_failcount``, unpack.c
``check_operation_expiry``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Optional

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.enums import OcfRc
from remotectl.pacemaker.simulate.objects import PeNode, PeResource, clone_strip
from remotectl.pacemaker.simulate.working_set import WorkingSet


def unexpired_failcount(ws: WorkingSet, node: PeNode, rsc: PeResource) -> int:
    """``pe_get_failcount`` with ``pe_fc_effective``: the fail count of ``rsc`` on ``node``, or 0 once
    ``failure-timeout`` has passed since its last failure."""
    name = rsc.clone_name or rsc.id
    if not rsc.unique:
        name = clone_strip(name)
    inst = "" if rsc.unique else "(:[0-9]+)?"
    op_pat = "" if ws.legacy_failcounts else "#.+_[0-9]+"
    fc_re = re.compile(f"^fail-count-{re.escape(name)}{inst}{op_pat}$")
    lf_re = re.compile(f"^last-failure-{re.escape(name)}{inst}{op_pat}$")
    count = 0
    last = 0
    for k, v in node.attrs.items():
        if fc_re.match(k):
            count = values.add_scores(count, values.char2score(v))
        elif lf_re.match(k):
            n = values.scan_ll(v)
            if n is not None:
                last = max(last, n)
    if count > 0 and last > 0 and rsc.failure_timeout and ws.now > last + rsc.failure_timeout:
        return 0
    return count


def check_operation_expiry(ws: WorkingSet, rsc: PeResource, node: PeNode, rc: int, op: ElementTree.Element) -> bool:
    """``check_operation_expiry`` (unpack.c): has the failure recorded by ``op`` expired?"""
    expired = False
    interval_ms = values.element_int(op, "interval", 0)
    task = op.get("operation")
    last_run = values.scan_ll(op.get("last-rc-change"))
    if rsc.failure_timeout > 0 and last_run is not None:
        if ws.now >= last_run + rsc.failure_timeout and not ignore_failure_timeout(ws, rsc, task, interval_ms):
            # not while a fail count still counts (Pacemaker: total fail count set and unexpired one not 0;
            # the unexpired count is either the total or 0)
            expired = unexpired_failcount(ws, node, rsc) == 0
    if expired and interval_ms == 0 and task == "monitor" and rc in (
        OcfRc.OK, OcfRc.NOT_RUNNING, OcfRc.RUNNING_PROMOTED, OcfRc.DEGRADED, OcfRc.DEGRADED_PROMOTED
    ):
        expired = False
    return expired


def ignore_failure_timeout(ws: WorkingSet, rsc: PeResource, task: Optional[str], interval_ms: int) -> bool:
    """``should_ignore_failure_timeout`` (unpack.c): a remote connection's recurring monitor
    failure does not expire while the node still needs fencing."""
    if rsc.remote_reconnect_ms and ws.stonith_enabled and interval_ms != 0 and task == "monitor":
        rnode = ws.find_node(rsc.id)
        if rnode is not None and not rnode.remote_was_fenced:
            return True
    return False
