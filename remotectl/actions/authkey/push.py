"""Push: install one key on many nodes, atomically, with backups; nodes that already have it are left alone.

Each node's outcome is its row (``status``, ``error``, ``message``): a failure is shown once, in its row, not
again as a report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Set, Tuple

from remotectl.actions.authkey.facts import (NodeFacts, ProgressCallback, RunnerFactory, active_runners, env_files,
                                             facts_from_probe, inspect_node, without_prefix)
from remotectl.actions.authkey.keys import check_size
from remotectl.actions.targets import Target
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import authkey as model
from remotectl.reports import RemotectlError, Report, Reporter
from remotectl.transport import files
from remotectl.transport.base import Runner


@dataclass
class NodeKeyResult:
    """One node's outcome of push (and of rotate's push phase). Fields in JSON order."""

    node: str
    target: str
    type: Optional[str]
    ok: bool
    # written | unchanged | failed | changed-underneath | skipped | would-write | rolled-back | not-written | unknown
    status: str
    path: Optional[str] = None
    fingerprint: Optional[str] = None
    size: Optional[int] = None
    mode: Optional[int] = json_field(default=None, convert=model.format_mode)
    owner: Optional[str] = None
    group: Optional[str] = None
    previous_fingerprint: Optional[str] = None
    backup: Optional[str] = None
    removed_temp_files: int = 0
    message: Optional[str] = None
    error: Optional[str] = None
    existed: Optional[bool] = json_field(omit=True, default=None)  # what a rollback has to restore
    changed: bool = json_field(omit=True, default=False)  # this run replaced the file (what a rollback has to undo)

    @classmethod
    def of(cls, target: Target, *, ok: bool, status: str, **fields) -> "NodeKeyResult":
        return cls(node=target.label, target=target.host, type=target.type, ok=ok, status=status, **fields)

    @property
    def mode_text(self) -> Optional[str]:
        return model.format_mode(self.mode)

    @property
    def detail(self) -> Optional[str]:
        """The table's DETAIL cell: what went wrong, else what was done."""
        return self.error or self.message

    def fill(self, state: model.FileFacts) -> None:
        """Take fingerprint, size, mode and owner from what the node reported for the key file."""
        self.fingerprint, self.size = state.fingerprint, state.size
        self.mode, self.owner, self.group = state.mode, state.owner, state.group

    def to_json(self) -> dict:
        return jsonable(self)


CHANGED_UNDERNEATH = "changed-underneath"  # another writer replaced the key after this push looked: left alone
NOT_WRITTEN = "not-written"  # interrupted before its write started
UNKNOWN = "unknown"  # interrupted while its write was under way: old key or new one


@dataclass
class PushResult:
    dry_run: bool
    fingerprint: str
    size: int
    nodes: List[NodeKeyResult]
    interrupted: bool = False  # Ctrl-C: the nodes' rows say which were written, not written or unknown
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def summary(self) -> Dict[str, int]:
        """status → number of nodes."""
        counts: Dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts

    def to_json(self) -> dict:
        return jsonable(self, extra=("summary",))


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


@dataclass(frozen=True)
class _Change:
    """What push_one decided for one node before writing anything."""

    want: str  # the fingerprint to install
    owner: Optional[str]  # user:group to chown to, or None
    owner_note: Optional[str]
    same_content: bool
    fix: Optional[str]  # same key, wrong mode or owner: what will be fixed

    @property
    def nothing_to_do(self) -> bool:
        return self.same_content and self.fix is None


def _decide(node: NodeFacts, want: str) -> _Change:
    before = node.key
    owner, owner_note = _owner_for(node.probe)
    owner_right = owner is None or (before.owner, before.group) == (model.KEY_OWNER, model.KEY_GROUP)
    same_content = before.exists and before.fingerprint == want
    fix = None
    if same_content and not (before.mode == model.KEY_MODE and owner_right):
        fix = (f"same key; fixing {before.owner}:{before.group} {model.format_mode(before.mode)} → "
               f"{owner or 'unchanged owner'} {model.format_mode(model.KEY_MODE)}")
    return _Change(want=want, owner=owner, owner_note=owner_note, same_content=same_content, fix=fix)


def _would(result: NodeKeyResult, node: NodeFacts, change: _Change) -> NodeKeyResult:
    before = node.key
    result.fill(before)
    result.ok, result.status = True, "would-write"
    result.message = change.fix or (f"would replace {before.fingerprint or 'an unreadable key'}" if before.exists
                                    else f"would create {result.path}")
    return result


def _write(result: NodeKeyResult, runner: Runner, data: bytes, node: NodeFacts, change: _Change,
           options: PushOptions) -> NodeKeyResult:
    path = result.path
    backup = None
    if node.key.exists and options.backup and not change.same_content:
        backup = model.backup_name(path, options.stamp or backup_stamp(), node.key.fingerprint)
    try:
        after = files.write_file_atomic(runner, path, data, mode=model.KEY_MODE, owner=change.owner,
                                        backup_path=backup, expect=files.expected_state(node.key))
    except files.ChangedUnderneath as exc:
        return _changed_underneath(result, node, exc)
    return _written(result, node, change, after, backup)


def _changed_underneath(result: NodeKeyResult, node: NodeFacts, exc: files.ChangedUnderneath) -> NodeKeyResult:
    result.status, result.fingerprint = CHANGED_UNDERNEATH, exc.now
    result.error = (f"{result.path} changed underneath this push: it held {node.key.fingerprint or 'no key'} when "
                    f"the push started, {exc.now or 'no readable key'} now; left as it is")
    return result


def _written(result: NodeKeyResult, node: NodeFacts, change: _Change, after: model.FileFacts,
             backup: Optional[str]) -> NodeKeyResult:
    """The row of a node whose write went through: checked against what was meant to be installed."""
    path = result.path
    result.backup, result.changed = backup, True
    result.fill(after)
    if after.fingerprint != change.want:
        result.error = (f"after writing, {path} has {after.fingerprint or 'no readable content'} instead of "
                        f"{change.want}")
        return result
    if after.mode != model.KEY_MODE:
        result.error = f"after writing, {path} has mode {model.format_mode(after.mode)}"
        return result
    result.ok, result.status = True, "written"
    notes = [n for n in (change.fix, change.owner_note) if n]
    if node.location.source not in ("option", "default"):
        notes.append(f"{model.LOCATION_VARIABLE} from {node.location.source}")
    result.message = "; ".join(notes) or None
    return result


class WriteLedger:
    """Which nodes have a write under way, so that a Ctrl-C can tell nodes that may hold the new key from those
    that cannot; once `close`d, no write starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: Set[int] = set()
        self._closed = False

    def start(self, target: Target) -> None:
        with self._lock:
            if self._closed:
                raise RemotectlError("interrupted before anything was written there")
            self._started.add(id(target))

    def close(self) -> Set[int]:
        """No write starts from now on; the targets (by id) whose write had started."""
        with self._lock:
            self._closed = True
            return set(self._started)


def push_one(target: Target, runner: Runner, data: bytes, options: PushOptions,
             node: Optional[NodeFacts] = None, writes: Optional[WriteLedger] = None) -> NodeKeyResult:
    """Install data on one node, skipping it when it is already there. One round trip
    (transport.files.probe_and_write: the probe — root?, hacluster?, env files, state of the key file, stale temp
    files removed — and the atomic write in one script, which reports the installed file's sha256/mode/owner read
    back after the rename). With `node` (what a preflight learnt), only the write; a dry run only probes. More
    round trips when an env file sets PCMK_authkey_location: the key's place is decided here, not on the node."""
    result = NodeKeyResult.of(target, ok=False, status="failed")
    try:
        if node is None and not options.dry_run:
            return _probe_and_write(result, target, runner, data, options, writes)
        if node is None:
            node = inspect_node(runner, options.path, version=False)
        return _decide_and_write(result, target, runner, data, options, node, writes)
    except RemotectlError as exc:
        result.error = without_prefix(exc.message, target)
        return result


def _start(result: NodeKeyResult, node: NodeFacts) -> None:
    """The row's fields known from the probe, before anything is written."""
    result.path = node.location.path
    result.removed_temp_files = len(node.removed_temps)
    result.existed = node.key.exists
    result.previous_fingerprint = node.key.fingerprint


def _unchanged(result: NodeKeyResult, node: NodeFacts) -> NodeKeyResult:
    result.fill(node.key)
    result.ok, result.status, result.message = True, "unchanged", "already has this key"
    return result


def _decide_and_write(result: NodeKeyResult, target: Target, runner: Runner, data: bytes, options: PushOptions,
                      node: NodeFacts, writes: Optional[WriteLedger]) -> NodeKeyResult:
    _start(result, node)
    change = _decide(node, model.fingerprint(data))
    if change.nothing_to_do:
        return _unchanged(result, node)
    if options.dry_run:
        return _would(result, node, change)
    if writes is not None:
        writes.start(target)
    return _write(result, runner, data, node, change, options)


def _probe_and_write(result: NodeKeyResult, target: Target, runner: Runner, data: bytes, options: PushOptions,
                     writes: Optional[WriteLedger]) -> NodeKeyResult:
    """The one-round-trip push. The node applies push's rule (_decide) itself; the row is built from the probe
    with _decide here, and a node that did otherwise is a failure, never a row that says what did not happen."""
    guess = model.key_location({}, options.path)
    result.path = guess.path
    if writes is not None:  # once connected, the script may write as soon as it starts
        runner.connect()
        writes.start(target)
    done = files.probe_and_write(
        runner, guess.path, data, mode=model.KEY_MODE, owner=f"{model.KEY_OWNER}:{model.KEY_GROUP}",
        user=model.KEY_OWNER, group=model.KEY_GROUP, read=env_files(options.path),
        defer_on="" if options.path else model.LOCATION_VARIABLE,
        backup_prefix=model.backup_prefix(guess.path, options.stamp or backup_stamp()) if options.backup else "")
    node = facts_from_probe(runner, done.probe, options.path, clean_temps=True)
    if done.action == "deferred":
        return _decide_and_write(result, target, runner, data, options, node, None)
    _start(result, node)
    change = _decide(node, model.fingerprint(data))
    if change.nothing_to_do != (done.action == "unchanged") or node.location.path != guess.path:
        raise RemotectlError(f"{guess.path}: the node's write script and this push disagree on what to do "
                             f"(the node: {done.action}); check the key there with authkey verify")
    if done.action == "unchanged":
        return _unchanged(result, node)
    if isinstance(done.failure, files.ChangedUnderneath):
        return _changed_underneath(result, node, done.failure)
    if done.failure is not None:
        raise done.failure
    return _written(result, node, change, done.installed, done.backup)


def skipped(target: Target) -> NodeKeyResult:
    return NodeKeyResult.of(target, ok=True, status="skipped", message=target.skip)


def failed_connect(target: Target, message: Optional[str]) -> NodeKeyResult:
    return NodeKeyResult.of(target, ok=False, status="failed", error=without_prefix(message, target))


def push_key(targets: Sequence[Target], runner_factory: RunnerFactory, data: bytes, options: PushOptions, *,
             on_done: ProgressCallback = None, workers: int = 16,
             probed: Optional[Dict[str, NodeFacts]] = None) -> PushResult:
    """`probed`: node label → what inspect_node (with clean_temps) already learnt there, so push_one does not ask
    again (rotate's preflight). On Ctrl-C: no write starts any more, the connections are closed, and the result
    (`interrupted`) says per node written, not-written or unknown (a write under way)."""
    from remotectl.transport.fanout import FanOutInterrupted, Outcome, fan_out

    reporter = Reporter()
    check_size(len(data), reporter)
    if not options.stamp:
        options.stamp = backup_stamp()
    active, runners = active_runners(targets, runner_factory)
    known = probed or {}
    writes = WriteLedger()
    interrupted, started = False, set()
    try:
        outcomes: Sequence[Optional[Outcome]] = fan_out(
            lambda t: push_one(t, runners[t.host], data, options, known.get(t.label), writes), active,
            workers=workers, on_done=on_done)
    except FanOutInterrupted as exc:
        interrupted, outcomes = True, exc.outcomes
        started = writes.close()
        for runner in runners.values():  # stuck connections and commands end now, not at their timeouts
            runner.close()
    by_target = {id(o.item): (o.value if o.ok else failed_connect(o.item, o.error)) for o in outcomes if o}
    nodes = [skipped(t) if t.skip else by_target.get(id(t)) or _interrupted(t, id(t) in started) for t in targets]
    for node in nodes:
        if node.status == CHANGED_UNDERNEATH:
            reporter.error(f"the key on {node.node} changed while this push ran (another write got there first): "
                           "left as it is; run the push again to install this key there", node=node.node,
                           code="key-changed-underneath")
    if interrupted:
        counts = {status: sum(1 for n in nodes if n.status == status) for status in ("written", NOT_WRITTEN, UNKNOWN)}
        reporter.error(f"interrupted: {counts['written']} node(s) written, {counts[NOT_WRITTEN]} not written, "
                       f"{counts[UNKNOWN]} unknown (their write was under way; check with authkey verify)",
                       code="interrupted")
    return PushResult(dry_run=options.dry_run, fingerprint=model.fingerprint(data), size=len(data), nodes=nodes,
                      interrupted=interrupted, reports=reporter.reports)


def _interrupted(target: Target, write_started: bool) -> NodeKeyResult:
    """The row of a node still being worked on at Ctrl-C."""
    if write_started:
        return NodeKeyResult.of(target, ok=False, status=UNKNOWN, error="interrupted while its write was under way: "
                                "it holds the old key or the new one")
    return NodeKeyResult.of(target, ok=False, status=NOT_WRITTEN, error="interrupted before anything was written "
                            "there")
