"""`tls renew`: a new certificate for each node whose certificate in the CA directory expires within the window,
pushed with `tls push`'s atomic writes, then (with --restart) the daemon restarts that load it.

Same key, new certificate. Why: a renewal changes one file on the node (cert.pem); key.pem stays byte for byte,
so at every moment the node holds a key and a certificate that belong together, even when a daemon restarts (a
reboot, a fencing) half-way through the push: with a new key, a restart between the two writes would load a pair
that does not match, and the daemon would not start. The private key also never crosses the network again. An
operator who wants a new key (a suspected leak) issues one with `tls issue --force NODE` and pushes it.

The restarts: Pacemaker loads certificates at daemon start (pacemaker3.md §3.4), so a node whose files changed
keeps the old certificate until its daemon restarts. The old and the new certificate come from the same CA, so both
ends accept either while the restarts go on; they run through the procedure of `authkey rotate --restart`
(:func:`remotectl.actions.authkey.restart.run_restarts`: maintenance, cluster nodes one at a time, then remoted),
which keeps every node and resource where it is. Nodes in PSK mode (files prepared, X.509 not on) need none. Their
journal (kind ``tls-renew``) names the nodes to restart before the first restart: a rerun of a renewal cut short
finds the certificates current and the files unchanged, so only the journal knows which daemons still hold the old
certificate and that maintenance must be put back (`--resume`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.actions.targets import Target
from remotectl.actions.tls.local import IssueRequest, node_paths, read_ca
from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import x509 as model
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, Reporter, per_node_exit
from remotectl.transport import localfiles

RESTART_REASON = "its certificate was renewed: Pacemaker loads certificates at daemon start"
JOURNAL_KIND = "tls-renew"


@dataclass
class RenewedNode:
    node: str
    type: Optional[str]
    ok: bool
    status: str  # renewed | would-renew | current | failed | skipped
    days_left: Optional[int] = None  # of the certificate before the renewal
    not_after: Optional[str] = None  # of the certificate it has now (the new one when renewed)
    fingerprint: Optional[str] = None
    push: Optional[str] = None  # written | unchanged | failed | skipped | None (not pushed)
    tls_mode: Optional[str] = None  # psk | x509 on the node (from the push)
    restart: Optional[str] = None  # done | failed | skipped | needed | None (not needed)
    message: Optional[str] = None
    error: Optional[str] = None


@dataclass
class RenewResult:
    directory: str
    within: int
    days: int
    dry_run: bool
    nodes: List[RenewedNode]
    restarts: List = field(default_factory=list)  # authkey.restart.RestartOutcome rows, with --restart
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def restart_needed(self) -> List[str]:
        """Nodes whose daemons still run with the old certificate."""
        return [n.node for n in self.nodes if n.restart in ("needed", "failed", "skipped")]

    def exit_code(self) -> int:
        code = per_node_exit(self.nodes)
        if code == ExitCode.OK and any(n.restart in ("failed", "skipped") for n in self.nodes):
            return ExitCode.PARTIAL
        return code

    def to_json(self) -> dict:
        return jsonable(self, extra=("restart_needed",))


def due(info: Optional[model.CertInfo], within: int, now: datetime) -> bool:
    """Renew when the certificate has expired or ends within `within` days (0: only expired ones)."""
    if info is None:
        return False
    end = datetime.fromisoformat(info.not_after)
    return (end - now).total_seconds() <= within * 86400


def _current(directory: str, node: str, now: datetime):
    cert_path, key_path = node_paths(directory, node)
    if not os.path.lexists(cert_path) or not os.path.lexists(key_path):
        raise RemotectlError(f"no certificate or key for {node} in {directory}: run `remotectl tls issue {node}`")
    cert = localfiles.read_secret_file(cert_path, model.MAX_PEM_BYTES, what="certificate")
    key = localfiles.read_secret_file(key_path, model.MAX_PEM_BYTES, what="key")
    return cert_path, cert, key, model.describe(model.load_certificates(cert, f"{cert_path}")[0], now)


def reissue(requests: Sequence[IssueRequest], directory: str, *, days: int, within: int, dry_run: bool,
            now: Optional[datetime] = None) -> RenewResult:
    """The local half: select and re-certify (same key), writing only NODE.pem (atomically, 0644)."""
    directory = os.path.abspath(directory)
    try:
        model.check_days(days, model.MAX_DAYS)
    except model.CertificateError as exc:
        raise RemotectlError(str(exc), exit_code=ExitCode.USAGE) from None
    now = now or datetime.now(timezone.utc)
    ca_cert, ca_key = read_ca(directory)
    rows = []
    for request in requests:
        row = RenewedNode(request.node, request.type, ok=False, status="failed")
        rows.append(row)
        if request.skip:
            row.ok, row.status, row.message = True, "skipped", request.skip
            continue
        try:
            cert_path, cert, key, info = _current(directory, request.node, now)
            row.days_left, row.not_after, row.fingerprint = info.days_left, info.not_after, info.fingerprint
            if not due(info, within, now):
                row.ok, row.status = True, "current"
                continue
            if dry_run:
                row.ok, row.status = True, "would-renew"
                continue
            dns, ips = model.subject_alt_names(request.node, request.address)
            _, new_cert, notes = model.new_node_certificate(ca_key, ca_cert, request.node, dns, ips, days,
                                                            now=now, key_pem=key)
            localfiles.write_secret_file(cert_path, new_cert, mode=model.LOCAL_CERT_MODE, overwrite=True)
            fresh = model.describe(model.load_certificates(new_cert, "the new certificate")[0], now)
            row.not_after, row.fingerprint = fresh.not_after, fresh.fingerprint
            row.ok, row.status, row.message = True, "renewed", "; ".join(notes) or None
        except model.CertificateError as exc:
            row.error = str(exc)
        except RemotectlError as exc:
            row.error = exc.message
    return RenewResult(directory, within, days, dry_run, rows)


def restart_steps(result: RenewResult) -> list:
    """A restart per node in X.509 mode whose files the push changed."""
    from remotectl.pacemaker.authkey import CLUSTER_RESTART, REMOTE_RESTART, RestartStep

    steps = []
    for n in sorted(result.nodes, key=lambda n: n.type != "cluster"):
        if n.restart == "needed":
            kind = n.type if n.type in ("cluster", "guest") else "remote"
            steps.append(RestartStep(n.node, kind, CLUSTER_RESTART if kind == "cluster" else REMOTE_RESTART, True,
                                     RESTART_REASON))
    return steps


def journal_for(labels: Sequence[str], resume: bool):
    """The renewal's restart journal (loaded with --resume); refuses when an interrupted restart procedure of these
    nodes, this one's, `authkey rotate --restart`'s or `tls enable/disable`'s, must be finished first."""
    from remotectl.actions.authkey.restart import Journal

    for kind, command in (("rotate-restart", "authkey rotate --restart"), ("tls-switch", "tls enable/disable")):
        if Journal(labels, kind=kind).load():
            raise RefusedError(f"an interrupted `{command}` left the cluster in maintenance; finish it with its "
                               "--resume first")
    journal = Journal(labels, kind=JOURNAL_KIND)
    loaded = journal.load()
    if loaded and not resume:
        raise RefusedError("an interrupted `tls renew --restart` left daemons on the old certificate (and maybe the "
                           "cluster in maintenance); finish it with `tls renew --restart --resume`")
    if resume and not loaded:
        raise RefusedError("nothing to resume: no interrupted `tls renew --restart` of these nodes is recorded here")
    return journal


def push_and_restart(result: RenewResult, targets: Sequence[Target], runner_factory: Callable[[str], object],
                     remote_dir: str, *, restarter=None, journal=None, on_done=None) -> RenewResult:
    """Push every node's files (unchanged ones are left alone, so a rerun finishes an interrupted push), then
    restart, with `restarter` (authkey.restart.Restarter), the X.509 nodes whose files changed, recorded in
    `journal` (from :func:`journal_for`); one loaded from an interrupted run adds the nodes it had still to restart."""
    from remotectl.actions.tls.push import push

    reporter = Reporter(result.reports)
    rows = {n.node: n for n in result.nodes}
    wanted = [t for t in targets if (t.node or t.label) in rows and rows[t.node or t.label].status in
              ("renewed", "current")]
    if not wanted:
        return result
    pushed = push(wanted, runner_factory, result.directory, remote_dir, on_done=on_done)
    reporter.reports.extend(pushed.reports)
    for p in pushed.nodes:
        row = rows[p.node]
        row.push, row.tls_mode = p.status, p.tls_mode
        if not p.ok:
            row.ok, row.error = False, p.error
            reporter.error(f"push failed: {p.error}", node=p.node, code="tls-push-failed")
        elif (p.status == "written" and p.tls_mode == "x509") or (
                journal is not None and p.node in (journal.extra.get("restart") or [])):
            row.restart = "needed"
    steps = restart_steps(result)
    if not steps:
        return result
    if restarter is None:
        reporter.warning(f"{', '.join(s.node for s in steps)} still use the old certificate until "
                         f"{'its' if len(steps) == 1 else 'their'} daemon restarts (Pacemaker loads certificates "
                         "at start): restart pacemaker (cluster nodes, one at a time) and pacemaker_remote under "
                         "maintenance before the old one expires; a second `tls renew` finds nothing to renew and "
                         "restarts nothing", code="tls-restart-needed")
        return result
    from remotectl.actions.authkey.restart import run_restarts

    by_label = {t.node or t.label: t for t in wanted}
    if journal is not None:  # before the first change to the cluster: a run cut short from here on is resumable
        journal.fingerprint = journal.fingerprint or pushed.ca or "unknown"
        journal.extra["restart"] = sorted(set(journal.extra.get("restart") or []) | {s.node for s in steps})
        journal.save()
    result.restarts = run_restarts(steps, by_label, restarter, reporter, journal)
    outcome: Dict[str, str] = {r.node: r.status for r in result.restarts if r.kind in ("cluster", "remote", "guest")}
    for step in steps:
        rows[step.node].restart = outcome.get(step.node, "failed")
    return result
