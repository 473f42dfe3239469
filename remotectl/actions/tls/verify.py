"""`tls verify`: per node, over SSH and read-only: the PCMK_* settings, the three files (present, PEM, owner and
mode), the key matches the certificate, the certificate chains to the node's CA file and to the cluster CA, its
validity and days left, its names cover the node's address; then whether every node uses the same mode.

The cluster CA is the CA directory's certificate when there is one, else the CA most nodes hold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.actions.authkey.facts import active_runners, without_prefix
from remotectl.actions.targets import Target
from remotectl.actions.tls import facts as tls_facts
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import x509 as model
from remotectl.pacemaker.authkey import Problem, format_mode
from remotectl.reports import ExitCode, Report, Reporter
from remotectl.transport.base import Runner


@dataclass
class CheckedFile:
    role: str
    path: str
    exists: bool
    mode: Optional[int] = json_field(default=None, convert=format_mode)
    owner: Optional[str] = None
    group: Optional[str] = None
    hacluster_can_read: Optional[bool] = None


@dataclass
class NodeVerifyResult:
    node: str
    target: str
    type: Optional[str]
    ok: bool = False
    status: str = "checked"  # checked | failed | skipped
    tls_mode: Optional[str] = None  # psk | x509 (what the node's daemons use); None when not checked
    settings: Optional[model.TlsSettings] = None
    files: List[CheckedFile] = field(default_factory=list)
    certificate: Optional[model.CertInfo] = None
    days_left: Optional[int] = None
    ca_fingerprint: Optional[str] = None
    names: List[str] = field(default_factory=list)  # what the certificate must name: the node's address
    problems: List[Problem] = field(default_factory=list)
    error: Optional[str] = None
    ca_pem: Optional[bytes] = json_field(omit=True, default=None)
    check_inputs: Optional[tuple] = json_field(omit=True, default=None, repr=False)  # held until _finish

    @classmethod
    def of(cls, target: Target, **fields) -> "NodeVerifyResult":
        return cls(node=target.label, target=target.host, type=target.type, **fields)

    @property
    def state(self) -> str:
        if self.status == "failed":
            return "UNREACHABLE"
        if self.status == "skipped":
            return "skipped"
        return "ok" if self.ok else "PROBLEM"


@dataclass
class TlsVerifyResult:
    mode: str  # psk | x509 | mixed | unknown
    ca: Optional[str]  # the cluster CA's fingerprint
    ca_source: Optional[str]  # directory | majority | None
    nodes: List[NodeVerifyResult]
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mode != "mixed" and all(n.ok for n in self.nodes if n.status != "skipped")

    def exit_code(self) -> int:
        """0 all good; 1 no node could be checked; 3 some nodes (or the modes) are not right."""
        if self.ok:
            return ExitCode.OK
        if not [n for n in self.nodes if n.status == "checked"]:
            return ExitCode.FAILURE
        return ExitCode.PARTIAL

    def to_json(self) -> dict:
        return jsonable(self, extra=("ok",))


def expected_names(target: Target) -> List[str]:
    """What the certificate should name: the node's name and the address the cluster connects to."""
    from remotectl.transport.ssh import parse_destination

    host = target.host if target.node else parse_destination(target.host).host
    return [name for name in dict.fromkeys([target.node, host]) if name]


def verify_one(target: Target, runner: Runner, remote_dir: str) -> NodeVerifyResult:
    node = tls_facts.inspect(runner, remote_dir, read_files=True, follow_settings=True)
    row = NodeVerifyResult.of(target, tls_mode=node.settings.mode, settings=node.settings,
                              names=expected_names(target))
    for note in node.settings.notes:
        row.problems.append(Problem("tls-env-conflict", "warning", note))
    if node.settings.missing:
        row.problems.append(Problem("tls-settings-incomplete", "error",
                                    f"{', '.join(node.settings.missing)} not set: X.509 stays off on this node"))
    for role in model.ROLES:
        state = node.states[role]
        row.files.append(CheckedFile(role, state.path, state.exists, state.mode, state.owner, state.group,
                                     state.reader_can_read))
        if not state.exists:
            row.problems.append(Problem("tls-file-missing", "error", f"{state.path} ({role}) is missing"))
        elif node.contents[role] is None:
            row.problems.append(Problem("tls-file-unreadable", "error",
                                        f"{state.path} ({role}) cannot be read over SSH (not root there?)"))
        row.problems.extend(model.permission_problems(role, state))
    row.ca_pem = node.contents["ca"]
    row.check_inputs = (node.contents["ca"], node.contents["cert"], node.contents["key"])
    return row


def _finish(row: NodeVerifyResult, reference: Optional[bytes]) -> None:
    """The certificate checks, once the cluster CA is known; then ok."""
    ca, cert, key = row.check_inputs
    row.check_inputs = None  # the key's bytes are not kept beyond the check
    check = model.check_node_files(ca, cert, key, names=row.names, reference_ca_pem=reference)
    row.certificate, row.ca_fingerprint = check.cert, check.ca_fingerprint
    row.days_left = check.cert.days_left if check.cert else None
    row.problems.extend(check.problems)
    row.ok = not any(p.severity == "error" for p in row.problems)


def _reference(nodes: Sequence[NodeVerifyResult], local_ca: Optional[bytes]):
    """(CA PEM, fingerprint, source): the CA directory's, else the one most nodes hold."""
    if local_ca is not None:
        return local_ca, model.fingerprint_der(model.load_certificates(local_ca, "the CA certificate")[0]), \
            "directory"
    prints: Dict[str, bytes] = {}
    for n in nodes:
        if n.ca_pem is None:
            continue
        try:
            prints.setdefault(model.fingerprint_der(model.load_certificates(n.ca_pem, "CA")[0]), n.ca_pem)
        except model.CertificateError:
            continue
    counts = Counter()
    for n in nodes:
        for fp, pem in prints.items():
            if n.ca_pem == pem:
                counts[fp] += 1
    ranked = counts.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None, None, None
    return prints[ranked[0][0]], ranked[0][0], "majority"


def verify(targets: Sequence[Target], runner_factory: Callable[[str], Runner], remote_dir: str, *,
           local_ca: Optional[bytes] = None, on_done=None, workers: int = 16) -> TlsVerifyResult:
    from remotectl.transport.fanout import fan_out

    reporter = Reporter()
    active, runners = active_runners(targets, runner_factory)
    outcomes = fan_out(lambda t: verify_one(t, runners[t.host], remote_dir), active, workers=workers,
                       on_done=on_done)
    by_target = {id(o.item): o.value if o.ok else NodeVerifyResult.of(o.item, status="failed",
                                                                       error=without_prefix(o.error, o.item))
                 for o in outcomes}
    nodes = [NodeVerifyResult.of(t, ok=True, status="skipped", error=t.skip) if t.skip else by_target[id(t)]
             for t in targets]
    checked = [n for n in nodes if n.status == "checked"]
    reference, ca_print, source = _reference(checked, local_ca)
    if reference is None and checked:
        reporter.warning("no cluster CA to compare with (no CA directory here, no CA held by most nodes)",
                         code="tls-no-reference-ca")
    for n in checked:
        _finish(n, reference)
    for n in nodes:
        if n.status == "failed":
            reporter.error(n.error or "not reachable", node=n.node, code="node-unreachable")
    mode = model.cluster_mode([n.tls_mode for n in checked])
    if mode == "mixed":
        by_mode = {m: [n.node for n in checked if n.tls_mode == m] for m in ("x509", "psk")}
        reporter.error(f"nodes use different modes: X.509 on {', '.join(by_mode['x509'])}, PSK on "
                       f"{', '.join(by_mode['psk'])}; they cannot connect to each other", code="tls-mode-mixed")
    elif mode == "psk":
        reporter.info("every node still uses the PSK authkey: these files are not in use yet",
                      code="tls-not-enabled")
    return TlsVerifyResult(mode, ca_print, source, nodes, reporter.reports)
