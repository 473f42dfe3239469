"""Verify: compare the key on nodes by fingerprint (the key never leaves them) and report what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from remotectl.actions.authkey.facts import (ProgressCallback, RunnerFactory, active_runners, inspect_node,
                                             without_prefix)
from remotectl.actions.targets import Target
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import authkey as model
from remotectl.reports import ExitCode, Report, Reporter
from remotectl.transport.base import Runner


@dataclass
class VerifyNodeResult:
    """One node's key. Fields in JSON order."""

    node: str
    target: str
    type: Optional[str]
    ok: bool = False
    reachable: bool = False
    fingerprint: Optional[str] = None
    matches: Optional[bool] = None
    size: Optional[int] = None
    mode: Optional[int] = json_field(default=None, convert=model.format_mode)
    owner: Optional[str] = None
    group: Optional[str] = None
    path: Optional[str] = None  # the file whose fingerprint is shown (the one Pacemaker would load)
    configured_path: Optional[str] = None
    path_source: Optional[str] = None
    hacluster_can_read: Optional[bool] = None
    pacemaker_version: Optional[str] = None
    problems: List[model.Problem] = field(default_factory=list)
    error: Optional[str] = None
    status: str = json_field(omit=True, default="checked")  # checked | failed | skipped
    version: Optional[model.Version] = json_field(omit=True, default=None)
    settings: Dict[str, str] = json_field(omit=True, default_factory=dict)  # model.remote_settings (doctor)

    @classmethod
    def of(cls, target: Target, **fields) -> "VerifyNodeResult":
        return cls(node=target.label, target=target.host, type=target.type, **fields)

    @property
    def mode_text(self) -> Optional[str]:
        return model.format_mode(self.mode)

    @property
    def state(self) -> str:
        """The table's STATE cell."""
        if self.status == "failed":
            return "UNREACHABLE"
        if self.status == "skipped":
            return "skipped"
        if self.ok:
            return "ok"
        if self.matches is False:
            return "DIFFERS"
        if self.fingerprint is None:
            return "NO KEY"
        return "PROBLEM"

    def to_json(self) -> dict:
        return jsonable(self)


@dataclass
class VerifyResult:
    """The JSON document is the verdict's view (see the properties), then the nodes."""

    verdict: model.Verdict = json_field(omit=True)
    nodes: List[VerifyNodeResult] = json_field(omit=True)
    key_path: Optional[str] = json_field(omit=True)
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.consistent and all(n.ok for n in self.nodes if n.status != "skipped")

    @property
    def consistent(self) -> bool:
        return self.verdict.consistent

    @property
    def reference(self) -> dict:
        return {"fingerprint": self.verdict.reference, "source": self.verdict.reference_source, "key": self.key_path}

    @property
    def summary(self) -> str:
        return self.verdict.summary

    @property
    def differing(self) -> List[str]:
        return self.verdict.differing

    @property
    def unchecked(self) -> List[str]:
        return self.verdict.unchecked

    @property
    def groups(self) -> List[dict]:
        return [{"fingerprint": fp, "nodes": names} for fp, names in self.verdict.groups.items()]

    def exit_code(self) -> int:
        if self.ok:
            return ExitCode.OK
        checked = [n for n in self.nodes if n.status == "checked"]
        unreachable = [n for n in self.nodes if n.status == "failed"]
        if unreachable and checked and all(n.ok for n in checked):
            return ExitCode.PARTIAL
        return ExitCode.FAILURE

    def to_json(self) -> dict:
        return jsonable(self, extra=("consistent", "ok", "reference", "summary", "differing", "unchecked", "groups",
                                     "nodes"))


def verify_one(target: Target, runner: Runner, path_override: Optional[str]) -> VerifyNodeResult:
    """One round trip (two when PCMK_authkey_location or a 3.0 version changes the paths to look at)."""
    node = inspect_node(runner, path_override, chain=True, reader=model.KEY_OWNER)
    location, version = node.location, node.version
    result = VerifyNodeResult.of(target, reachable=True, configured_path=location.path, path_source=location.source,
                                 pacemaker_version=model.version_text(version), version=version,
                             settings=model.remote_settings(node.env_texts))
    assessment = model.assess_node(location, version, node.states)
    effective = assessment.effective
    shown = effective if effective is not None else node.states.get(location.path)
    if shown is not None:
        result.path = shown.path
        result.fingerprint = shown.fingerprint if effective is not None else None
        result.size, result.mode, result.owner, result.group = shown.size, shown.mode, shown.owner, shown.group
        result.hacluster_can_read = shown.reader_can_read
    result.problems = list(assessment.problems)
    return result


def _unreachable(target: Target, error: Optional[str]) -> VerifyNodeResult:
    return VerifyNodeResult.of(target, status="failed", error=without_prefix(error, target))


def _skipped(target: Target) -> VerifyNodeResult:
    return VerifyNodeResult.of(target, ok=True, status="skipped",
                               problems=[model.Problem(code="skipped", severity="warning", message=target.skip)])


def _judge(nodes: Sequence[VerifyNodeResult], verdict: model.Verdict) -> None:
    """Each checked node against the reference: matches, the `differs` problem, ok."""
    for n in nodes:
        if n.status != "checked":
            continue
        n.matches = verdict.matches.get(n.node)
        if n.matches is False:
            against = "--key" if verdict.reference_source == "key" else "the majority"
            n.problems.append(model.Problem(code="differs", severity="error",
                                            message=f"key {n.fingerprint} differs from {against} "
                                                    f"({verdict.reference})"))
        elif n.matches is None and n.fingerprint and verdict.reference is None:
            n.problems.append(model.Problem(code="differs", severity="error",
                                            message="no majority key to compare with"))
        n.ok = n.matches is True and not any(p.severity == "error" for p in n.problems)


def verify_keys(targets: Sequence[Target], runner_factory: RunnerFactory, *, path: Optional[str] = None,
                key: Optional[bytes] = None, key_path: Optional[str] = None, on_done: ProgressCallback = None,
                workers: int = 16) -> VerifyResult:
    """An unreachable node is also an ``error`` report (code ``node-unreachable``): the table has no column for
    why it could not be checked."""
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    active, runners = active_runners(targets, runner_factory)
    outcomes = fan_out(lambda t: verify_one(t, runners[t.host], path), active, workers=workers, on_done=on_done)
    by_target: Dict[int, VerifyNodeResult] = {
        id(o.item): o.value if o.ok else _unreachable(o.item, o.error) for o in outcomes}
    nodes = [_skipped(t) if t.skip else by_target[id(t)] for t in targets]
    checked = [n for n in nodes if n.status == "checked"]
    unreachable = [n.node for n in nodes if n.status == "failed"]
    reference = model.fingerprint(key) if key is not None else None
    verdict = model.verdict({n.node: n.fingerprint for n in checked}, unreachable, reference)
    for note in verdict.notes:
        reporter.warning(note, code="no-majority-key")
    _judge(nodes, verdict)
    for n in nodes:
        if n.status == "failed":
            reporter.error(n.error or "not reachable", node=n.node, code="node-unreachable")
    if reference is not None:
        size_warning = model.key_size_warning(len(key))
        if size_warning:
            reporter.info(size_warning, code="key-size")
    return VerifyResult(verdict=verdict, nodes=nodes, key_path=key_path, reports=reporter.reports)

