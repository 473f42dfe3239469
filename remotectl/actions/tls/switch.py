"""`tls enable` / `tls disable`: the whole cluster from the PSK authkey to X.509 and back.

Plan → confirm → execute. :func:`prepare_switch` checks every node and builds the plan without changing anything:
every node reachable and in an env file's reach, X.509 only on Pacemaker 3.0+ with every node's pushed files
passing `tls verify`, PSK only with the cluster's authkey on every node. :func:`execute_switch` then runs the
restart procedure of `authkey rotate --restart` (remotectl/actions/authkey/restart.py: maintenance, cluster nodes
one at a time, then remoted) with two hooks under maintenance: the env files are edited after maintenance is set
(a daemon that restarts on its own in between cannot meet a peer of the other mode with the cluster able to act),
and after the restarts the safe probe of the new mode must pass on every remoted before maintenance ends; if it
does not (or a restart failed), the env files come back from their backups and the daemons are restarted again,
still under maintenance, so no node ever faces a peer of the other mode while the cluster can fence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.actions.authkey.facts import NodeFacts, RunnerFactory, active_runners, inspect_node, without_prefix
from remotectl.actions.authkey.push import backup_stamp
from remotectl.actions.authkey.restart import (REMOTE_PORT, Journal, Procedure, ProbeOutcome, Restarter,
                                               RestartOutcome, probe_until, restart_rows_failed, run_restarts)
from remotectl.actions.targets import Target
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import authkey as keymodel
from remotectl.pacemaker import tls_switch as model
from remotectl.pacemaker.x509 import ROLES
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, Reporter
from remotectl.transport.base import Runner

GOALS = {"x509": "enable", "psk": "disable"}
PROBE_WAIT = 30.0  # a restarted remoted listens at once; a little slack for a loaded machine


@dataclass
class NodeSwitchResult:
    node: str
    target: str
    type: Optional[str]
    ok: bool
    status: str  # would-edit | unchanged | edited | restored | failed | skipped
    pacemaker_version: Optional[str] = None
    files: List[str] = field(default_factory=list)  # the env files changed (or to change)
    backups: Dict[str, str] = field(default_factory=dict)  # env file → its backup on the node
    error: Optional[str] = None


@dataclass
class TlsSwitchResult:
    mode: str  # the goal: x509 (enable) | psk (disable)
    dry_run: bool
    ok: bool
    plan: List[str]
    settings: Dict[str, Optional[str]]  # variable → value written (null: removed)
    ca: Optional[str]  # enable: the cluster CA's fingerprint; disable: the authkey's
    nodes: List[NodeSwitchResult]
    restarts: List[RestartOutcome] = field(default_factory=list)
    probes: List[ProbeOutcome] = field(default_factory=list)
    rolled_back: bool = False
    reports: List[Report] = json_field(omit=True, default_factory=list)

    def exit_code(self) -> int:
        """0 done (or nothing to do, or a dry run); 1 nothing was changed (the env files could not be written);
        3 the switch failed after changes (rolled back, or the rollback failed)."""
        if self.ok:
            return ExitCode.OK
        if not any(n.status in ("edited", "restored") for n in self.nodes) and not self.restarts_done:
            return ExitCode.FAILURE
        return ExitCode.PARTIAL

    @property
    def restarts_done(self) -> bool:
        return any(r.kind in ("cluster", "remote", "guest") and r.status in ("done", "failed") for r in self.restarts)

    def to_json(self) -> dict:
        return jsonable(self)


@dataclass
class SwitchPlan:
    mode: str
    targets: List[Target]
    runners: Dict[str, Runner]
    facts: Dict[str, NodeFacts]
    settings: Dict[str, Optional[str]]
    edits: Dict[str, List[model.EnvEdit]]
    steps: List[keymodel.RestartStep]
    lines: List[str]
    journal: Journal
    resume: bool
    fingerprint: Optional[str]  # the CA's (enable) or the authkey's (disable)
    ca_pem: Optional[bytes] = field(default=None, repr=False)  # enable: the CA the probe checks against
    nothing_to_do: bool = False
    reports: List[Report] = field(default_factory=list)


def _command(mode: str) -> str:
    return f"tls {GOALS[mode]}"


def _check_journals(labels: Sequence[str], mode: str, resume: bool) -> Journal:
    """The switch's journal (loaded with --resume); refuses when an interrupted procedure of these nodes, this
    one's, `authkey rotate --restart`'s or `tls renew --restart`'s, must be finished first."""
    rotation = Journal(labels)
    if rotation.load():
        raise RefusedError("an interrupted `authkey rotate --restart` left the cluster in maintenance; finish it "
                           "with `authkey rotate --restart --resume` first")
    if Journal(labels, kind="tls-renew").load():
        raise RefusedError("an interrupted `tls renew --restart` left the cluster in maintenance; finish it with "
                           "`tls renew --restart --resume` first")
    journal = Journal(labels, kind="tls-switch")
    loaded = journal.load()
    if loaded and not resume:
        other = journal.extra.get("mode")
        raise RefusedError(f"an interrupted `{_command(other) if other in GOALS else 'tls enable/disable'}` left the "
                           f"cluster in maintenance; finish it with `{_command(other) if other in GOALS else 'tls'}"
                           " --resume`")
    if resume and not loaded:
        raise RefusedError(f"nothing to resume: no interrupted `{_command(mode)}` of these nodes is recorded here")
    if resume and journal.extra.get("mode") != mode:
        raise RefusedError(f"the interrupted switch is `{_command(str(journal.extra.get('mode')))}`, not "
                           f"`{_command(mode)}`: resume that one")
    return journal


def _targets_refusal(targets: Sequence[Target]) -> Optional[str]:
    bundles = [t.label for t in targets if t.type == "bundle"]
    if bundles:
        return (f"bundle replica(s) {', '.join(bundles)} run pacemaker-remoted inside their container, which reads "
                "its environment from the container image; switching them is not part of this procedure")
    skipped = [f"{t.label} ({t.skip})" for t in targets if t.skip]
    if skipped:
        return f"every node must switch together, but these cannot be handled: {', '.join(skipped)}"
    return None


def _enable_checks(active: Sequence[Target], runner_factory: RunnerFactory, remote_dir: str,
                   local_ca: Optional[bytes], facts: Dict[str, NodeFacts], workers: int):
    """(settings, CA PEM, CA fingerprint) for X.509 on every node, or RefusedError: Pacemaker 3.0+ everywhere, and
    `tls verify` passes for the files in remote_dir (the settings being incomplete is what enable fixes)."""
    from remotectl.actions.tls import facts as tls_facts
    from remotectl.actions.tls.verify import verify

    refusals = [r for r in (model.version_refusal(t.label, facts[t.label].version) for t in active) if r]
    if refusals:
        raise RefusedError("; ".join(refusals) + ": nothing was changed")
    checked = verify(active, runner_factory, remote_dir, local_ca=local_ca, workers=workers)
    paths = tls_facts.default_paths(remote_dir)
    problems = []
    for n in checked.nodes:
        if n.status != "checked":
            problems.append(f"{n.node}: {n.error or 'not checked'}")
            continue
        problems += [f"{n.node}: {p.message}" for p in n.problems
                     if p.severity == "error" and p.code != "tls-settings-incomplete"]
        if n.tls_mode == "x509" and any(n.settings.path(role) != paths[role] for role in ROLES):
            problems.append(f"{n.node}: its PCMK_* settings name other files than {remote_dir}")
    if checked.ca is None:
        problems.append("no cluster CA: no CA directory here and no CA that most nodes hold")
    if problems:
        raise RefusedError("not every node is ready for X.509 (run `remotectl tls push --all` and `tls verify "
                           "--all`): " + "; ".join(problems) + "; nothing was changed")
    ca_pem = local_ca or next(n.ca_pem for n in checked.nodes if n.ca_fingerprint == checked.ca)
    return model.enable_settings(paths), ca_pem, checked.ca


def _disable_checks(active: Sequence[Target], runner_factory: RunnerFactory, workers: int) -> str:
    """The authkey's fingerprint, or RefusedError: every node holds the same key, the one PSK will use."""
    from remotectl.actions.authkey.verify import verify_keys

    keys = verify_keys(active, runner_factory, workers=workers)
    without = [n.node for n in keys.nodes if n.status == "checked" and not n.fingerprint]
    if without or not keys.verdict.consistent or not keys.verdict.reference:
        detail = f"no key on {', '.join(without)}" if without else keys.verdict.summary
        raise RefusedError(f"PSK needs the cluster's authkey on every node ({detail}); run `remotectl authkey "
                           "push` first: nothing was changed")
    return keys.verdict.reference


def prepare_switch(targets: Sequence[Target], runner_factory: RunnerFactory, *, mode: str, remote_dir: str,
                   local_ca: Optional[bytes] = None, resume: bool = False, workers: int = 16,
                   restarter: Optional[Restarter] = None) -> SwitchPlan:
    """Every check, nothing changed: RefusedError (exit 4) when the switch cannot be done safely, RemotectlError
    when a node cannot be reached."""
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    refusal = _targets_refusal(targets)
    if refusal:
        raise RefusedError(refusal + ": nothing was changed")
    active, runners = active_runners(targets, runner_factory)
    if not active:
        raise RemotectlError("no nodes to switch")
    journal = _check_journals([t.label for t in active], mode, resume)
    outcomes = fan_out(lambda t: inspect_node(runners[t.host], None), active, workers=workers)
    unreachable = [f"{o.item.label}: {without_prefix(o.error, o.item)}" for o in outcomes if not o.ok]
    if unreachable:
        raise RemotectlError("every node must be reachable: " + "; ".join(unreachable) + "; nothing was changed")
    facts = {o.item.label: o.value for o in outcomes}
    ca_pem = None
    if mode == "x509":
        settings, ca_pem, fingerprint = _enable_checks(active, runner_factory, remote_dir, local_ca, facts, workers)
        versions = {t.label: facts[t.label].version for t in active if t.type in ("remote", "guest")}
        bypass = model.auth_bypass(versions)
        if bypass:
            reporter.warning(model.auth_bypass_message(bypass, versions), code="tls-client-auth-bypass")
    else:
        settings, fingerprint = model.disable_settings(), _disable_checks(active, runner_factory, workers)
    edits: Dict[str, List[model.EnvEdit]] = {}
    for t in active:
        try:
            node_edits = model.env_edits(facts[t.label].env_texts, settings)
        except ValueError as exc:
            raise RefusedError(f"{exc}: nothing was changed") from None
        if node_edits is None:
            raise RefusedError(f"{t.label} has neither {' nor '.join(keymodel.ENV_FILES)}: which env file its "
                               "Pacemaker units read cannot be told; create the right one: nothing was changed")
        edits[t.label] = node_edits
    steps = model.switch_steps([(t.label, t.type or "remote") for t in active], mode)
    plan = SwitchPlan(mode=mode, targets=list(targets), runners=runners, facts=facts, settings=settings,
                      edits=edits, steps=steps, lines=model.switch_plan(mode, edits, steps, settings, resume=resume),
                      journal=journal, resume=resume, fingerprint=fingerprint, ca_pem=ca_pem,
                      reports=reporter.reports)
    if not resume and not any(edits.values()):
        probes = _prove(plan, restarter or Restarter(runner_factory, None), Reporter(), wait=0.0)
        plan.nothing_to_do = all(p.verdict == _good(mode) for p in probes)
        if plan.nothing_to_do:
            plan.lines = [f"every node is set to {'X.509' if mode == 'x509' else 'PSK'} and every remoted answers "
                          "so (safe probe): nothing to do"]
    return plan


def _good(mode: str) -> str:
    return "x509-trusted" if mode == "x509" else "match"


def _rows(plan: SwitchPlan, status_of: Callable[[str], str]) -> List[NodeSwitchResult]:
    return [NodeSwitchResult(node=t.label, target=t.host, type=t.type, ok=True, status=status_of(t.label),
                             pacemaker_version=keymodel.version_text(plan.facts[t.label].version),
                             files=[e.path for e in plan.edits[t.label]]) for t in plan.targets]


def planned_result(plan: SwitchPlan) -> TlsSwitchResult:
    """The dry run's (or nothing-to-do's) document: nothing changed."""
    nodes = _rows(plan, lambda n: "would-edit" if plan.edits[n] else "unchanged")
    restarts = [] if plan.nothing_to_do else [RestartOutcome.of(s, status="planned") for s in plan.steps]
    return TlsSwitchResult(mode=plan.mode, dry_run=not plan.nothing_to_do, ok=True, plan=plan.lines,
                           settings=plan.settings, ca=plan.fingerprint, nodes=nodes, restarts=restarts,
                           reports=list(plan.reports))


# -- execute -----------------------------------------------------------------------------------------------------
def _write_env(plan: SwitchPlan, rows: Dict[str, NodeSwitchResult], stamp: str, workers: int,
               reporter: Reporter) -> bool:
    """Every planned env file edit, atomically, each only if the file still holds what the preflight read, with a
    backup next to it (recorded in the journal before the write); False when one failed (those written are then
    restored)."""
    import hashlib

    from remotectl.transport import files
    from remotectl.transport.fanout import fan_out

    backups = plan.journal.extra.setdefault("backups", {})
    for name, node_edits in plan.edits.items():
        for e in node_edits:
            backups.setdefault(name, {}).setdefault(e.path, f"{e.path}.bak-{stamp}")
    plan.journal.save()
    hosts = {t.label: t.host for t in plan.targets}

    def write(name: str) -> str:
        runner = plan.runners[hosts[name]]
        states = files.file_states(runner, [e.path for e in plan.edits[name]])
        for e, state in zip(plan.edits[name], states):
            if state.sha256 != hashlib.sha256(e.before.encode()).hexdigest():
                raise RemotectlError(f"{e.path} changed since it was read for the plan; nothing written there")
            owner = f"{state.owner}:{state.group}" if state.owner and state.group else None
            after = files.write_file_atomic(runner, e.path, e.after.encode(), mode=(state.mode or 0o644) & 0o7777,
                                            owner=owner, backup_path=backups[name][e.path], expect=state.sha256)
            if after.sha256 != hashlib.sha256(e.after.encode()).hexdigest():
                raise RemotectlError(f"after writing, {e.path} does not hold the expected content")
            rows[name].backups[e.path] = backups[name][e.path]
        return name

    ok = True
    for o in fan_out(write, [n for n, e in plan.edits.items() if e], workers=workers):
        row = rows[o.item]
        if o.ok:
            row.status = "edited"
        else:
            ok = False
            row.ok, row.status = False, "failed"
            row.error = without_prefix(o.error, next(t for t in plan.targets if t.label == o.item))
            reporter.error(f"cannot edit the env file: {row.error}", node=o.item, code="tls-env-not-written")
    return ok


def _restore_env(plan: SwitchPlan, rows: Dict[str, NodeSwitchResult], workers: int, reporter: Reporter) -> bool:
    """Every env file this switch (or the interrupted one it resumes) changed, back from its backup."""
    from remotectl.transport import files
    from remotectl.transport.fanout import fan_out

    hosts = {t.label: t.host for t in plan.targets}
    backups = plan.journal.extra.get("backups") or {}
    jobs = [(name, path, backup) for name, per_node in backups.items() for path, backup in per_node.items()
            if name in hosts]

    def restore(job):
        name, path, backup = job
        runner = plan.runners[hosts[name]]
        saved, now = files.file_states(runner, [backup, path])
        if saved.exists:  # else the write never happened: nothing to undo
            files.restore_file_atomic(runner, backup, path)  # the backup is 0600: the mode the edit kept, back
            if now.exists and now.mode is not None:
                result = runner.run(["chmod", f"{now.mode & 0o7777:o}", "--", path])
                if result.rc != 0:
                    raise RemotectlError(f"cannot chmod {path}: {result.first_error_line()}")
        return job

    restored = True
    for o in fan_out(restore, jobs, workers=workers):
        row = rows[o.item[0]]
        if o.ok:
            if row.status != "failed":
                row.ok, row.status = False, "restored"
        else:
            restored = False
            row.ok, row.status, row.error = False, "failed", f"ROLLBACK FAILED: {o.error}"
            reporter.error(f"could not restore {o.item[1]} from {o.item[2]} ({o.error}): this node may start in "
                           "the other mode", node=o.item[0], code="tls-rollback-failed")
    return restored


def _prove(plan: SwitchPlan, restarter: Restarter, reporter: Reporter, *, wait: float) -> List[ProbeOutcome]:
    """The safe probe of the goal's mode against every remote and guest node: x509-trusted (the certificate chains
    to the cluster CA and names the node) or match (the cluster's authkey). Neither completes a handshake."""
    from remotectl.actions.tls.verify import expected_names
    from remotectl.transport import hostops

    peers = [t for t in plan.targets if t.type in ("remote", "guest")]
    if not peers:
        return []
    if plan.mode == "x509":
        probes = probe_until(peers, lambda pending: restarter.probe_x509(
            [(t.host, t.port or REMOTE_PORT, expected_names(t)) for t in pending], plan.ca_pem), "x509-trusted",
            wait=wait, restarter=restarter)
    else:
        first = next(t for t in plan.targets if t.type == "cluster")
        key = hostops.read_key_bytes(plan.runners[first.host], plan.facts[first.label].location.path)
        probes = probe_until(peers, lambda pending: restarter.probe(
            [(t.host, t.port or REMOTE_PORT) for t in pending], key), "match", wait=wait, restarter=restarter)
    for p in probes:
        if p.verdict != _good(plan.mode):
            reporter.error(f"the safe probe at {p.address} says {p.verdict}, not {_good(plan.mode)}",
                           node=p.node, code="tls-switch-not-proven")
    return probes


def execute_switch(plan: SwitchPlan, restarter: Restarter, *, workers: int = 16) -> TlsSwitchResult:
    """The procedure of the module docstring; one row per node, per restart and per probe."""
    reporter = Reporter()
    reporter.reports.extend(plan.reports)
    rows = {r.node: r for r in _rows(plan, lambda n: "unchanged")}
    journal = plan.journal
    if not plan.resume:
        journal.fingerprint, journal.extra = plan.fingerprint, {"mode": plan.mode}
    stamp = backup_stamp()
    state = {"probes": [], "rolled_back": False}

    def prepare(run: Procedure) -> bool:
        if _write_env(plan, rows, stamp, workers, reporter):
            return True
        _restore_env(plan, rows, workers, reporter)
        return False

    def finish(run: Procedure, done: List[str]) -> Optional[List[str]]:
        failed = restart_rows_failed(run.rows)
        if not failed:
            state["probes"] = _prove(plan, restarter, reporter, wait=PROBE_WAIT)
            failed = any(p.verdict != _good(plan.mode) for p in state["probes"])
        if not failed:
            return done
        state["rolled_back"] = _restore_env(plan, rows, workers, reporter)
        restarted = {r.node for r in run.rows if r.kind in ("cluster", "remote", "guest")
                     and r.status in ("done", "failed")}
        again = [s for s in plan.steps if s.node in restarted]
        if not state["rolled_back"]:
            reporter.error("the cluster stays in maintenance-mode: with an env file not restored, the daemons "
                           "cannot all be put back in one mode; fix it, then run the same command with --resume",
                           code="maintenance-kept")
            return None
        if not again:
            return done
        reporter.warning("restarting " + ", ".join(s.node for s in again) + " again in the previous mode, before "
                         "maintenance ends", code="restart-rollback")
        back, _failed = run.restart_each(again)
        return back

    restarts = run_restarts(plan.steps, {t.label: t for t in plan.targets}, restarter, reporter, journal,
                            prepare=prepare, finish=finish)
    ok = not restart_rows_failed(restarts) and not state["rolled_back"] and \
        all(p.verdict == _good(plan.mode) for p in state["probes"]) and all(r.ok for r in rows.values())
    return TlsSwitchResult(mode=plan.mode, dry_run=False, ok=ok, plan=plan.lines, settings=plan.settings,
                           ca=plan.fingerprint, nodes=list(rows.values()), restarts=restarts,
                           probes=state["probes"], rolled_back=state["rolled_back"], reports=reporter.reports)
