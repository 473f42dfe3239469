"""A node's X.509 mode and public TLS files, read over SSH without its private key: for `doctor` (expiry, modes,
releases) and for `check` (the node's PCMK_ca_file when --ca is not given).

One round trip (the env files and the Pacemaker version); a second one in X.509 mode for the CA and certificate
files the PCMK_* settings name. Both files are public: nothing secret is read or kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Dict, List, Optional, Sequence

from remotectl.actions.targets import Target
from remotectl.pacemaker import authkey as keys
from remotectl.pacemaker import x509 as model
from remotectl.pacemaker.tls_diagnosis import NodeTls
from remotectl.reports import RemotectlError
from remotectl.transport import files
from remotectl.transport.base import Runner


@dataclass
class NodeCerts:
    settings: model.TlsSettings
    version: Optional[keys.Version]
    ca_pem: Optional[bytes] = None  # X.509 mode: the PCMK_ca_file's bytes (None: missing or unreadable)
    cert_pem: Optional[bytes] = None  # X.509 mode: the PCMK_cert_file's bytes

    @property
    def mode(self) -> str:
        return self.settings.mode


def read_node(runner: Runner, *, certificate: bool = True) -> NodeCerts:
    """The node's settings and version; in X.509 mode also its CA file (and, with `certificate`, its own)."""
    probe = files.host_probe(runner, read=list(keys.ENV_FILES), version_tools=keys.VERSION_TOOLS)
    texts = {p: probe.files[p].decode("utf-8", "replace") for p in keys.ENV_FILES if probe.files.get(p) is not None}
    node = NodeCerts(model.tls_settings(texts), keys.parse_version(probe.version_line or ""))
    if node.mode != "x509":
        return node
    wanted = [node.settings.ca_file] + ([node.settings.cert_file] if certificate else [])
    again = files.host_probe(runner, read=wanted)
    node.ca_pem = again.files.get(node.settings.ca_file)
    if certificate:
        node.cert_pem = again.files.get(node.settings.cert_file)
    return node


def judge(target: Target, node: NodeCerts, now: Optional[datetime] = None) -> NodeTls:
    """The doctor's record of one node: its mode and version, and its certificate's expiry."""
    fields: Dict[str, object] = {}
    if node.mode == "x509":
        if node.cert_pem is None:
            fields["error"] = f"its certificate {node.settings.cert_file} cannot be read over SSH (missing, or " \
                              "not root there): its expiry is not known"
        else:
            try:
                info = model.describe(model.load_certificates(node.cert_pem, "the certificate file")[0], now)
            except model.CertificateError as exc:
                fields["error"] = f"{node.settings.cert_file}: {exc}"
            else:
                expired = datetime.fromisoformat(info.not_after) <= (now or _now())
                fields.update(days_left=info.days_left, expired=expired, not_after=info.not_after)
    return NodeTls(target.label, target.type, node.mode, node.version, **fields)


def _now() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)


def gather(targets: Sequence[Target], runner_for: Callable[[str], Runner], *, on_done=None,
           workers: int = 16) -> tuple:
    """(NodeTls per node that answered, {node: error} for the others) over the targets that are not skipped."""
    from remotectl.transport.fanout import fan_out

    active = [t for t in targets if not t.skip]
    outcomes = fan_out(lambda t: judge(t, read_node(runner_for(t.host))), active, workers=workers,
                       on_done=on_done)
    found: List[NodeTls] = [o.value for o in outcomes if o.ok]
    failed = {o.item.label: o.error or "failed" for o in outcomes if not o.ok}
    return found, failed


def ca_from_node(runner: Runner) -> Optional[bytes]:
    """The CA the node trusts (its PCMK_ca_file), None when it is not in X.509 mode; RemotectlError when the file
    cannot be read."""
    node = read_node(runner, certificate=False)
    if node.mode != "x509":
        return None
    if node.ca_pem is None:
        raise RemotectlError(f"{runner.name}: PCMK_ca_file {node.settings.ca_file} cannot be read over SSH")
    return node.ca_pem
