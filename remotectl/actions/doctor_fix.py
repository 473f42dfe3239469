"""`remotectl doctor --fix`: apply the fixes that are safe and reversible, then check again.

Only findings that carry a :class:`~remotectl.pacemaker.diagnosis.Repair` are applied (the cleanup of a failed
connection once its cause is gone, the owner and mode of a key file with the right bytes, the
removal of a stale node entry); every other fix stays a printed command and is listed as skipped, with why. Each
repair runs as argv lists: on the cluster through the cluster runner, on a node over SSH. Then doctor runs again
(Pacemaker applies a cleanup asynchronously and reconnects on its own time: while a fixed node still has a problem
it checks again, for up to :data:`SETTLE_SECONDS`), and each fix is reported
applied, failed or skipped; the exit code is that of the check after the fixes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from remotectl.actions.doctor import DoctorResult, run_doctor
from remotectl.jsonable import json_field
from remotectl.pacemaker import diagnosis as dx
from remotectl.reports import Reporter

SETTLE_SECONDS = 20.0  # how long the check after the fixes waits for a fixed finding to go
_SKIP_REASONS = {
    "failed-connection": "the cause may not be gone: the node has other findings, or not every cluster node "
                         "reaches it with the matching key; fix that first",
    "key-unreadable": "the key there is not the one most nodes hold: install the cluster's key",
}


@dataclass
class Fix:
    """One finding's fix and what became of it (``fixes`` in the JSON)."""

    check: str
    node: Optional[str]
    fix: str
    fix_on: Optional[str]
    status: str  # planned | applied | failed | skipped
    reason: Optional[str] = None  # why failed or skipped
    repair: Optional[dx.Repair] = json_field(omit=True, default=None)


def plan_fixes(result: DoctorResult) -> List[Fix]:
    """Every finding with a fix: ``planned`` when --fix may apply it, else ``skipped`` with the reason."""
    fixes = []
    for finding in result.findings:
        if not finding.fix:
            continue
        if finding.repair is not None:
            fixes.append(Fix(finding.check, finding.node, finding.fix, finding.fix_on, "planned",
                             repair=finding.repair))
            continue
        reason = _SKIP_REASONS.get(finding.check, "not a safe, reversible fix: run it yourself")
        if finding.fix_on == "here":
            reason = "changes every node: run it yourself"
        fixes.append(Fix(finding.check, finding.node, finding.fix, finding.fix_on, "skipped", reason))
    return fixes


def apply_fixes(cluster, fixes: Sequence[Fix], names: Sequence[str], *, runner_for: Callable[[str], Any],
                timeout: float = 5.0, settle: float = SETTLE_SECONDS,
                sleep: Callable[[float], None] = time.sleep) -> DoctorResult:
    """Run the planned fixes (in place: each becomes applied or failed), then check again; the result of that
    check carries ``fixes`` and the reports of any failed fix."""
    from remotectl.actions.nodes import list_nodes

    reporter = Reporter()
    nodes = {n.name: n for n in list_nodes(cluster).nodes}
    for item in fixes:
        if item.status != "planned" or item.repair is None:
            continue
        error = _run(cluster, item.repair, nodes, runner_for)
        item.status, item.reason = ("failed", error) if error else ("applied", None)
        if error:
            reporter.error(f"{item.check}: {item.fix} failed: {error}", node=item.node, code="doctor-fix-failed")
    deadline = time.monotonic() + settle
    while True:  # after a cleanup the cluster reconnects on its own time: wait while a fixed node has a problem
        after = run_doctor(cluster, names, runner_for=runner_for, timeout=timeout)
        applied = [item for item in fixes if item.status == "applied"]
        troubled = {f.node for f in after.findings if f.severity in ("critical", "warning")}
        if not any(item.node in troubled for item in applied) or time.monotonic() >= deadline:
            break
        sleep(1.0)
    for item in _still_found(after, fixes):
        item.status, item.reason = "failed", "the check after the fix still finds it"
        reporter.error(f"{item.check}: still found after {item.fix}", node=item.node, code="doctor-fix-failed")
    after.fixes = list(fixes)
    after.reports = reporter.reports + after.reports
    return after


def _ssh_for(nodes: Dict[str, Any], name: str) -> str:
    from remotectl.actions.nodes import ssh_destination

    return ssh_destination(nodes[name]) if name in nodes else name


def _run(cluster, repair: dx.Repair, nodes: Dict[str, Any], runner_for) -> Optional[str]:
    """None when every argv of the repair exited 0, else the first error line."""
    from remotectl.pacemaker import tools
    from remotectl.reports import RemotectlError

    try:
        runner = None if repair.on == "cluster" else runner_for(_ssh_for(nodes, repair.on))
        for argv in repair.argvs:
            if runner is None:
                done = cluster.run_tool(list(argv), timeout=60)
                if not done.ok:
                    return tools.failure_detail(done.stdout, done.stderr) or tools.exit_meaning(done.rc)
            else:
                done = runner.run(list(argv), timeout=60)
                if not done.ok:
                    return done.first_error_line()
    except RemotectlError as exc:
        return exc.message
    return None


def _still_found(after: DoctorResult, fixes: Sequence[Fix]) -> List[Fix]:
    found = {(f.check, f.node) for f in after.findings if f.severity in ("critical", "warning")}
    return [item for item in fixes if item.status == "applied" and (item.check, item.node) in found]
