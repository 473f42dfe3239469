"""standby / unstandby / maintenance for cluster, remote and guest nodes alike.

Everything goes through ``crm_attribute --node NODE --name standby|maintenance``, which works for remote and guest
nodes whether or not the CIB has a ``<node type="remote">`` entry for them (it creates one on demand), live (locally
or over SSH) and on a CIB file (``CIB_file=``). Setting is ``--update on``; clearing deletes the attribute (like pcs),
so the other lifetime's value, if any, is what is left. Transient (``--lifetime reboot``) values override permanent
ones; a change that the other lifetime overrides is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.jsonable import json_field
from remotectl.pacemaker import tools
from remotectl.pacemaker.values import check_name, is_true
from remotectl.reports import ExitCode, RemotectlError, Report, Reporter

ATTRIBUTES = ("standby", "maintenance")
LIFETIMES = ("forever", "reboot")
ON = "on"
POLL_INTERVAL = 1.0


@dataclass
class AttributeChange:
    node: str
    attribute: str
    before: Optional[str] = None
    after: Optional[str] = None
    lifetime: str = "forever"
    changed: bool = False
    ok: bool = False
    error: Optional[str] = None
    effective: Optional[bool] = None  # what the node's state will be, all lifetimes considered
    settled: Optional[bool] = None  # --wait: the cluster shows the new state (None: not waited for)
    state: Optional[dict] = None  # crm_mon's view of the node after waiting


@dataclass
class NodeStateResult:
    changes: List[AttributeChange]
    reports: List[Report] = field(default_factory=list)
    waited: Optional[float] = json_field(omit=True, default=None)

    @property
    def exit_code(self) -> ExitCode:
        failed = [c for c in self.changes if not c.ok]
        if not failed:
            return ExitCode.OK
        if len(failed) == len(self.changes):
            return ExitCode.FAILURE
        return ExitCode.PARTIAL


class _AttributeTool:
    """crm_attribute for one node attribute, with its exit statuses turned into values and messages."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster

    def query(self, node: str, name: str, lifetime: str) -> Optional[str]:
        result = self.cluster.run_tool(tools.attribute_query(node, name, lifetime=lifetime))
        if result.rc == 0:
            if "value=" not in result.stdout:
                raise RemotectlError(f"unexpected crm_attribute output: {result.stdout.strip()[:200]!r}")
            return tools.attribute_value(result.stdout)
        self._raise(result, node)
        return None

    def update(self, node: str, name: str, value: str, lifetime: str) -> None:
        result = self.cluster.run_tool(tools.attribute_update(node, name, value, lifetime=lifetime))
        if result.rc != 0:
            self._raise(result, node, absent_ok=False)

    def delete(self, node: str, name: str, lifetime: str) -> None:
        result = self.cluster.run_tool(tools.attribute_delete(node, name, lifetime=lifetime))
        if result.rc != 0:
            self._raise(result, node)

    def _raise(self, result, node: str, absent_ok: bool = True) -> None:
        text = (result.stderr or "") + (result.stdout or "")
        if result.rc == 127:
            raise RemotectlError(f"{self.cluster.name}: crm_attribute is not installed there")
        if "Could not map name" in text or "could not map name" in text.lower():
            raise RemotectlError("no such node in this cluster (crm_attribute: could not map the name to a node)")
        if absent_ok and result.rc == tools.EXIT_NO_SUCH_OBJECT:
            return  # the attribute is not set
        raise RemotectlError(f"crm_attribute failed ({tools.exit_meaning(result.rc)}): {result.first_error_line()}")


def _other(lifetime: str) -> str:
    return "forever" if lifetime == "reboot" else "reboot"


def _effective(lifetime: str, new_value: Optional[str], other_value: Optional[str]) -> bool:
    """Transient (reboot) attributes override permanent (forever) ones."""
    if lifetime == "reboot":
        return is_true(new_value if new_value is not None else other_value)
    return is_true(other_value if other_value is not None else new_value)


def _reached(attribute: str, wanted: bool, node_state) -> bool:
    if node_state is None:
        return False
    if attribute == "standby":
        if wanted:
            return node_state.standby and node_state.resources_running == 0
        return not node_state.standby
    return node_state.maintenance == wanted


def set_node_attribute(
    cluster,
    nodes: Sequence[str],
    attribute: str,
    value: Optional[str],
    *,
    lifetime: str = "forever",
    wait: Optional[float] = None,
    poll_interval: float = POLL_INTERVAL,
    on_change: Optional[Callable[[AttributeChange], None]] = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> NodeStateResult:
    """Set (value "on") or clear (value None) a node attribute on each node, then optionally wait until crm_mon shows
    the resulting state (standby: resources moved off). One node's failure never stops the others."""
    if attribute not in ATTRIBUTES:
        raise RemotectlError(f"unsupported node attribute {attribute!r}")
    if lifetime not in LIFETIMES:
        raise RemotectlError(f"unknown lifetime {lifetime!r} (choose from {', '.join(LIFETIMES)})")
    reporter = Reporter()
    tool = _AttributeTool(cluster)
    changes: List[AttributeChange] = []
    seen = set()
    for node in nodes:
        if node in seen:
            continue
        seen.add(node)
        change = AttributeChange(node=node, attribute=attribute, lifetime=lifetime)
        changes.append(change)
        try:
            check_name("node", node)
            change.before = tool.query(node, attribute, lifetime)
            if change.before == value or (value is None and change.before is None):
                change.after = change.before
            else:
                if value is None:
                    tool.delete(node, attribute, lifetime)
                else:
                    tool.update(node, attribute, value, lifetime)
                change.after = value
                change.changed = True
            change.ok = True
        except RemotectlError as exc:
            change.error = exc.message
            if on_change:
                on_change(change)
            continue
        try:
            other = tool.query(node, attribute, _other(lifetime))
        except RemotectlError:
            other = None
        change.effective = _effective(lifetime, change.after, other)
        wanted = is_true(value)
        if change.effective != wanted:
            state_word = "in" if change.effective else "out of"
            reporter.warning(
                f"{node} stays {state_word} {attribute}: its {attribute}={other} with lifetime {_other(lifetime)} "
                f"{'overrides' if lifetime == 'forever' else 'remains when'} this one "
                f"(use --lifetime {_other(lifetime)} too)",
                node=node,
                code=f"{attribute}-overridden",
            )
        if on_change:
            on_change(change)

    waited = None
    if wait is not None:
        if not cluster.live:
            reporter.info("--wait ignored: a CIB file has no running cluster to wait for",
                          code="wait-ignored-cib-file")
        else:
            waited = _wait(cluster, [c for c in changes if c.ok], attribute, wait, poll_interval, clock, sleep,
                           reporter)
    return NodeStateResult(changes, reporter.reports, waited)


def _wait(cluster, changes: List[AttributeChange], attribute: str, timeout: float, poll_interval: float,
          clock, sleep, reporter: Reporter) -> float:
    from remotectl.pacemaker.status import read_status

    start = clock()
    deadline = start + timeout
    pending: Dict[str, AttributeChange] = {c.node: c for c in changes}
    last_error = None
    last_state: Dict[str, object] = {}
    while pending:
        try:
            state = read_status(cluster.crm_mon_xml())
            last_error = None
            for name, change in list(pending.items()):
                node_state = state.nodes.get(name)
                last_state[name] = node_state
                if _reached(attribute, bool(change.effective), node_state):
                    change.settled = True
                    change.state = observed(node_state)
                    del pending[name]
        except RemotectlError as exc:
            last_error = exc.message
        if not pending or clock() >= deadline:
            break
        sleep(min(poll_interval, max(deadline - clock(), 0)))
    for name, change in pending.items():
        node_state = last_state.get(name)
        change.settled = False
        change.ok = False
        change.state = observed(node_state) if node_state is not None else None
        if node_state is None:
            detail = last_error or "crm_mon does not show the node"
        elif attribute == "standby" and change.effective:
            detail = f"{node_state.resources_running} resource(s) still running there" if node_state.standby else \
                "crm_mon does not show it in standby yet"
        else:
            detail = f"crm_mon still shows {attribute}={'on' if getattr(node_state, attribute) else 'off'}"
        change.error = f"the change was made, but the cluster did not show it within {timeout:g} s: {detail}"
    return clock() - start


def observed(node_state) -> dict:
    """What --wait saw of a node (the ``state`` of a change in JSON)."""
    return {
        "type": node_state.type,
        "online": node_state.online,
        "standby": node_state.standby,
        "maintenance": node_state.maintenance,
        "unclean": node_state.unclean,
        "resources_running": node_state.resources_running,
    }


def standby(cluster, nodes: Sequence[str], *, lifetime: str = "forever", wait: Optional[float] = None,
            **kwargs) -> NodeStateResult:
    return set_node_attribute(cluster, nodes, "standby", ON, lifetime=lifetime, wait=wait, **kwargs)


def unstandby(cluster, nodes: Sequence[str], *, lifetime: str = "forever", wait: Optional[float] = None,
              **kwargs) -> NodeStateResult:
    return set_node_attribute(cluster, nodes, "standby", None, lifetime=lifetime, wait=wait, **kwargs)


def maintenance(cluster, nodes: Sequence[str], *, off: bool = False, lifetime: str = "forever",
                wait: Optional[float] = None, **kwargs) -> NodeStateResult:
    return set_node_attribute(cluster, nodes, "maintenance", None if off else ON, lifetime=lifetime, wait=wait,
                              **kwargs)
