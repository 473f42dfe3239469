"""fence NODE and fence history: always on a live cluster (locally or over SSH), never on a CIB file.

Cluster and remote nodes are fenced by the fencer (``stonith_admin --reboot|--fence``). Guest and bundle nodes have
no fencing device: Pacemaker "fences" them by recovering their container, and so does remotectl (see
remotectl.pacemaker.fencing). Confirmation is the caller's business: ``prepare_fence`` says what will happen,
``execute_fence`` does it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import fencing, tools
from remotectl.pacemaker.status import ClusterStatus, NodeStatus, read_status
from remotectl.pacemaker.values import check_name
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, Reporter

POLL_INTERVAL = 0.5
FENCE_TIMEOUT = 300.0  # stonith_admin waits up to its own --timeout (120 s by default) plus device retries
SEE_OFFLINE_WITHIN = 15.0

NOT_LIVE = "fencing needs a live cluster; it cannot be done on a CIB file (drop --cib)"


@dataclass
class FencePreparation:
    plan: fencing.FencePlan
    before: Optional[NodeStatus]
    reports: List[Report] = field(default_factory=list)


@dataclass
class FenceResult:
    """One fencing, in JSON as the plan's fields (node, type, action, method, container, host) then these."""

    plan: fencing.FencePlan = json_field(omit=True)
    before: Optional[str] = None
    after: Optional[str] = None
    ok: bool = False
    error: Optional[str] = None
    settled: Optional[bool] = None
    event: Optional[fencing.FenceEvent] = None
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.FAILURE

    def change(self) -> dict:
        """This fencing as one entry of the ``changes`` document: the plan's fields, then the outcome's."""
        return {**jsonable(self.plan), **jsonable(self)}


@dataclass
class FenceHistory:
    events: List[fencing.FenceEvent]
    reports: List[Report] = field(default_factory=list)


def _require_live(cluster) -> None:
    if not cluster.live:
        raise RemotectlError(NOT_LIVE)


def _cluster_state(cluster) -> ClusterStatus:
    return read_status(cluster.crm_mon_xml())


def prepare_fence(cluster, node: str, action: str = "reboot", *, force: bool = False) -> FencePreparation:
    """Find out what fencing node means here; refuse a node the cluster does not show unless force."""
    _require_live(cluster)
    check_name("node", node)
    state = _cluster_state(cluster)
    node_state = state.nodes.get(node)
    reporter = Reporter()
    if node_state is None:
        if not force:
            raise RefusedError(
                f"{node} is not a node of this cluster (crm_mon does not show it); nothing fenced "
                f"(use --force to hand it to the fencer anyway)"
            )
        reporter.warning(f"{node} is not shown by crm_mon; asking the fencer anyway (--force)", node=node,
                         code="fence-unlisted-node")
    plan = fencing.plan_fence(node, action, node_state)
    return FencePreparation(plan, node_state, reporter.reports)


def _latest_event(cluster, node: str) -> Optional[fencing.FenceEvent]:
    result = cluster.run_tool(tools.stonith_history(node))
    if result.rc != 0:
        return None
    try:
        events = fencing.parse_history(result.stdout)
    except RemotectlError:
        return None
    events = [e for e in events if e.target == node]
    completed = [e for e in events if e.status != "pending"]
    return (completed or events or [None])[0]


def execute_fence(
    cluster,
    preparation: FencePreparation,
    *,
    wait: Optional[float] = None,
    poll_interval: float = POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FenceResult:
    _require_live(cluster)
    plan = preparation.plan
    reporter = Reporter()
    reporter.reports.extend(preparation.reports)
    before = preparation.before.summary() if preparation.before else None
    result = FenceResult(plan=plan, before=before, reports=reporter.reports)
    if plan.method == "container-recovery":
        reporter.info(plan.explanation, node=plan.node, code="fence-method")
    outcome = cluster.run_tool(list(plan.argv), timeout=FENCE_TIMEOUT)
    if outcome.rc == 127:
        result.error = f"{cluster.name}: {plan.argv[0]} is not installed there"
        return result
    if outcome.rc != 0:
        result.error = f"{plan.argv[0]} failed ({tools.exit_meaning(outcome.rc)}): {outcome.first_error_line()}"
        if plan.method == "stonith":
            result.event = _latest_event(cluster, plan.node)
        return result
    result.ok = True
    if plan.method == "stonith":
        result.event = _latest_event(cluster, plan.node)
    else:
        reporter.info(
            f"guest fencing is not recorded in the fence history; {plan.container} keeps the simulated failure in "
            f"its operation history until you run: crm_resource --cleanup --resource {plan.container}",
            node=plan.node,
            code="guest-fence-needs-cleanup",
        )
    if wait is not None and plan.action != "reboot":
        reporter.info("--wait ignored: it waits for a node to come back, which a node fenced with 'off' does not",
                      node=plan.node, code="wait-ignored-fence-off")
    if wait is not None and plan.action == "reboot":
        result.settled, result.after, error = _wait_back(cluster, plan.node, wait, poll_interval, clock, sleep,
                                                         reporter)
        if not result.settled:
            result.ok = False
            result.error = error
    else:
        try:
            node_state = _cluster_state(cluster).nodes.get(plan.node)
            result.after = node_state.summary() if node_state else None
        except RemotectlError as exc:
            reporter.warning(f"could not read the cluster state afterwards: {exc.message}", node=plan.node,
                             code="state-unreadable")
    return result


def _wait_back(cluster, node: str, timeout: float, poll_interval: float, clock, sleep, reporter: Reporter):
    """Wait until crm_mon has shown the node down and then online again (after a reboot)."""
    start = clock()
    deadline = start + timeout
    seen_down = False
    last = None
    last_error = None
    while True:
        try:
            node_state = _cluster_state(cluster).nodes.get(node)
            last = node_state
            last_error = None
            if node_state is not None:
                if not node_state.online or node_state.unclean:
                    seen_down = True
                elif seen_down or clock() - start >= min(SEE_OFFLINE_WITHIN, timeout):
                    if not seen_down:
                        reporter.info(
                            f"crm_mon never showed {node} down (it recovered between two polls); it is online now",
                            node=node,
                            code="outage-too-short-to-see",
                        )
                    return True, node_state.summary(), None
        except RemotectlError as exc:
            last_error = exc.message
        if clock() >= deadline:
            break
        sleep(min(poll_interval, max(deadline - clock(), 0)))
    state_text = last.summary() if last is not None else (last_error or "not shown by crm_mon")
    return False, (last.summary() if last is not None else None), (
        f"fenced, but {node} was not back online within {timeout:g} s (crm_mon: {state_text})"
    )


def fence_history(cluster, node: Optional[str] = None) -> FenceHistory:
    """The fencer's history for node (or all nodes): every recorded and pending event."""
    _require_live(cluster)
    if node is not None:
        check_name("node", node)
    result = cluster.check_tool(tools.stonith_history(node))
    events = fencing.parse_history(result.stdout)
    if node is not None:
        events = [e for e in events if e.target == node]
    return FenceHistory(events)
