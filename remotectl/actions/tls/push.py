"""`tls push`: the cluster CA, the node's certificate and its key onto each node, with the atomic remote write
(transport.files.write_file_atomic), owner root:haclient, key 0440, certificates 0644. A file already there with
the same content, owner and mode is left alone. It does not switch the node to X.509 (no PCMK_* setting is
touched), so a PSK cluster keeps running on its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.actions.authkey.facts import active_runners, without_prefix
from remotectl.actions.targets import Target
from remotectl.actions.tls import facts as tls_facts
from remotectl.actions.tls.local import node_paths, read_ca_certificate
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import x509 as model
from remotectl.pacemaker.authkey import FileFacts, fingerprint, format_mode
from remotectl.reports import RemotectlError, Report, Reporter, per_node_exit
from remotectl.transport import files, localfiles, tls_files
from remotectl.transport.base import Runner


@dataclass
class PushedFile:
    role: str  # ca | cert | key
    path: str
    status: str  # written | unchanged | failed
    fingerprint: Optional[str] = None  # sha256 of the file (for the key too: never its bytes)
    mode: Optional[int] = json_field(default=None, convert=format_mode)
    owner: Optional[str] = None
    group: Optional[str] = None


@dataclass
class NodePushResult:
    node: str
    target: str
    type: Optional[str]
    ok: bool
    status: str  # written | unchanged | failed | skipped
    tls_mode: Optional[str] = None  # what the node's daemons use now (push does not change it)
    files: List[PushedFile] = field(default_factory=list)
    message: Optional[str] = None
    error: Optional[str] = None

    @classmethod
    def of(cls, target: Target, **fields) -> "NodePushResult":
        return cls(node=target.label, target=target.host, type=target.type, **fields)

    @property
    def detail(self) -> Optional[str]:
        return self.error or self.message


@dataclass
class TlsPushResult:
    directory: str
    remote_dir: str
    ca: Optional[str]
    nodes: List[NodePushResult]
    reports: List[Report] = json_field(omit=True, default_factory=list)

    def exit_code(self) -> int:
        return per_node_exit(self.nodes)

    def to_json(self) -> dict:
        return jsonable(self)


def _bundle(directory: str, target: Target, ca_pem: bytes) -> Dict[str, bytes]:
    """role → bytes to install on target: the CA's certificate and the node's own pair from the CA directory."""
    cert_path, key_path = node_paths(directory, target.node or target.label)
    cert = localfiles.read_secret_file(cert_path, model.MAX_PEM_BYTES, what="certificate")
    key = localfiles.read_secret_file(key_path, model.MAX_PEM_BYTES, what="key")
    check = model.check_node_files(ca_pem, cert, key)
    errors = [p.message for p in check.problems if p.severity == "error"]
    if errors:
        raise RemotectlError(f"{cert_path}: {errors[0]}")
    return {"ca": ca_pem, "cert": cert, "key": key}


def _same(state: FileFacts, data: bytes, role: str, owner: Optional[str]) -> bool:
    if not state.exists or state.fingerprint != fingerprint(data) or state.mode != model.REMOTE_MODES[role]:
        return False
    return owner is None or f"{state.owner}:{state.group}" == owner


def push_one(target: Target, runner: Runner, directory: str, remote_dir: str, ca_pem: bytes) -> NodePushResult:
    row = NodePushResult.of(target, ok=False, status="failed")
    try:
        bundle = _bundle(directory, target, ca_pem)
        node = tls_facts.inspect(runner, remote_dir, read_files=False, follow_settings=False)
        row.tls_mode = node.settings.mode
        owner = f"root:{model.DAEMON_GROUP}" if node.root and node.account else None
        notes = []
        if owner is None:
            notes.append("not root there, or no haclient group: the files keep the SSH user's ownership")
        if node.settings.mode == "x509" and any(node.settings.path(r) != node.paths[r] for r in model.ROLES):
            notes.append("its PCMK_* settings name other files than these")
        changed = False
        for role in model.ROLES:
            path, data = node.paths[role], bundle[role]
            if _same(node.states[role], data, role, owner):
                row.files.append(_file(role, node.states[role], "unchanged"))
                continue
            if not changed and tls_files.ensure_directory(runner, remote_dir, mode=model.REMOTE_DIR_MODE,
                                                          group=model.DAEMON_GROUP if owner else ""):
                notes.append(f"created {remote_dir}")
            after = files.write_file_atomic(runner, path, data, mode=model.REMOTE_MODES[role], owner=owner)
            changed = True
            row.files.append(_file(role, after, "written"))
            if after.fingerprint != fingerprint(data):
                row.files[-1].status = "failed"
                raise RemotectlError(f"after writing, {path} does not hold the expected content")
        if changed and node.root and node.account:
            readable = files.file_states(runner, [node.paths[r] for r in model.ROLES], reader=model.DAEMON_USER)
            unreadable = [s.path for s in readable if s.reader_can_read is False]
            if unreadable:
                raise RemotectlError(f"{model.DAEMON_USER} cannot read {', '.join(unreadable)} (check the "
                                     "directories' permissions)")
        row.ok, row.status = True, "written" if changed else "unchanged"
        row.message = "; ".join(notes) or None
    except RemotectlError as exc:
        row.error = without_prefix(exc.message, target)
    return row


def _file(role: str, state: FileFacts, status: str) -> PushedFile:
    return PushedFile(role, state.path, status, state.fingerprint, state.mode, state.owner, state.group)


def push(targets: Sequence[Target], runner_factory: Callable[[str], Runner], directory: str, remote_dir: str, *,
         on_done=None, workers: int = 16) -> TlsPushResult:
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    ca_pem = read_ca_certificate(directory)
    if ca_pem is None:
        raise RemotectlError(f"no CA in {directory}: run `remotectl tls ca create` and `tls issue` first")
    ca_print = model.fingerprint_der(model.load_certificates(ca_pem, "the CA certificate")[0])
    active, runners = active_runners(targets, runner_factory)
    outcomes = fan_out(lambda t: push_one(t, runners[t.host], directory, remote_dir, ca_pem), active,
                       workers=workers, on_done=on_done)
    by_target = {id(o.item): o.value if o.ok else NodePushResult.of(o.item, ok=False, status="failed",
                                                                     error=without_prefix(o.error, o.item))
                 for o in outcomes}
    nodes = [NodePushResult.of(t, ok=True, status="skipped", message=t.skip) if t.skip else by_target[id(t)]
             for t in targets]
    return TlsPushResult(directory, remote_dir, ca_print, nodes, reporter.reports)
