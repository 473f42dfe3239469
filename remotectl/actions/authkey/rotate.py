"""Rotate: replace the key on every node, restart what keeps it in memory, roll back on any failure.

Plan → confirm → execute, as fence does: :func:`prepare_rotation` probes every node and builds the plan without
changing anything; :func:`rotate_key` shows it (``on_plan``), stops there for a dry run or when a node is
unreachable, else :func:`execute_rotation` pushes, verifies, and restarts or rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.actions.authkey.facts import (NodeFacts, ProgressCallback, RunnerFactory, active_runners,
                                             inspect_node)
from remotectl.actions.authkey.keys import check_size, generate_key
from remotectl.actions.authkey.push import NodeKeyResult, PushOptions, backup_stamp, failed_connect, push_key
from remotectl.actions.authkey.restart import (Journal, ProbeOutcome, Restarter, RestartOutcome, probe_new_key,
                                               restart_rows_failed, run_restarts)
from remotectl.actions.authkey.verify import VerifyResult, verify_keys
from remotectl.actions.targets import Target
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import authkey as model
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, Reporter
from remotectl.transport import files
from remotectl.transport.base import Runner


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
    probes: List[ProbeOutcome] = field(default_factory=list)  # the safe probe with the new key, per remoted
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
    journal: Optional[Journal] = None  # with --restart: the progress record (loaded with --resume)

    @property
    def previous(self) -> Dict[str, Optional[str]]:
        return {name: facts.key.fingerprint for name, facts in self.preflight.items()}

    @property
    def lifetime(self) -> List[model.RestartStep]:
        """The steps of nodes that keep the old key in memory until their daemon restarts."""
        return [s for s in self.steps if s.needed]


def _location_note(facts: Optional[NodeFacts]) -> str:
    """What the plan says about a node whose key location depends on its version (an empty PCMK_authkey_location)."""
    if facts is None or not facts.location.empty_in or facts.location.source != "default":
        return ""
    if model.has_corosync_fallback(facts.version) is False:
        return (f"; WARNING: {model.LOCATION_VARIABLE} is set to nothing in {facts.location.empty_in}, so Pacemaker "
                f"{model.version_text(facts.version)} loads no key at all")
    return ""


def rotate_plan(targets: Sequence[Target], pre: Dict[str, NodeFacts], steps: Sequence[model.RestartStep],
                *, size: int, restart: bool, backup_suffix: str, path: Optional[str] = None) -> List[str]:
    """The plan for humans. With --path the daemons may read another file: no safe-probe proof then."""
    lines = [f"1. generate a new {size}-byte key"]
    active = [t for t in targets if not t.skip]
    lines.append(f"2. push it to {len(active)} node(s), keeping each old key as <path>.bak-{backup_suffix}-<its fingerprint>:")
    for t in active:
        p = pre.get(t.label)
        where = p.location.path if p else "?"
        before = (p.key.fingerprint or "no key") if p else "?"
        who = t.label if t.label == t.host else f"{t.label} ({t.type}, {t.host})"
        lines.append(f"   - {who}: {where} (now {before}){_location_note(p)}")
    for t in targets:
        if t.skip:
            lines.append(f"   - {t.label}: skipped ({t.skip})")
    lines.append("3. on any failure, restore the backup on every node already changed")
    needed = [s for s in steps if s.needed]
    if needed and restart:
        cluster = [s for s in needed if s.kind == "cluster"]
        peers = [s for s in needed if s.kind != "cluster"]
        lines.append("4. restart the daemons that keep the key in memory, so that no connection is ever made "
                     "between an old and a new key:")
        if peers:
            lines.append(f"   a. node maintenance on {', '.join(s.node for s in peers)}, then "
                         "maintenance-mode=true (nothing is started, stopped, moved or fenced)")
        else:
            lines.append("   a. maintenance-mode=true (nothing is started, stopped, moved or fenced)")
        if cluster:
            lines.append("   b. cluster nodes one at a time, each waited for until it is a member again:")
            lines.extend(f"      - {s.node}: {' '.join(s.argv)} ({s.reason})" for s in cluster)
        if peers:
            lines.append("   c. then remote and guest nodes (waiting until remoted listens):")
            lines.extend(f"      - {s.node}: {' '.join(s.argv)} ({s.reason})" for s in peers)
        lines.append("   d. maintenance-mode back, wait until every node is online"
                     + (", node maintenance back" if peers else "") + ", wait until every resource is where "
                     "it was; if a node does not come back: the old key back everywhere and the same restarts "
                     "again")
    elif needed:
        lines.append("4. NOT restarting (no --restart): these nodes keep the old key in memory until their "
                     "daemon restarts:")
        lines.extend(f"   - {s.node}: {' '.join(s.argv)} ({s.reason})" for s in needed)
    else:
        lines.append(f"4. no restart needed: every node re-reads the key within {model.CACHE_SECONDS} s "
                     "(Pacemaker before 3.0.2); established connections stay up (--restart-all restarts anyway)")
    lines.append("5. verify every node has the new key (fingerprints); restore the backups if not")
    if any(t.type in ("remote", "guest") for t in active) and not path:
        lines.append("6. prove it with the safe probe: every remoted accepts the new key (`match`, waiting up to "
                     f"{model.CACHE_SECONDS} s where it may still hold the old one)")
    return lines


def bundle_refusal(targets: Sequence[Target], steps: Sequence[model.RestartStep]) -> Optional[str]:
    """Why --restart cannot go on: bundle replicas run pacemaker-remoted in their container, which reads the key at
    container start (3.0.2+: for its lifetime); restarting containers is not part of this procedure."""
    bundles = [t.label for t in targets if t.type == "bundle"]
    if not bundles or not any(s.needed and s.kind == "cluster" for s in steps):
        return None
    return (f"bundle replica(s) {', '.join(bundles)} run pacemaker-remoted inside their container, which keeps the "
            "old key until the container restarts, and rotate --restart does not restart bundle containers: "
            "nothing was changed. Rotate without --restart, then restart the cluster nodes and the bundles "
            "(crm_resource --restart --resource BUNDLE) in a maintenance window")


def prepare_rotation(targets: Sequence[Target], runner_factory: RunnerFactory, *, size: int, path: Optional[str],
                     dry_run: bool, restart: bool, workers: int, reporter: Reporter,
                     restart_all: bool = False, resume: bool = False) -> RotationPlan:
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
                                 if t.label in pre], always=restart_all)
    refusal = bundle_refusal(targets, steps) if restart else None
    if refusal:
        raise RefusedError(refusal)
    if restart and Journal([t.label for t in active], kind="tls-switch").load():
        raise RefusedError("an interrupted `tls enable` or `tls disable` left the cluster in maintenance; finish it "
                           "with its --resume first")
    if restart and Journal([t.label for t in active], kind="tls-renew").load():
        raise RefusedError("an interrupted `tls renew --restart` left the cluster in maintenance; finish it with "
                           "`tls renew --restart --resume` first")
    journal = Journal([t.label for t in active])
    if journal.load() != resume:
        raise RefusedError(
            f"an interrupted `authkey rotate --restart` (new key {journal.fingerprint}) left the cluster in "
            "maintenance; finish it with `authkey rotate --restart --resume`" if not resume else
            "nothing to resume: no interrupted `authkey rotate --restart` of these nodes is recorded here")
    if resume:
        lines = [f"resume the interrupted rotation to {journal.fingerprint}: no new key; every node must hold it",
                 "restart what was not restarted yet (" + ", ".join(s.node for s in steps if s.needed
                                                                    and s.node not in journal.done) + "), put "
                 "back the maintenance values from before the interruption; no rollback"]
    else:
        lines = rotate_plan(targets, pre, steps, size=size, restart=restart, backup_suffix=stamp, path=path)
    return RotationPlan(targets=list(targets), active=active, runners=runners, size=size, path=path,
                        restart=restart, stamp=stamp, preflight=pre, unreachable=unreachable, steps=steps,
                        lines=lines, journal=journal)


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
    """Push a new key, verify it everywhere, then restart (with `plan.restart`) or roll back, then prove it with
    the safe probe (`restarter` restarts, waits and probes; without one, nothing is probed). Each node's failure
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
        journal = Journal([t.label for t in plan.active], model.fingerprint(data))
        restarts = run_restarts(plan.steps, {t.label: t for t in plan.active}, restarter, reporter, journal)
        if restart_rows_failed(restarts):
            return _undo_restarts(plan, restarter, restarts, workers, reporter, done)
    else:
        restarts = [RestartOutcome.of(s, status="skipped" if s.needed else "not-needed") for s in plan.steps]
    probes = _prove(plan, data, restarts, restarter, reporter) if restarter is not None and not plan.path else []
    ok = (verify is not None and verify.verdict.consistent and not restart_rows_failed(restarts)
          and not any(p.verdict == "mismatch" for p in probes))
    return RotateResult(ok=ok, restarts=restarts, probes=probes, **done)


def resume_rotation(plan: RotationPlan, restarter: Restarter, reporter: Reporter) -> RotateResult:
    """Finish an interrupted --restart: every node must hold the journal's key already (else nothing is done);
    the daemons not restarted yet are restarted, maintenance goes back to what it was before the interruption.
    The new key is read back from a node (stdout, never argv) for the safe probe."""
    from remotectl.transport import hostops

    journal = plan.journal
    wrong = [name for name, facts in plan.preflight.items() if facts.key.fingerprint != journal.fingerprint]
    if wrong:
        raise RemotectlError(f"{', '.join(wrong)} do(es) not hold the key of the interrupted rotation "
                             f"({journal.fingerprint}); nothing was changed")
    nodes = [NodeKeyResult.of(t, ok=True, status="unchanged", path=plan.preflight[t.label].location.path,
                              fingerprint=journal.fingerprint, previous_fingerprint=journal.fingerprint)
             for t in plan.active]
    first = plan.active[0]
    data = hostops.read_key_bytes(plan.runners[first.host], plan.preflight[first.label].location.path)
    restarts = run_restarts(plan.steps, {t.label: t for t in plan.active}, restarter, reporter, journal)
    probes = _prove(plan, data, restarts, restarter, reporter) if not plan.path else []
    ok = not restart_rows_failed(restarts) and not any(p.verdict == "mismatch" for p in probes)
    return RotateResult(dry_run=False, ok=ok, fingerprint=journal.fingerprint, size=len(data), plan=plan.lines,
                        nodes=nodes, restarts=restarts, probes=probes, previous=plan.previous,
                        reports=reporter.reports)


def _undo_restarts(plan: RotationPlan, restarter: Restarter, restarts: List[RestartOutcome], workers: int,
                   reporter: Reporter, done: dict) -> RotateResult:
    """A node did not come back with the new key: the old key back on every node, then the same restarts again
    for the daemons that were restarted (they hold the new key now)."""
    rolled_back = _roll_back(done["nodes"], plan.runners, workers, reporter)
    restarted = {r.node for r in restarts if r.kind in ("cluster", "remote", "guest") and r.status in ("done",
                                                                                                      "failed")}
    again = [s for s in plan.steps if s.needed and s.node in restarted]
    if rolled_back and again:
        reporter.warning("restarting " + ", ".join(s.node for s in again) + " again to load the old key",
                         code="restart-rollback")
        restarts = restarts + run_restarts(again, {t.label: t for t in plan.active}, restarter, reporter)
    return RotateResult(ok=False, restarts=restarts, rolled_back=rolled_back, **done)


def _prove(plan: RotationPlan, data: bytes, restarts: List[RestartOutcome], restarter: Restarter,
           reporter: Reporter) -> List[ProbeOutcome]:
    """The safe probe with the new key against every remoted that should hold it now (not those left on the old
    key without --restart); nodes not restarted may hold the old key for up to CACHE_SECONDS more (before 3.0.2),
    restarted ones accept it at once."""
    restarted = {r.node for r in restarts if r.status == "done"}
    kept_old = {r.node for r in restarts if r.kind in ("remote", "guest") and r.status == "skipped"}
    expected = [t for t in plan.active if t.label not in kept_old]  # without --restart, 3.0.2+ keeps the old key
    waiting = any(t.label not in restarted for t in expected if t.type in ("remote", "guest"))
    probes = probe_new_key(expected, data, wait=model.CACHE_SECONDS + 30 if waiting else 30, restarter=restarter)
    for p in probes:
        if p.verdict == "mismatch":
            reporter.error(f"the safe probe says remoted at {p.address} does not accept the new key",
                           node=p.node, code="new-key-not-accepted")
        elif p.verdict != "match":
            reporter.warning(f"the safe probe could not prove the new key at {p.address}: {p.verdict}",
                             node=p.node, code="new-key-not-proven")
    return probes


def rotate_key(targets: Sequence[Target], runner_factory: RunnerFactory, *, size: int = model.DEFAULT_KEY_BYTES,
               path: Optional[str] = None, dry_run: bool = False, restart: bool = False, restart_all: bool = False,
               resume: bool = False, restarter: Optional[Restarter] = None, on_done: ProgressCallback = None,
               on_plan: Optional[Callable[[List[str]], None]] = None, workers: int = 16) -> RotateResult:
    """Plan (every node probed, nothing changed), show it with `on_plan`, then execute unless it is a dry run or
    some node is unreachable."""
    reporter = Reporter()
    plan = prepare_rotation(targets, runner_factory, size=size, path=path, dry_run=dry_run,
                            restart=restart or restart_all or resume, workers=workers, reporter=reporter,
                            restart_all=restart_all, resume=resume)
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
    if resume:
        return resume_rotation(plan, restarter or Restarter(runner_factory, None), reporter)
    return execute_rotation(plan, runner_factory, restarter=restarter, on_done=on_done, workers=workers,
                            reporter=reporter)
