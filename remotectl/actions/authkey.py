"""Authkey lifecycle: generate, fingerprint, push, verify and rotate the Pacemaker remote key.

Key bytes travel only on the stdin of the remote write script (transport.files.write_file_atomic); everything
that is returned, reported or raised carries `sha256:<hex>` fingerprints, never the key.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from remotectl.pacemaker import authkey as model
from remotectl.pacemaker import tools
from remotectl.reports import RemotectlError, Report, Reporter
from remotectl.transport import files, localfiles
from remotectl.transport.base import Runner

RunnerFactory = Callable[[str], Runner]
ProgressCallback = Optional[Callable[[object], None]]


# -- targets --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    node: str  # the node name, or the destination text for an explicit SSH target
    destination: str  # where to SSH
    type: Optional[str] = None  # cluster|remote|guest|bundle, None for an explicit SSH destination
    resource: Optional[str] = None  # the connection (remote) or container (guest) resource
    skip: Optional[str] = None  # why this node is not handled


def _looks_like_destination(spec: str) -> bool:
    return "@" in spec or ":" in spec or spec.startswith("[")


def resolve_targets(specs: Sequence[str], *, all_nodes: bool, nodes: Optional[Sequence]) -> List[Target]:
    """TARGET → Target. A node name known to the cluster is resolved to the address the cluster uses
    (remotectl.actions.nodes.ssh_destination); anything else must be an SSH destination `[user@]host[:port]`.
    --all: every cluster, remote and guest node (bundle replicas are listed as skipped). Duplicates are dropped."""
    from remotectl.actions.nodes import find_node, ssh_destination
    from remotectl.transport.ssh import parse_destination

    def node_target(node) -> Target:
        skip = "bundle replica: its key comes from the bundle's container host, not over SSH" \
            if node.type == "bundle" else None
        return Target(node.name, ssh_destination(node), node.type, node.resource, skip)

    targets: List[Target] = [node_target(node) for node in nodes or ()] if all_nodes else []
    for spec in specs:
        node = find_node(nodes, spec) if nodes else None
        if node is not None:
            targets.append(node_target(node))
        else:
            parse_destination(spec)  # raises a one-line TransportError for nonsense
            targets.append(Target(spec, spec))
    seen = set()
    unique = []
    for target in targets:
        key = target.destination if not target.skip else ("skip", target.node)
        if key in seen:
            continue
        seen.add(key)
        unique.append(target)
    return unique


def load_targets(specs: Sequence[str], *, all_nodes: bool, cluster_factory: Callable[[], object],
                 reporter: Reporter) -> List[Target]:
    """Ask the cluster for its nodes when --all is given (required) or some TARGET could be a node name
    (best effort: when the cluster cannot be asked, such TARGETs are used as SSH host names, with a warning)."""
    if not all_nodes and not specs:
        raise RemotectlError("no targets: give node names or [user@]host[:port], or --all")
    nodes = None
    if all_nodes or any(not _looks_like_destination(s) for s in specs):
        from remotectl.actions.nodes import list_nodes

        try:
            nodes = list_nodes(cluster_factory()).nodes
        except RemotectlError as exc:
            if all_nodes:
                raise RemotectlError(f"--all needs the cluster's node list: {exc.message}") from None
            reporter.warning(f"cannot list the cluster's nodes ({exc.message}); using the targets as SSH hosts")
    targets = resolve_targets(specs, all_nodes=all_nodes, nodes=nodes)
    if not targets:
        raise RemotectlError("the cluster has no nodes to work on")
    return targets


# -- results -------------------------------------------------------------------------------------------------------
@dataclass
class NodeKeyResult:
    """One node's outcome of push (and of rotate's push phase)."""

    node: str
    target: str
    type: Optional[str]
    ok: bool
    status: str  # written | unchanged | failed | skipped | would-write | rolled-back
    path: Optional[str] = None
    fingerprint: Optional[str] = None
    size: Optional[int] = None
    mode: Optional[int] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    previous_fingerprint: Optional[str] = None
    existed: Optional[bool] = None
    backup: Optional[str] = None
    removed_temp_files: int = 0
    message: Optional[str] = None
    error: Optional[str] = None
    changed: bool = False  # this run replaced the file (what a rollback has to undo)

    def to_json(self) -> dict:
        return {
            "node": self.node,
            "target": self.target,
            "type": self.type,
            "ok": self.ok,
            "status": self.status,
            "path": self.path,
            "fingerprint": self.fingerprint,
            "size": self.size,
            "mode": model.format_mode(self.mode),
            "owner": self.owner,
            "group": self.group,
            "previous_fingerprint": self.previous_fingerprint,
            "backup": self.backup,
            "removed_temp_files": self.removed_temp_files,
            "message": self.message,
            "error": self.error,
        }


@dataclass
class PushResult:
    fingerprint: str
    size: int
    dry_run: bool
    nodes: List[NodeKeyResult]
    reports: List[Report] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts

    def to_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "fingerprint": self.fingerprint,
            "size": self.size,
            "nodes": [n.to_json() for n in self.nodes],
            "summary": self.counts(),
        }


def outcome_exit(results: Sequence) -> int:
    """0 when every node is OK, 1 when none is, 3 (partial) otherwise. Skipped nodes do not count as failed."""
    from remotectl.reports import ExitCode

    considered = [r for r in results if getattr(r, "status", None) != "skipped"]
    failed = [r for r in considered if not r.ok]
    if not failed:
        return ExitCode.OK
    if len(failed) == len(considered):
        return ExitCode.FAILURE
    return ExitCode.PARTIAL


# -- generate / fingerprint (local) -------------------------------------------------------------------------------
@dataclass
class KeyFileResult:
    """A local key file that generate wrote or fingerprint read (path "-" and no mode/owner for stdin)."""

    path: str
    fingerprint: str
    size: int
    mode: Optional[int]
    owner: Optional[str]
    group: Optional[str]
    reports: List[Report] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"path": self.path, "fingerprint": self.fingerprint, "size": self.size,
                "mode": model.format_mode(self.mode), "owner": self.owner, "group": self.group}


def _check_size(size: int, reporter: Reporter) -> None:
    """Refuse a key size Pacemaker cannot use; warn about one that some clients cannot use."""
    error = model.key_size_error(size)
    if error:
        raise RemotectlError(error)
    warning = model.key_size_warning(size)
    if warning:
        reporter.warning(warning)


def _warn_if_world_readable(path: str, mode: int, reporter: Reporter) -> None:
    if mode & 0o004:
        reporter.warning(f"{path} is world-readable (mode {model.format_mode(mode)})")


def generate_key(size: int = model.DEFAULT_KEY_BYTES) -> bytes:
    error = model.key_size_error(size)
    if error:
        raise RemotectlError(error)
    return os.urandom(size)


def generate_to_file(path: str, *, size: int, force: bool, mode: int = model.KEY_MODE) -> KeyFileResult:
    """Write a new random key to a local file, atomically, with its final mode (and hacluster:haclient when run
    as root and those exist) before any byte is written. Refuses to replace an existing file unless force."""
    reporter = Reporter()
    path = os.path.abspath(path)
    _check_size(size, reporter)
    owner_ids = None
    if os.geteuid() == 0:
        owner_ids = localfiles.account_ids(model.KEY_OWNER, model.KEY_GROUP)
        if owner_ids is None:
            reporter.warning(f"no {model.KEY_OWNER} user or {model.KEY_GROUP} group here: the key is owned by root")
    data = generate_key(size)
    localfiles.write_secret_file(path, data, mode=mode, owner=owner_ids, overwrite=force)
    info = localfiles.file_info(path)
    return KeyFileResult(path, model.fingerprint(data), len(data), info.mode, info.owner, info.group,
                         reporter.reports)


def read_key(path: str) -> Tuple[bytes, List[Report]]:
    """A local key file (for --key and fingerprint), size-checked; warns when it is world-readable."""
    reporter = Reporter()
    data = localfiles.read_secret_file(path, model.MAX_KEY_BYTES)
    error = model.key_size_error(len(data))
    if error:
        raise RemotectlError(f"{path}: {error}")
    try:
        _warn_if_world_readable(path, localfiles.file_info(path).mode, reporter)
    except RemotectlError:
        pass
    return data, reporter.reports


def fingerprint_file(path: str) -> KeyFileResult:
    reporter = Reporter()
    data = localfiles.read_secret_file(path, model.MAX_KEY_BYTES)
    if not data:
        reporter.warning(f"{path} is empty: Pacemaker treats an empty key file as no key")
    info = localfiles.file_info(path)
    _warn_if_world_readable(path, info.mode, reporter)
    return KeyFileResult(path, model.fingerprint(data), len(data), info.mode, info.owner, info.group,
                         reporter.reports)


def fingerprint_bytes(data: bytes, label: str = "-") -> KeyFileResult:
    return KeyFileResult(label, model.fingerprint(data), len(data), None, None, None, [])


# -- per-node probes ----------------------------------------------------------------------------------------------
@dataclass
class NodeFacts:
    probe: files.HostProbe
    location: model.KeyLocation
    version: Optional[model.Version]
    states: Dict[str, files.RemoteFileState]  # path → state, for every path of `paths` below
    removed_temps: List[str]

    @property
    def key(self) -> files.RemoteFileState:
        """The state of the file at the key location."""
        return self.states[self.location.path]


def inspect_node(runner: Runner, override: Optional[str], *, version: bool = True, chain: bool = False,
                 reader: Optional[str] = None, clean_temps: bool = False) -> NodeFacts:
    """Where this node reads the key (PCMK_authkey_location in its env files, unless --path overrides it), the
    Pacemaker version, root?, hacluster:haclient present?, and the state of the key file (with `chain`: of every
    file of Pacemaker's fallback chain). One round trip when the key is where it is expected, two otherwise."""
    guess = model.key_location({}, override)
    guessed_paths = model.fallback_chain(guess, None) if chain else [guess.path]
    probe = files.host_probe(runner, user=model.KEY_OWNER, group=model.KEY_GROUP,
                             read=() if override else model.ENV_FILES,
                             version_tools=model.VERSION_TOOLS if version else (), paths=guessed_paths,
                             reader=reader, clean_temps=clean_temps)
    texts = {path: data.decode("utf-8", "replace") for path, data in probe.files.items() if data is not None}
    location = model.key_location(texts, override)
    parsed_version = model.parse_version(probe.version_line or "")
    states = {state.path: state for state in probe.states}
    removed = list(probe.states.removed_temps)
    wanted = model.fallback_chain(location, parsed_version) if chain else [location.path]
    missing = [path for path in wanted if path not in states]
    if missing:
        more = files.file_states(runner, missing, reader=reader, clean_temps=clean_temps)
        states.update({state.path: state for state in more})
        removed += more.removed_temps
    return NodeFacts(probe, location, parsed_version, {path: states[path] for path in wanted}, removed)


def _facts(state: files.RemoteFileState) -> model.FileFacts:
    return model.FileFacts(state.path, state.exists, state.size, state.mode, state.owner, state.group,
                           state.sha256, state.readable, state.reader_can_read)


# -- push ------------------------------------------------------------------------------------------------------------
@dataclass
class PushOptions:
    path: Optional[str] = None  # --path; None: the node's configured location
    dry_run: bool = False
    backup: bool = True
    stamp: str = ""  # backup suffix, one per run


def backup_stamp(now: Optional[float] = None) -> str:
    moment = datetime.fromtimestamp(now if now is not None else time.time(), tz=timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z"


def _owner_for(facts: files.HostProbe) -> Tuple[Optional[str], Optional[str]]:
    """(`user:group` for chown or None, a note when the key cannot be given to hacluster:haclient)."""
    if facts.root and facts.account:
        return f"{model.KEY_OWNER}:{model.KEY_GROUP}", None
    if not facts.root:
        return None, "not root there: the key is owned by the SSH user"
    return None, (f"no {model.KEY_OWNER} user or {model.KEY_GROUP} group there: the key is owned by root "
                  "(enough for pacemaker-remoted, not for a cluster node's controller)")


def push_one(target: Target, runner: Runner, data: bytes, options: PushOptions,
             node: Optional[NodeFacts] = None) -> NodeKeyResult:
    """Install data on one node (transport.files.write_file_atomic), skipping it when it is already there.
    Two round trips: the probe (root?, hacluster?, env files, state of the key file, stale temp files removed;
    not repeated when `node` already holds its answer), then the atomic write, which reports the installed file's
    sha256/mode/owner read back after the rename."""
    want = model.fingerprint(data)
    result = NodeKeyResult(target.node, target.destination, target.type, ok=False, status="failed")
    try:
        if node is None:
            node = inspect_node(runner, options.path, version=False, clean_temps=not options.dry_run)
        location = node.location
        path = result.path = location.path
        before = node.key
        result.removed_temp_files = len(node.removed_temps)
        result.existed = before.exists
        result.previous_fingerprint = before.fingerprint
        owner, owner_note = _owner_for(node.probe)
        owner_right = owner is None or (before.owner, before.group) == (model.KEY_OWNER, model.KEY_GROUP)
        same_content = before.exists and before.fingerprint == want
        if same_content and before.mode == model.KEY_MODE and owner_right:
            _fill(result, before)
            result.ok, result.status, result.message = True, "unchanged", "already has this key"
            return result
        fix = None
        if same_content:
            fix = (f"same key; fixing {before.owner}:{before.group} {model.format_mode(before.mode)} → "
                   f"{owner or 'unchanged owner'} {model.format_mode(model.KEY_MODE)}")
        if options.dry_run:
            _fill(result, before)
            result.ok, result.status = True, "would-write"
            result.message = fix or (f"would replace {before.fingerprint or 'an unreadable key'}" if before.exists
                                     else f"would create {path}")
            return result
        backup = None
        if before.exists and options.backup and not same_content:
            backup = model.backup_name(path, options.stamp or backup_stamp())
        after = files.write_file_atomic(runner, path, data, mode=model.KEY_MODE, owner=owner, backup_path=backup)
        result.backup, result.changed = backup, True
        _fill(result, after)
        if after.fingerprint != want:
            result.error = (f"after writing, {path} has {after.fingerprint or 'no readable content'} instead of "
                            f"{want}")
            return result
        if after.mode != model.KEY_MODE:
            result.error = f"after writing, {path} has mode {model.format_mode(after.mode)}"
            return result
        result.ok, result.status = True, "written"
        notes = [n for n in (fix, owner_note) if n]
        if location.source not in ("option", "default"):
            notes.append(f"{model.LOCATION_VARIABLE} from {location.source}")
        result.message = "; ".join(notes) or None
        return result
    except RemotectlError as exc:
        result.error = _without_prefix(exc.message, target)
        return result


def _fill(result: NodeKeyResult, state: files.RemoteFileState) -> None:
    result.fingerprint = state.fingerprint
    result.size, result.mode, result.owner, result.group = state.size, state.mode, state.owner, state.group


def _skipped(target: Target) -> NodeKeyResult:
    return NodeKeyResult(target.node, target.destination, target.type, ok=True, status="skipped",
                         message=target.skip)


def _without_prefix(message: Optional[str], target: Target) -> Optional[str]:
    """Transport errors start with the destination; the node is named next to them already."""
    for prefix in (f"{target.destination}: ", f"{target.node}: "):
        while message and message.startswith(prefix):
            message = message[len(prefix):]
    return message


def _active_runners(targets: Sequence[Target],
                    runner_factory: RunnerFactory) -> Tuple[List[Target], Dict[str, Runner]]:
    """The targets that are not skipped, and a runner for each of their destinations."""
    active = [t for t in targets if not t.skip]
    return active, {t.destination: runner_factory(t.destination) for t in active}


def _failed_connect(target: Target, message: str) -> NodeKeyResult:
    return NodeKeyResult(target.node, target.destination, target.type, ok=False, status="failed",
                         error=_without_prefix(message, target))


def push_key(targets: Sequence[Target], runner_factory: RunnerFactory, data: bytes, options: PushOptions, *,
             on_done: ProgressCallback = None, workers: int = 16,
             probed: Optional[Dict[str, NodeFacts]] = None) -> PushResult:
    """`probed`: node name → what inspect_node (with clean_temps) already learnt there, so push_one does not ask
    again (rotate's preflight)."""
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    _check_size(len(data), reporter)
    if not options.stamp:
        options.stamp = backup_stamp()
    active, runners = _active_runners(targets, runner_factory)
    known = probed or {}
    outcomes = fan_out(lambda t: push_one(t, runners[t.destination], data, options, known.get(t.node)), active,
                       workers=workers, on_done=on_done)
    by_target = {id(o.item): (o.value if o.ok else _failed_connect(o.item, o.error)) for o in outcomes}
    nodes = [_skipped(t) if t.skip else by_target[id(t)] for t in targets]
    for node in nodes:
        if node.status == "failed":
            reporter.error(node.error or "failed", node=node.node)
    return PushResult(model.fingerprint(data), len(data), options.dry_run, nodes, reporter.reports)


# -- verify ----------------------------------------------------------------------------------------------------------
@dataclass
class VerifyNodeResult:
    node: str
    target: str
    type: Optional[str]
    reachable: bool = False
    ok: bool = False
    path: Optional[str] = None  # the file whose fingerprint is shown (the one Pacemaker would load)
    configured_path: Optional[str] = None
    path_source: Optional[str] = None
    fingerprint: Optional[str] = None
    size: Optional[int] = None
    mode: Optional[int] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    hacluster_can_read: Optional[bool] = None
    pacemaker_version: Optional[str] = None
    matches: Optional[bool] = None
    problems: List[model.Problem] = field(default_factory=list)
    error: Optional[str] = None
    status: str = "checked"  # checked | failed | skipped

    def to_json(self) -> dict:
        return {
            "node": self.node,
            "target": self.target,
            "type": self.type,
            "ok": self.ok,
            "reachable": self.reachable,
            "fingerprint": self.fingerprint,
            "matches": self.matches,
            "size": self.size,
            "mode": model.format_mode(self.mode),
            "owner": self.owner,
            "group": self.group,
            "path": self.path,
            "configured_path": self.configured_path,
            "path_source": self.path_source,
            "hacluster_can_read": self.hacluster_can_read,
            "pacemaker_version": self.pacemaker_version,
            "problems": [p.to_json() for p in self.problems],
            "error": self.error,
        }


@dataclass
class VerifyResult:
    verdict: model.Verdict
    nodes: List[VerifyNodeResult]
    key_path: Optional[str]
    reports: List[Report] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.consistent and all(n.ok for n in self.nodes if n.status != "skipped")

    def exit_code(self) -> int:
        from remotectl.reports import ExitCode

        if self.ok:
            return ExitCode.OK
        checked = [n for n in self.nodes if n.status == "checked"]
        unreachable = [n for n in self.nodes if n.status == "failed"]
        if unreachable and checked and all(n.ok for n in checked):
            return ExitCode.PARTIAL
        return ExitCode.FAILURE

    def to_json(self) -> dict:
        v = self.verdict
        return {
            "consistent": v.consistent,
            "ok": self.ok,
            "reference": {"fingerprint": v.reference, "source": v.reference_source, "key": self.key_path},
            "summary": v.summary,
            "differing": v.differing,
            "unchecked": v.unchecked,
            "groups": [{"fingerprint": fp, "nodes": names} for fp, names in v.groups.items()],
            "nodes": [n.to_json() for n in self.nodes],
        }


def verify_one(target: Target, runner: Runner, path_override: Optional[str]) -> VerifyNodeResult:
    """One round trip (two when PCMK_authkey_location or a 3.0 version changes the paths to look at)."""
    result = VerifyNodeResult(target.node, target.destination, target.type)
    node = inspect_node(runner, path_override, chain=True, reader=model.KEY_OWNER)
    location, version = node.location, node.version
    result.reachable = True
    result.configured_path, result.path_source = location.path, location.source
    result.pacemaker_version = model.version_text(version)
    observed = {path: _facts(state) for path, state in node.states.items()}
    assessment = model.assess_node(location, version, observed)
    effective = assessment.effective
    shown = effective if effective is not None else observed.get(location.path)
    if shown is not None:
        result.path = shown.path
        result.fingerprint = shown.fingerprint if effective is not None else None
        result.size, result.mode, result.owner, result.group = shown.size, shown.mode, shown.owner, shown.group
        result.hacluster_can_read = shown.hacluster_can_read
    result.problems = list(assessment.problems)
    return result


def verify_keys(targets: Sequence[Target], runner_factory: RunnerFactory, *, path: Optional[str] = None,
                key: Optional[bytes] = None, key_path: Optional[str] = None, on_done: ProgressCallback = None,
                workers: int = 16) -> VerifyResult:
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    active, runners = _active_runners(targets, runner_factory)
    outcomes = fan_out(lambda t: verify_one(t, runners[t.destination], path), active, workers=workers,
                       on_done=on_done)
    by_target: Dict[int, VerifyNodeResult] = {}
    for outcome in outcomes:
        if outcome.ok:
            by_target[id(outcome.item)] = outcome.value
        else:
            t = outcome.item
            by_target[id(t)] = VerifyNodeResult(t.node, t.destination, t.type, status="failed",
                                                error=_without_prefix(outcome.error, t))
    nodes: List[VerifyNodeResult] = []
    for t in targets:
        if t.skip:
            nodes.append(VerifyNodeResult(t.node, t.destination, t.type, ok=True, status="skipped", error=None,
                                          problems=[model.Problem("skipped", "warning", t.skip)]))
        else:
            nodes.append(by_target[id(t)])
    checked = [n for n in nodes if n.status == "checked"]
    unreachable = [n.node for n in nodes if n.status == "failed"]
    reference = model.fingerprint(key) if key is not None else None
    verdict = model.verdict({n.node: n.fingerprint for n in checked}, unreachable, reference)
    for note in verdict.notes:
        reporter.warning(note)
    for n in checked:
        n.matches = verdict.matches.get(n.node)
        if n.matches is False:
            against = "--key" if verdict.reference_source == "key" else "the majority"
            n.problems.append(model.Problem("differs", "error",
                                            f"key {n.fingerprint} differs from {against} ({verdict.reference})"))
        elif n.matches is None and n.fingerprint and verdict.reference is None:
            n.problems.append(model.Problem("differs", "error", "no majority key to compare with"))
        n.ok = n.matches is True and not any(p.severity == "error" for p in n.problems)
    for n in nodes:
        if n.status == "failed":
            reporter.error(n.error or "not reachable", node=n.node)
    if reference is not None:
        size_warning = model.key_size_warning(len(key))
        if size_warning:
            reporter.info(size_warning)
    return VerifyResult(verdict, nodes, key_path, reporter.reports)


# -- rotate ----------------------------------------------------------------------------------------------------------
@dataclass
class RestartOutcome:
    node: str
    kind: str
    command: Optional[str]
    needed: bool
    status: str  # done | not-needed | failed | planned | skipped
    message: str

    def to_json(self) -> dict:
        return {"node": self.node, "kind": self.kind, "command": self.command, "needed": self.needed,
                "status": self.status, "message": self.message}


@dataclass
class RotateResult:
    dry_run: bool
    fingerprint: Optional[str]  # the new key (None in a dry run: it is generated only when applying)
    size: int
    plan: List[str]
    nodes: List[NodeKeyResult]
    restarts: List[RestartOutcome]
    verify: Optional[VerifyResult]
    rolled_back: bool
    ok: bool
    previous: Dict[str, Optional[str]] = field(default_factory=dict)  # node → fingerprint before
    reports: List[Report] = field(default_factory=list)

    def exit_code(self) -> int:
        """0 done; 1 nothing could be done (a node unreachable before anything changed, or every node failed);
        3 some nodes failed (the push was rolled back, a restart failed, or the rollback itself failed)."""
        from remotectl.reports import ExitCode

        if self.ok:
            return ExitCode.OK
        considered = [n for n in self.nodes if n.status != "skipped"]
        if not considered or all(n.status == "failed" for n in considered):
            return ExitCode.FAILURE
        return ExitCode.PARTIAL

    def to_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "fingerprint": self.fingerprint,
            "size": self.size,
            "plan": self.plan,
            "nodes": [n.to_json() for n in self.nodes],
            "restarts": [r.to_json() for r in self.restarts],
            "verify": self.verify.to_json() if self.verify else None,
            "consistent": self.verify.verdict.consistent if self.verify else None,
            "rolled_back": self.rolled_back,
        }


def rollback_one(runner: Runner, result: NodeKeyResult) -> None:
    """Put back what was there before push_one wrote: the backup, or nothing when there was no file."""
    if result.backup:
        files.restore_file_atomic(runner, result.backup, result.path)
    elif result.existed is False:
        files.remove_file(runner, result.path)
    else:
        raise RemotectlError("no backup to restore")


class Restarter:
    """Runs the restart steps. Separate so that tests (and the lab, which has no systemd) can substitute it."""

    def __init__(self, runner_factory: RunnerFactory, cluster_factory: Optional[Callable[[], object]],
                 *, online_timeout: float = 300.0, poll: float = 2.0) -> None:
        self.runner_factory = runner_factory
        self.cluster_factory = cluster_factory
        self.online_timeout = online_timeout
        self.poll = poll

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

    def wait_online(self, names: Sequence[str]) -> Tuple[bool, List[str]]:
        """Until every named node is online (crm_mon), or the timeout; returns the ones still offline."""
        from remotectl.pacemaker.nodes import nodes_from_crm_mon

        deadline = time.monotonic() + self.online_timeout
        missing = list(names)
        while True:
            try:  # crm_mon alone says who is online: no CIB fetch and parse on every poll
                listed = {n.name: n for n in nodes_from_crm_mon(self.cluster_factory().crm_mon_xml())}
                missing = [name for name in names if not (listed.get(name) and listed[name].online)]
            except RemotectlError:
                missing = list(names)
            if not missing:
                return True, []
            if time.monotonic() >= deadline:
                return False, missing
            time.sleep(self.poll)


def run_restarts(steps: Sequence[model.RestartStep], targets: Dict[str, Target], restarter: Restarter,
                 reporter: Reporter) -> List[RestartOutcome]:
    """The restart procedure for nodes whose Pacemaker keeps the key for the daemon's lifetime (3.0.2+):
    1. set maintenance-mode=true (the cluster neither recovers nor fences while daemons restart with a key the
       other side may not have loaded yet); 2. restart pacemaker_remote on those remote and guest nodes;
    3. restart pacemaker on those cluster nodes one at a time, waiting until each is online again;
    4. put maintenance-mode back; 5. wait until every restarted node is online."""
    outcomes: List[RestartOutcome] = []
    needed = [s for s in steps if s.needed]
    for step in steps:
        if not step.needed:
            outcomes.append(RestartOutcome(step.node, step.kind, None, False, "not-needed", step.reason))
    if not needed:
        return outcomes
    previous = restarter.maintenance_mode()
    ok, message = restarter.cluster_tool(tools.cluster_property_update("maintenance-mode", "true"))
    if not ok:
        reporter.error(f"cannot set maintenance-mode before restarting: {message}; no daemon restarted")
        outcomes.extend(RestartOutcome(s.node, s.kind, " ".join(s.argv), True, "skipped", s.reason) for s in needed)
        return outcomes
    try:
        for step in needed:
            target = targets[step.node]
            done, message = restarter.run_on(target.destination, step.argv)
            status = "done" if done else "failed"
            if done and step.kind == "cluster":
                online, _ = restarter.wait_online([step.node])
                if not online:
                    status, message = "failed", f"not online again within {restarter.online_timeout:g} s"
            outcomes.append(RestartOutcome(step.node, step.kind, " ".join(step.argv), True, status,
                                           step.reason if done else message))
            if status == "failed":
                reporter.error(f"restart failed: {message}", node=step.node)
                if step.kind == "cluster":
                    break  # rolling: never take a second cluster node down after one failed to come back
    finally:
        argv = tools.cluster_property_delete("maintenance-mode") if previous is None else \
            tools.cluster_property_update("maintenance-mode", previous)
        ok, message = restarter.cluster_tool(argv)
        if not ok:
            reporter.error(f"could not put maintenance-mode back ({previous or 'unset'}): {message}")
    for step in needed:
        if not any(o.node == step.node for o in outcomes):
            outcomes.append(RestartOutcome(step.node, step.kind, " ".join(step.argv), True, "skipped",
                                           "not restarted: an earlier cluster node did not come back"))
    restarted = [o.node for o in outcomes if o.status == "done"]
    if restarted:
        online, missing = restarter.wait_online(restarted)
        if not online:
            reporter.error(f"still offline after the restarts: {', '.join(missing)}")
            for outcome in outcomes:
                if outcome.node in missing:
                    outcome.status, outcome.message = "failed", "not online again after the restart"
    return outcomes


def rotate_plan(targets: Sequence[Target], pre: Dict[str, NodeFacts], steps: Sequence[model.RestartStep],
                *, size: int, restart: bool, backup_suffix: str) -> List[str]:
    lines = [f"1. generate a new {size}-byte key"]
    active = [t for t in targets if not t.skip]
    lines.append(f"2. push it to {len(active)} node(s), keeping each old key as <path>.bak-{backup_suffix}:")
    for t in active:
        p = pre.get(t.node)
        where = p.location.path if p else "?"
        before = (p.key.fingerprint or "no key") if p else "?"
        who = t.node if t.node == t.destination else f"{t.node} ({t.type}, {t.destination})"
        lines.append(f"   - {who}: {where} (now {before})")
    for t in targets:
        if t.skip:
            lines.append(f"   - {t.node}: skipped ({t.skip})")
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


def rotate_key(targets: Sequence[Target], runner_factory: RunnerFactory, *, size: int = model.DEFAULT_KEY_BYTES,
               path: Optional[str] = None, dry_run: bool = False, restart: bool = False,
               restarter: Optional[Restarter] = None, on_done: ProgressCallback = None,
               on_plan: Optional[Callable[[List[str]], None]] = None, workers: int = 16) -> RotateResult:
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    _check_size(size, reporter)
    active, runners = _active_runners(targets, runner_factory)
    if not active:
        raise RemotectlError("no nodes to rotate the key on")
    stamp = backup_stamp()

    # preflight: every node must be reachable before anything changes; the push reuses this probe
    outcomes = fan_out(lambda t: inspect_node(runners[t.destination], path, clean_temps=not dry_run), active,
                       workers=workers)
    pre: Dict[str, NodeFacts] = {}
    unreachable: List[NodeKeyResult] = []
    for o in outcomes:
        if o.ok:
            pre[o.item.node] = o.value
        else:
            unreachable.append(_failed_connect(o.item, o.error))
    steps = model.plan_restarts([(t.node, t.type or "remote", pre[t.node].version) for t in active
                                 if t.node in pre])
    plan = rotate_plan(targets, pre, steps, size=size, restart=restart, backup_suffix=stamp)
    previous = {name: p.key.fingerprint for name, p in pre.items()}
    if on_plan is not None and not unreachable:
        on_plan(plan)
    if unreachable:
        for u in unreachable:
            reporter.error(f"{u.error}; nothing was changed anywhere", node=u.node)
        failed_by_node = {u.node: u for u in unreachable}
        nodes = [failed_by_node.get(t.node) or NodeKeyResult(
            t.node, t.destination, t.type, ok=True, status="skipped",
            message="rotation not started: not every node is reachable") for t in active]
        return RotateResult(dry_run, None, size, plan, nodes, [], None, False, False, previous, reporter.reports)
    lifetime = [s for s in steps if s.needed]
    if lifetime and not restart:
        reporter.warning("without --restart, " + ", ".join(s.node for s in lifetime) + " keep the old key in "
                         "memory until their daemon restarts (Pacemaker 3.0.2+ or unknown version)")
    if dry_run:
        nodes = [NodeKeyResult(t.node, t.destination, t.type, ok=True, status="would-write",
                               path=pre[t.node].location.path, previous_fingerprint=pre[t.node].key.fingerprint,
                               existed=pre[t.node].key.exists) for t in active]
        restarts = [RestartOutcome(s.node, s.kind, " ".join(s.argv), s.needed,
                                   "planned" if (s.needed and restart) else ("not-needed" if not s.needed
                                                                           else "skipped"), s.reason)
                    for s in steps]
        return RotateResult(True, None, size, plan, nodes, restarts, None, False, True, previous, reporter.reports)

    data = generate_key(size)
    options = PushOptions(path=path, dry_run=False, backup=True, stamp=stamp)
    pushed = push_key(active, runner_factory, data, options, on_done=on_done, workers=workers, probed=pre)
    nodes = pushed.nodes
    failed = [n for n in nodes if not n.ok]
    verify = None
    rolled_back = False
    if not failed:
        verify = verify_keys(active, runner_factory, path=path, key=data, workers=workers)
        mismatched = [n.node for n in verify.nodes if n.status != "skipped" and n.matches is not True]
        if mismatched:
            reporter.error(f"after the push, {', '.join(mismatched)} do(es) not show the new key")
            for n in nodes:
                if n.node in mismatched:
                    n.ok, n.status = False, "failed"
                    n.error = n.error or "verification after the push failed"
            failed = [n for n in nodes if not n.ok]
    if failed:
        rolled_back = True
        for n in failed:
            reporter.error(n.error or "push failed", node=n.node)

        def undo(n: NodeKeyResult) -> NodeKeyResult:
            rollback_one(runners[n.target], n)
            return n

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
                               node=node.node)
        restarts = [RestartOutcome(s.node, s.kind, " ".join(s.argv), s.needed, "skipped",
                                   "rotation rolled back") for s in steps]
        reporter.reports.extend(pushed.reports)
        return RotateResult(False, model.fingerprint(data), size, plan, nodes, restarts, verify, rolled_back, False,
                            previous, reporter.reports)

    restarts: List[RestartOutcome]
    if restart:
        restarter = restarter or Restarter(runner_factory, None)
        restarts = run_restarts(steps, {t.node: t for t in active}, restarter, reporter)
    else:
        restarts = [RestartOutcome(s.node, s.kind, " ".join(s.argv), s.needed,
                                   "skipped" if s.needed else "not-needed", s.reason) for s in steps]
    ok = verify is not None and verify.verdict.consistent and not any(r.status == "failed" for r in restarts)
    return RotateResult(False, model.fingerprint(data), size, plan, nodes, restarts, verify, False, ok, previous,
                        reporter.reports)
