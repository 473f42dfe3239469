"""The X.509 findings of ``remotectl doctor`` (Pacemaker 3.0): certificates that expire, nodes whose modes differ,
a PSK node facing an X.509 node, and Pacemaker releases that do not authenticate client certificates.

Pure rules over :class:`NodeTls` records (what :mod:`remotectl.actions.tls.node_certs` reads over SSH); the
findings are :class:`remotectl.pacemaker.diagnosis.Finding`, their check ids in ``diagnosis.TLS_CHECKS``.

Facts used (pacemaker3.md §3.4, lab-v2.md part B):
* The mode is all-or-nothing per process: an X.509 remoted offers no PSK, and a PSK cluster node facing an X.509
  remote (or the other way round) fails the handshake, gives up and fences the remote. Cluster nodes connect to
  remote and guest nodes; remote nodes never connect to each other.
* Certificates are loaded once, at daemon start: a renewed file needs a restart (`tls renew` does both).
* 3.0.2 and 3.0.3 (``pcmk__read_handshake_data``, lib/common/tls.c, since commit f875aaff05, 3.0.2-rc1) log a
  client certificate that fails verification ("NOT trusted") and then return OK: a client holding a certificate
  of ANY CA completes the handshake. Against a connected remote that is a takeover of the cluster's connection,
  and the remote gets fenced. Nothing on the node can turn that check back on; only the network can keep others
  away from the port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from remotectl.pacemaker.authkey import Version, version_text
from remotectl.pacemaker.diagnosis import Finding, _names, _sh
from remotectl.pacemaker.x509 import EXPIRY_WARNING_DAYS

# pcmk__read_handshake_data returns OK on GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR from 3.0.2-rc1 (f875aaff05);
# 3.0.3 is the newest release checked and still has it. A later release is not assumed to be fixed or broken.
CLIENT_UNVERIFIED = ((3, 0, 2), (3, 0, 3))
PEER_TYPES = ("remote", "guest")


@dataclass(frozen=True)
class NodeTls:
    """One node's X.509 facts as read over SSH. ``days_left``/``expired``: of the certificate its daemons load
    (None when not in X.509 mode or not readable)."""

    node: str
    type: Optional[str]
    mode: str  # psk | x509
    version: Optional[Version] = None
    days_left: Optional[int] = None
    expired: bool = False
    not_after: Optional[str] = None
    error: Optional[str] = None  # why the certificate could not be judged


def expiry_findings(nodes: Sequence[NodeTls]) -> List[Finding]:
    found: List[Finding] = []
    for n in nodes:
        if n.mode != "x509":
            continue
        fix = _sh("remotectl", "tls", "renew", n.node)
        when = (n.not_after or "")[:10]
        if n.expired:
            found.append(Finding("cert-expiry", "critical", n.node,
                                 f"the certificate of {n.node} expired on {when}: every new connection with it "
                                 "fails; renew it and restart its daemon", fix, "here"))
        elif n.days_left is not None and n.days_left <= EXPIRY_WARNING_DAYS:
            found.append(Finding("cert-expiry", "warning", n.node,
                                 f"the certificate of {n.node} expires in {n.days_left} day(s), on {when}", fix,
                                 "here"))
        elif n.error:
            found.append(Finding("cert-expiry", "warning", n.node, f"{n.node}: {n.error}"))
    return found


def mode_findings(nodes: Sequence[NodeTls]) -> List[Finding]:
    """One tls-mode-mixed summary, then a tls-mode-mismatch per remote/guest node that a cluster node of the
    other mode connects to."""
    by_mode: Dict[str, List[str]] = {}
    for n in nodes:
        by_mode.setdefault(n.mode, []).append(n.node)
    if len(by_mode) < 2:
        return []
    # no fix command: the whole cluster must switch together (a plan under maintenance), which needs a person
    found = [Finding("tls-mode-mixed", "warning", None,
                     f"X.509 on {_names(by_mode.get('x509', []))}, PSK on {_names(by_mode.get('psk', []))}: all "
                     "nodes must switch together (needs a person; `remotectl tls verify --all` shows each node)")]
    cluster = [n for n in nodes if n.type == "cluster"]
    for peer in (n for n in nodes if n.type in PEER_TYPES):
        other = [c.node for c in cluster if c.mode != peer.mode]
        if other:
            found.append(Finding("tls-mode-mismatch", "critical", peer.node,
                                 f"{peer.node} is set to {_label(peer.mode)} but {_names(other)} to "
                                 f"{_label('psk' if peer.mode == 'x509' else 'x509')}: once the daemons run with "
                                 f"these settings the handshake fails and the cluster fences {peer.node} (needs a "
                                 "person)"))
    return found


def client_unverified(version: Optional[Version]) -> bool:
    return version is not None and CLIENT_UNVERIFIED[0] <= version <= CLIENT_UNVERIFIED[1]


def client_auth_findings(nodes: Sequence[NodeTls]) -> List[Finding]:
    """Remote and guest nodes whose remoted (the server) runs 3.0.2/3.0.3 in X.509 mode. A person must act: only
    a firewall that admits the cluster nodes alone protects the port until a fixed release."""
    found: List[Finding] = []
    for n in nodes:
        if n.mode == "x509" and n.type in PEER_TYPES and client_unverified(n.version):
            found.append(Finding("x509-client-unverified", "warning", n.node,
                                 f"Pacemaker {version_text(n.version)} on {n.node} accepts a client certificate "
                                 "that fails verification (logged as NOT trusted): a client with a certificate "
                                 "of any CA takes the cluster's connection over and the node gets fenced; allow "
                                 "its port only from the cluster nodes (needs a person)"))
    return found


def tls_findings(nodes: Sequence[NodeTls]) -> List[Finding]:
    return expiry_findings(nodes) + mode_findings(nodes) + client_auth_findings(nodes)


def _label(mode: str) -> str:
    return "X.509" if mode == "x509" else "PSK"
