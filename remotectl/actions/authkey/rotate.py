"""Rotate: replace the key on every node, restart what keeps it in memory, roll back on any failure.

Plan → confirm → execute, as fence does: :func:`prepare_rotation` probes every node and builds the plan without
changing anything; :func:`rotate_key` shows it (``on_plan``), stops there for a dry run or when a node is
unreachable, else :func:`execute_rotation` pushes, verifies, and restarts or rolls back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from remotectl.actions.authkey.facts import (NodeFacts, ProgressCallback, RunnerFactory, active_runners,
                                             inspect_node)
from remotectl.actions.authkey.keys import check_size, generate_key
from remotectl.actions.authkey.push import NodeKeyResult, PushOptions, backup_stamp, failed_connect, push_key
from remotectl.actions.authkey.verify import VerifyResult, verify_keys
from remotectl.actions.targets import Target
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import authkey as model
from remotectl.pacemaker import tools
from remotectl.reports import ExitCode, RemotectlError, Report, Reporter
from remotectl.transport import files
from remotectl.transport.base import Runner


@dataclass
class RestartOutcome:
    node: str
    kind: str
    command: Optional[str]
    needed: bool
    status: str  # done | not-needed | failed | planned | skipped
    message: str

    @classmethod
    def of(cls, step: model.RestartStep, *, status: str, message: Optional[str] = None,
           command: bool = True) -> "RestartOutcome":
        """`command`: show the step's command line (run_restarts leaves it out for steps it does not need)."""
        return cls(node=step.node, kind=step.kind, command=" ".join(step.argv) if command else None,
                   needed=step.needed, status=status, message=step.reason if message is None else message)

    def to_json(self) -> dict:
        return jsonable(self)


def _verify_json(verify: Optional[VerifyResult]) -> Optional[dict]:
    return verify.to_json() if verify is not None else None


@dataclass
class RotateResult:
    """Fields in JSON order; ``consistent``, ``rolled_back`` and ``interrupted`` close the document (see to_json)."""

    dry_run: bool
    ok: bool
    fingerprint: Optional[str]  # the new key (None in a dry run: it is generated only when applying)
    size: int
    plan: List[str]
    nodes: List[NodeKeyResult]
    restarts: List[RestartOutcome] = field(default_factory=list)
    verify: Optional[VerifyResult] = json_field(default=None, convert=_verify_json)
    rolled_back: bool = json_field(omit=True, default=False)
    previous: Dict[str, Optional[str]] = json_field(omit=True, default_factory=dict)  # node → fingerprint before
    reports: List[Report] = json_field(omit=True, default_factory=list)
    interrupted: bool = json_field(omit=True, default=False)  # Ctrl-C during the push: no rollback, no restart

    @property
    def consistent(self) -> Optional[bool]:
        return self.verify.verdict.consistent if self.verify else None

    def exit_code(self) -> int:
        """0 done; 1 nothing could be done (a node unreachable before anything changed, or every node failed);
        3 some nodes failed (the push was rolled back, a restart failed, or the rollback itself failed)."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.ok:
            return ExitCode.OK
        considered = [n for n in self.nodes if n.status != "skipped"]
        if not considered or all(n.status == "failed" for n in considered):
            return ExitCode.FAILURE
        return ExitCode.PARTIAL

    def to_json(self) -> dict:
        return jsonable(self, extra=("consistent", "rolled_back", "interrupted"))


# -- restarts ----------------------------------------------------------------------------------------------------------
def online_nodes(cluster) -> Set[str]:
    """The names of the nodes that are online. crm_mon alone says so (no CIB fetch and parse on every poll); the
    only place rotate reads node state."""
    from remotectl.pacemaker.status import read_status

    return {node.name for node in read_status(cluster.crm_mon_xml()).nodes.values() if node.online}


class Restarter:
    """Runs the restart steps. Separate so that tests (and the lab, which has no systemd) can substitute it;
    ``clock``/``sleep`` are injected so that waiting can be tested without waiting."""

    def __init__(self, runner_factory: RunnerFactory, cluster_factory: Optional[Callable[[], object]],
                 *, online_timeout: float = 300.0, poll: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.runner_factory = runner_factory
        self.cluster_factory = cluster_factory
        self.online_timeout = online_timeout
        self.poll = poll
        self.clock = clock
        self.sleep = sleep

    def run_on(self, destination: str, argv: Sequence[str]) -> Tuple[bool, str]:
        result = self.runner_factory(destination).run(list(argv), timeout=self.online_timeout)
        return result.rc == 0, result.first_error_line() if result.rc else "ok"

    def cluster_tool(self, argv: Sequence[str]) -> Tuple[bool, str]:
        if self.cluster_factory is None:
            return False, "no cluster to ask"
        result = self.cluster_factory().run_tool(list(argv))
        return result.rc == 0, result.first_error_line() if result.rc else "ok"

    def maintenance_mode(self) -> Optional[str]:
        if self.cluster_factory is None:
            return None
        result = self.cluster_factory().run_tool(tools.cluster_property_query("maintenance-mode"))
        if result.rc != 0:
            return None
        return tools.attribute_value(result.stdout)

    def offline(self, names: Sequence[str]) -> List[str]:
        """Those of `names` that are not online now (all of them when the cluster cannot be asked)."""
        try:
            online = online_nodes(self.cluster_factory())
        except RemotectlError:
            return list(names)
        return [name for name in names if name not in online]

    def wait_online(self, names: Sequence[str]) -> Tuple[bool, List[str]]:
        """Until every named node is online (crm_mon), or the timeout; returns the ones still offline."""
        deadline = self.clock() + self.online_timeout
        while True:
            missing = self.offline(names)
            if not missing:
                return True, []
            if self.clock() >= deadline:
                return False, missing
            self.sleep(self.poll)


def _restart_needed(steps: Sequence[model.RestartStep], targets: Dict[str, Target], restarter: Restarter,
                    reporter: Reporter) -> List[RestartOutcome]:
    """Steps 2 and 3 of run_restarts: remote and guest nodes, then cluster nodes one at a time."""
    outcomes: List[RestartOutcome] = []
    for step in steps:
        done, message = restarter.run_on(targets[step.node].host, step.argv)
        status = "done" if done else "failed"
        if done and step.kind == "cluster":
            online, _ = restarter.wait_online([step.node])
            if not online:
                status, message = "failed", f"not online again within {restarter.online_timeout:g} s"
        outcomes.append(RestartOutcome.of(step, status=status, message=None if done else message))
        if status == "failed":
            reporter.error(f"restart failed: {message}", node=step.node, code="restart-failed")
            if step.kind == "cluster":
                break  # rolling: never take a second cluster node down after one failed to come back
    return outcomes


def run_restarts(steps: Sequence[model.RestartStep], targets: Dict[str, Target], restarter: Restarter,
                 reporter: Reporter) -> List[RestartOutcome]:
    """The restart procedure for nodes whose Pacemaker keeps the key for the daemon's lifetime (3.0.2+):
    1. set maintenance-mode=true (the cluster neither recovers nor fences while daemons restart with a key the
       other side may not have loaded yet); 2. restart pacemaker_remote on those remote and guest nodes;
    3. restart pacemaker on those cluster nodes one at a time, waiting until each is online again;
    4. put maintenance-mode back; 5. wait until every restarted node is online."""
    outcomes = [RestartOutcome.of(s, status="not-needed", command=False) for s in steps if not s.needed]
    needed = [s for s in steps if s.needed]
    if not needed:
        return outcomes
    previous = restarter.maintenance_mode()
    ok, message = restarter.cluster_tool(tools.cluster_property_update("maintenance-mode", "true"))
    if not ok:
        reporter.error(f"cannot set maintenance-mode before restarting: {message}; no daemon restarted",
                       code="maintenance-mode-not-set")
        return outcomes + [RestartOutcome.of(s, status="skipped") for s in needed]
    try:
        outcomes += _restart_needed(needed, targets, restarter, reporter)
    finally:
        argv = tools.cluster_property_delete("maintenance-mode") if previous is None else \
            tools.cluster_property_update("maintenance-mode", previous)
        ok, message = restarter.cluster_tool(argv)
        if not ok:
            reporter.error(f"could not put maintenance-mode back ({previous or 'unset'}): {message}",
                           code="maintenance-mode-not-restored")
    tried = {o.node for o in outcomes}
    outcomes += [RestartOutcome.of(s, status="skipped", message="not restarted: an earlier cluster node did not come "
                                                                "back") for s in needed if s.node not in tried]
    restarted = [o.node for o in outcomes if o.status == "done"]
    if restarted:
        online, missing = restarter.wait_online(restarted)
        if not online:
            reporter.error(f"still offline after the restarts: {', '.join(missing)}", code="still-offline")
            for outcome in outcomes:
                if outcome.node in missing:
                    outcome.status, outcome.message = "failed", "not online again after the restart"
    return outcomes


# -- plan ------------------------------------------------------------------------------------------------------------
@dataclass
class RotationPlan:
    """What the preflight learnt (nothing changed yet) and what rotate will do."""

    targets: List[Target]  # every target, the skipped ones too
    active: List[Target]
    runners: Dict[str, Runner]  # by destination
    size: int
    path: Optional[str]
    restart: bool
    stamp: str  # the backup suffix of this run
    preflight: Dict[str, NodeFacts]  # node → what it said
    unreachable: List[NodeKeyResult]
    steps: List[model.RestartStep]
    lines: List[str] = field(default_factory=list)  # the plan for humans

    @property
    def previous(self) -> Dict[str, Optional[str]]:
        return {name: facts.key.fingerprint for name, facts in self.preflight.items()}

    @property
    def lifetime(self) -> List[model.RestartStep]:
        """The steps of nodes that keep the old key in memory until their daemon restarts."""
        return [s for s in self.steps if s.needed]


def rotate_plan(targets: Sequence[Target], pre: Dict[str, NodeFacts], steps: Sequence[model.RestartStep],
                *, size: int, restart: bool, backup_suffix: str) -> List[str]:
    lines = [f"1. generate a new {size}-byte key"]
    active = [t for t in targets if not t.skip]
    lines.append(f"2. push it to {len(active)} node(s), keeping each old key as <path>.bak-{backup_suffix}-<its fingerprint>:")
    for t in active:
        p = pre.get(t.label)
        where = p.location.path if p else "?"
        before = (p.key.fingerprint or "no key") if p else "?"
        who = t.label if t.label == t.host else f"{t.label} ({t.type}, {t.host})"
        lines.append(f"   - {who}: {where} (now {before})")
    for t in targets:
        if t.skip:
            lines.append(f"   - {t.label}: skipped ({t.skip})")
    lines.append("3. on any failure, restore the backup on every node already changed")
    needed = [s for s in steps if s.needed]
    if needed:
        if restart:
            lines.append("4. restart the daemons that keep the key for their lifetime, with maintenance-mode=true "
                         "around them:")
        else:
            lines.append("4. NOT restarting (no --restart): these nodes keep the old key in memory until their "
                         "daemon restarts:")
        lines.extend(f"   - {s.node}: {' '.join(s.argv)} ({s.reason})" for s in needed)
    else:
        lines.append(f"4. no restart needed: every node re-reads the key within {model.CACHE_SECONDS} s; "
                     "established connections stay up")
    lines.append("5. verify every node has the new key (fingerprints); restore the backups if not")
    return lines


def prepare_rotation(targets: Sequence[Target], runner_factory: RunnerFactory, *, size: int, path: Optional[str],
                     dry_run: bool, restart: bool, workers: int, reporter: Reporter) -> RotationPlan:
    """Preflight: every node must be reachable before anything changes (the push reuses this probe); stale temp
    files are cleaned unless it is a dry run."""
    from remotectl.transport.fanout import fan_out

    check_size(size, reporter)
    active, runners = active_runners(targets, runner_factory)
    if not active:
        raise RemotectlError("no nodes to rotate the key on")
    stamp = backup_stamp()
    outcomes = fan_out(lambda t: inspect_node(runners[t.host], path, clean_temps=not dry_run), active,
                       workers=workers)
    pre = {o.item.label: o.value for o in outcomes if o.ok}
    unreachable = [failed_connect(o.item, o.error) for o in outcomes if not o.ok]
    steps = model.plan_restarts([(t.label, t.type or "remote", pre[t.label].version) for t in active
                                 if t.label in pre])
    lines = rotate_plan(targets, pre, steps, size=size, restart=restart, backup_suffix=stamp)
    return RotationPlan(targets=list(targets), active=active, runners=runners, size=size, path=path,
                        restart=restart, stamp=stamp, preflight=pre, unreachable=unreachable, steps=steps,
                        lines=lines)


def _not_started(plan: RotationPlan, *, dry_run: bool, reporter: Reporter) -> RotateResult:
    for u in plan.unreachable:
        reporter.error(f"{u.error}; nothing was changed anywhere", node=u.node, code="node-unreachable")
    failed_by_node = {u.node: u for u in plan.unreachable}
    nodes = [failed_by_node.get(t.label) or NodeKeyResult.of(
        t, ok=True, status="skipped", message="rotation not started: not every node is reachable")
        for t in plan.active]
    return RotateResult(dry_run=dry_run, ok=False, fingerprint=None, size=plan.size, plan=plan.lines, nodes=nodes,
                        previous=plan.previous, reports=reporter.reports)


def _dry_run(plan: RotationPlan, reporter: Reporter) -> RotateResult:
    nodes = [NodeKeyResult.of(t, ok=True, status="would-write", path=plan.preflight[t.label].location.path,
                              previous_fingerprint=plan.preflight[t.label].key.fingerprint,
                              existed=plan.preflight[t.label].key.exists) for t in plan.active]

    def status(step: model.RestartStep) -> str:
        if not step.needed:
            return "not-needed"
        return "planned" if plan.restart else "skipped"

    restarts = [RestartOutcome.of(s, status=status(s)) for s in plan.steps]
    return RotateResult(dry_run=True, ok=True, fingerprint=None, size=plan.size, plan=plan.lines, nodes=nodes,
                        restarts=restarts, previous=plan.previous, reports=reporter.reports)


# -- execute -----------------------------------------------------------------------------------------------------------
def rollback_one(runner: Runner, result: NodeKeyResult) -> None:
    """Put back what was there before push_one wrote: the backup, or nothing when there was no file."""
    if result.backup:
        files.restore_file_atomic(runner, result.backup, result.path)
    elif result.existed is False:
        files.remove_file(runner, result.path)
    else:
        raise RemotectlError("no backup to restore")


def _verify_after_push(plan: RotationPlan, runner_factory: RunnerFactory, data: bytes, nodes: List[NodeKeyResult],
                       workers: int, reporter: Reporter) -> VerifyResult:
    """Every node must show the new key; those that do not are marked failed (and so rolled back)."""
    verify = verify_keys(plan.active, runner_factory, path=plan.path, key=data, workers=workers)
    mismatched = [n.node for n in verify.nodes if n.status != "skipped" and n.matches is not True]
    if mismatched:
        reporter.error(f"after the push, {', '.join(mismatched)} do(es) not show the new key", code="new-key-not-shown")
        for n in nodes:
            if n.node in mismatched:
                n.ok, n.status = False, "failed"
                n.error = n.error or "verification after the push failed"
    return verify


def _roll_back(nodes: List[NodeKeyResult], runners: Dict[str, Runner], workers: int, reporter: Reporter) -> bool:
    """Restore every node this run changed; False when some could not be restored (the keys now differ)."""
    from remotectl.transport.fanout import fan_out

    def undo(n: NodeKeyResult) -> NodeKeyResult:
        rollback_one(runners[n.target], n)
        return n

    rolled_back = True
    for o in fan_out(undo, [n for n in nodes if n.changed], workers=workers):
        node = o.item
        if o.ok:
            node.ok = False
            node.message = f"restored {node.backup}" if node.backup else "removed the new key (there was none)"
            if node.status == "written":
                node.status = "rolled-back"
        else:
            rolled_back = False
            node.ok, node.status = False, "failed"
            node.error = f"ROLLBACK FAILED: {o.error}"
            reporter.error(f"could not restore the previous key ({o.error}): the nodes now have different keys",
                           node=node.node, code="rollback-failed")
    return rolled_back


def execute_rotation(plan: RotationPlan, runner_factory: RunnerFactory, *, restarter: Optional[Restarter],
                     on_done: ProgressCallback, workers: int, reporter: Reporter) -> RotateResult:
    """Push a new key, verify it everywhere, then restart (with `plan.restart`) or roll back. Each node's failure
    is in its row (``error``); reports carry only what no row says."""
    data = generate_key(plan.size)
    options = PushOptions(path=plan.path, dry_run=False, backup=True, stamp=plan.stamp)
    pushed = push_key(plan.active, runner_factory, data, options, on_done=on_done, workers=workers,
                      probed=plan.preflight)
    nodes = pushed.nodes
    if pushed.interrupted:  # stop now: the rows say which nodes hold the new key; the backups stay for a rollback
        reporter.reports.extend(r for r in pushed.reports if r.code == "interrupted")
        return RotateResult(dry_run=False, ok=False, fingerprint=model.fingerprint(data), size=plan.size,
                            plan=plan.lines, nodes=nodes, previous=plan.previous, reports=reporter.reports,
                            interrupted=True)
    verify = None
    if all(n.ok for n in nodes):
        verify = _verify_after_push(plan, runner_factory, data, nodes, workers, reporter)
    done = dict(dry_run=False, fingerprint=model.fingerprint(data), size=plan.size, plan=plan.lines, nodes=nodes,
                verify=verify, previous=plan.previous, reports=reporter.reports)
    if not all(n.ok for n in nodes):
        rolled_back = _roll_back(nodes, plan.runners, workers, reporter)
        restarts = [RestartOutcome.of(s, status="skipped", message="rotation rolled back") for s in plan.steps]
        return RotateResult(ok=False, restarts=restarts, rolled_back=rolled_back, **done)
    if plan.restart:
        restarter = restarter or Restarter(runner_factory, None)
        restarts = run_restarts(plan.steps, {t.label: t for t in plan.active}, restarter, reporter)
    else:
        restarts = [RestartOutcome.of(s, status="skipped" if s.needed else "not-needed") for s in plan.steps]
    ok = verify is not None and verify.verdict.consistent and not any(r.status == "failed" for r in restarts)
    return RotateResult(ok=ok, restarts=restarts, **done)


def rotate_key(targets: Sequence[Target], runner_factory: RunnerFactory, *, size: int = model.DEFAULT_KEY_BYTES,
               path: Optional[str] = None, dry_run: bool = False, restart: bool = False,
               restarter: Optional[Restarter] = None, on_done: ProgressCallback = None,
               on_plan: Optional[Callable[[List[str]], None]] = None, workers: int = 16) -> RotateResult:
    """Plan (every node probed, nothing changed), show it with `on_plan`, then execute unless it is a dry run or
    some node is unreachable."""
    reporter = Reporter()
    plan = prepare_rotation(targets, runner_factory, size=size, path=path, dry_run=dry_run, restart=restart,
                            workers=workers, reporter=reporter)
    if plan.unreachable:
        return _not_started(plan, dry_run=dry_run, reporter=reporter)
    if on_plan is not None:
        on_plan(plan.lines)
    if plan.lifetime and not restart:
        reporter.warning("without --restart, " + ", ".join(s.node for s in plan.lifetime) + " keep the old key in "
                         "memory until their daemon restarts (Pacemaker 3.0.2+ or unknown version)",
                         code="restart-needed")
    if dry_run:
        return _dry_run(plan, reporter)
    return execute_rotation(plan, runner_factory, restarter=restarter, on_done=on_done, workers=workers,
                            reporter=reporter)
