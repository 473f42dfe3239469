"""The findings of ``remotectl doctor``: what is wrong with the remote and guest nodes, why, and what fixes it.

Pure rules over facts other modules gather: the CIB (through :class:`remotectl.pacemaker.constraints.CibIndex`
and its inventory), crm_mon's node states, the safe-probe matrix, each node's key file facts, env-file settings,
Pacemaker versions and the pacemaker-remoted service state. The live gathering is
:mod:`remotectl.actions.doctor`; the checks that need only a CIB (:data:`CIB_CHECKS`) also run on a support dump.

Every :class:`Finding` has a stable ``check`` id (:data:`CHECKS`), a severity, the node it is about, one line of
evidence, and a ``fix``: a command line (for ``sh``) and where to run it (``fix_on``: ``here`` for remotectl,
``cluster`` for any cluster node, else a node name), or None when it needs a person (the message says what).
When a node is offline, :func:`mark_causes` marks the finding that explains it.
"""

from __future__ import annotations

import dataclasses
import shlex
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from remotectl.jsonable import json_field
from remotectl.pacemaker import tools, values
from remotectl.pacemaker.authkey import (KEY_GROUP, KEY_MODE, KEY_OWNER, LOCATION_VARIABLE, Problem, Version,
                                         key_size_error)
from remotectl.pacemaker.constraints import CibIndex, connection_misuse
from remotectl.pacemaker.lifecycle import version_compatibility

Element = ElementTree.Element

SEVERITIES = ("critical", "warning", "info")
CHECKS: Dict[str, str] = {
    "key-mismatch": "a node's key differs from the others', or a remote's pacemaker-remoted answers the safe probe "
                    "of a cluster node with another key",
    "port-unreachable": "the remote port cannot be reached from a cluster node (refused, timeout, no route, "
                        "unresolvable), or no TLS answer comes",
    "service-down": "pacemaker-remoted is not running, or not listening on the configured port, on the host",
    "key-unreadable": "the key file is missing, empty, shorter than 16 bytes, not readable by hacluster on a "
                      "cluster node, or has loose permissions",
    "no-reconnect-interval": "a remote connection resource has no reconnect_interval (a transient failure then "
                             "gets the node fenced)",
    "failed-connection": "failed operations and fail counts of a connection resource that remain",
    "stale-node": "a node entry or status left for a remote or guest node without a connection resource",
    "connection-misuse": "a connection resource in a group, order or colocation constraint",
    "config-drift": "PCMK_remote_port, PCMK_authkey_location or PCMK_tls_priorities differ between nodes (or "
                    "from the CIB's port)",
    "version-skew": "Pacemaker versions across cluster and remote nodes that do not work together well",
    "cert-expiry": "a node's certificate (the PCMK_cert_file its daemons load) has expired (critical) or expires "
                   "within 30 days (warning)",
    "tls-mode-mixed": "some nodes use X.509 (PCMK_ca_file, PCMK_cert_file, PCMK_key_file set) and others the PSK "
                      "authkey",
    "tls-mode-mismatch": "a remote or guest node uses another mode (PSK or X.509) than a cluster node that "
                         "connects to it: the handshake fails and the cluster fences the node",
    "x509-client-unverified": "Pacemaker 3.0.2 or 3.0.3 in X.509 mode accepts a client certificate that fails "
                              "verification (any CA): whoever reaches the port can take the connection over",
    "node-offline": "a remote or guest node is offline and no other check explains why",
}
TLS_CHECKS = ("cert-expiry", "tls-mode-mixed", "tls-mode-mismatch", "x509-client-unverified")  # tls_diagnosis
CIB_CHECKS = ("no-reconnect-interval", "connection-misuse", "stale-node", "failed-connection")
LIVE_CHECKS = ("key-mismatch", "port-unreachable", "service-down", "key-unreadable", "config-drift",
               "version-skew") + TLS_CHECKS
PEER_TYPES = ("remote", "guest", "bundle")
RECONNECT_FIX_VALUE = "60s"
# authkey verify problem codes -> doctor check
_KEY_FILE_CODES = ("missing", "unreadable", "empty", "corosync-fallback", "location-fallback", "world-readable",
                   "writable-by-others", "unreadable-by-hacluster", "group-readable")
_PERMISSION_CODES = ("world-readable", "writable-by-others", "unreadable-by-hacluster", "group-readable")
_TCP_FAILURES = ("refused", "timeout", "unreachable", "unresolved")


@dataclass(frozen=True)
class Repair:
    """A fix ``doctor --fix`` may apply: safe and reversible, as argv lists run on ``on`` (``cluster``: through the
    cluster runner; else that node over SSH), one after the other. Only findings whose cause is known to be gone get
    one (see :func:`failure_findings`, :func:`key_file_findings`, :func:`keep_safe_repairs`)."""

    on: str
    argvs: Tuple[Tuple[str, ...], ...]

    @property
    def command(self) -> str:
        return " && ".join(_sh(*argv) for argv in self.argvs)


@dataclass
class Finding:
    """One problem. Fields in JSON order."""

    check: str
    severity: str  # critical | warning | info
    node: Optional[str]
    message: str
    fix: Optional[str] = None  # a command line for sh, or None when it needs a person
    fix_on: Optional[str] = None  # here | cluster | a node name
    cause: bool = False  # explains why `node` is offline
    repair: Optional[Repair] = json_field(omit=True, default=None)  # what --fix may apply; its command is `fix`


def _repairable(check: str, severity: str, node: Optional[str], message: str, repair: Repair) -> Finding:
    return Finding(check, severity, node, message, repair.command, repair.on, repair=repair)


def _sh(*argv: str) -> str:
    return shlex.join(argv)


def _names(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


# --- from the CIB ----------------------------------------------------------------------------------------------------


def no_reconnect_interval(index: CibIndex) -> List[Finding]:
    found = []
    for connection in index.inventory.connections():
        if connection.kind != "remote" or not connection.is_node or connection.reconnect_ms:
            continue
        found.append(Finding(
            "no-reconnect-interval", "warning", connection.node,
            f"connection resource {connection.id} has no reconnect_interval: after a transient connection failure "
            "the cluster fences the node instead of retrying",
            _sh("crm_resource", "--resource", connection.id, "--set-parameter", "reconnect_interval",
                "--parameter-value", RECONNECT_FIX_VALUE), "cluster"))
    return found


def misuse_findings(index: CibIndex) -> List[Finding]:
    found = []
    for misuse in connection_misuse(index):
        if misuse.where == "group":
            found.append(Finding("connection-misuse", "critical", misuse.node,
                                 misuse.message + "; move it out of the group (needs a person)"))
        else:
            found.append(Finding("connection-misuse", "warning", misuse.node, misuse.message,
                                 _sh("remotectl", "constraint", "remove", misuse.element_id), "here"))
    return found


def stale_nodes(index: CibIndex) -> List[Finding]:
    """Configured remote/guest node entries without a connection, and status left for nodes no longer configured."""
    found = []
    configured = set(index.inventory.names())
    for node in index.inventory.nodes:
        if node.type in ("remote", "guest") and node.connection is None:
            found.append(_repairable("stale-node", "warning", node.name,
                                     f"node entry {node.name} (type remote) is left in the CIB without a "
                                     "connection resource or remote-node meta attribute", _forget(node.name)))
    seen: Set[str] = set()
    for state in index.root.findall("status/node_state"):  # the CIB's status section
        name = state.get("uname") or state.get("id") or ""
        if not values.is_true(state.get("remote_node")) or not name or name in configured or name in seen:
            continue
        seen.add(name)
        found.append(_repairable("stale-node", "warning", name,
                                 f"status section still holds node {name}, which no connection resource or "
                                 "remote-node meta attribute defines any more", _forget(name)))
    return found


def _forget(name: str) -> Repair:
    return Repair("cluster", (tuple(tools.node_forget(name)),))


@dataclass(frozen=True)
class ConnectionFailure:
    """What the status section records against one connection resource on one cluster node."""

    resource: str
    node: str  # the remote/guest node of the connection
    on: str  # the cluster node the failures are recorded on
    fail_count: int
    operation: Optional[str] = None  # of the last failure
    rc: Optional[int] = None
    exit_reason: Optional[str] = None

    def describe(self) -> str:
        count = "INFINITY" if self.fail_count >= values.INFINITY else str(self.fail_count)
        text = f"fail count {count} of {self.resource} on {self.on}"
        if self.operation:
            text += f" (last failure: {self.operation} rc={self.rc}"
            text += f" '{self.exit_reason}')" if self.exit_reason else ")"
        return text


def _failed_op(op: Element) -> bool:
    """An operation whose result is not the one the transition expected (or that did not complete). A probe that
    finds the resource running (rc 0 or 8 where 7 was expected) is recorded as a last failure, but Pacemaker takes
    it as "active" and crm_mon lists no failure: neither does doctor."""
    key = (op.get("transition-key") or "").split(":")
    expected = values.scan_ll(key[2]) if len(key) >= 3 else 0
    rc = values.scan_ll(op.get("rc-code"))
    status = values.scan_ll(op.get("op-status")) or 0
    probe = op.get("operation") == "monitor" and (values.scan_ll(op.get("interval")) or 0) == 0
    if probe and status == 0 and rc in (0, 8):
        return False
    return status not in (0, -1) or (rc is not None and rc != (expected or 0))


def connection_failures(index: CibIndex) -> List[ConnectionFailure]:
    """Fail counts (``fail-count-R`` and ``fail-count-R#op_interval``) and last failures of every connection
    resource, per cluster node, from the CIB's status section."""
    connections = {c.id: c.node for c in index.inventory.connections()}
    out: List[ConnectionFailure] = []
    for state in index.root.findall("status/node_state"):  # the CIB's status section
        if values.is_true(state.get("remote_node")):
            continue
        on = state.get("uname") or state.get("id") or "?"
        counts: Dict[str, int] = {}
        for pair in state.iterfind("transient_attributes/instance_attributes/nvpair"):
            name = pair.get("name") or ""
            if not name.startswith("fail-count-"):
                continue
            rid = name[len("fail-count-"):].split("#", 1)[0]
            if rid in connections:
                counts[rid] = values.add_scores(counts.get(rid, 0), values.char2score(pair.get("value")))
        last: Dict[str, Element] = {}
        for entry in state.iterfind("lrm/lrm_resources/lrm_resource"):
            rid = entry.get("id") or ""
            if rid not in connections:
                continue
            for op in entry.findall("lrm_rsc_op"):
                if (op.get("id") or "").endswith("_last_failure_0") and _failed_op(op):
                    last[rid] = op
        for rid in sorted(set(counts) | set(last), key=list(connections).index):
            op = last.get(rid)
            count = counts.get(rid, 0)
            if count <= 0 and op is None:
                continue
            out.append(ConnectionFailure(
                rid, connections[rid], on, max(count, 0),
                operation=(op.get("operation_key") or op.get("operation")) if op is not None else None,
                rc=values.scan_ll(op.get("rc-code")) if op is not None else None,
                exit_reason=(op.get("exit-reason") or None) if op is not None else None))
    return out


def failure_findings(failures: Sequence[ConnectionFailure], *, live: bool, healthy: Set[str],
                     offline: Set[str], reachable: Set[str] = frozenset()) -> List[Finding]:
    """``healthy``: nodes that are online with no other finding (the cause is gone, so cleaning up is the fix);
    ``offline``: offline nodes (the failure may be why, or the symptom of another finding); ``reachable``: nodes
    every cluster node reaches with the matching key and no other finding (offline ones among them are kept out by
    the failure alone: the cleanup is safe too)."""
    found = []
    for failure in failures:
        cleanup = Repair("cluster", (tuple(tools.resource_cleanup(failure.resource, failure.on)),))
        fix = cleanup.command
        if not live:
            found.append(Finding("failed-connection", "warning", failure.node,
                                 failure.describe() + "; clean it up once the cause is gone (a CIB file cannot "
                                 "tell whether it is)", fix, "cluster"))
        elif failure.node in healthy:  # the cause is gone: the cleanup is safe
            found.append(_repairable("failed-connection", "warning", failure.node,
                                     failure.describe() + f" remains although {failure.node} is online and its "
                                     "checks pass now", cleanup))
        elif failure.node in offline and failure.node in reachable:
            found.append(_repairable("failed-connection", "critical", failure.node,
                                     failure.describe() + f"; {failure.node} is offline although every cluster "
                                     "node reaches it with the matching key: the failure keeps it out", cleanup))
        elif failure.node in offline:
            found.append(Finding("failed-connection", "critical", failure.node,
                                 failure.describe() + f"; {failure.node} is offline: clean it up once the cause "
                                 "is fixed", fix, "cluster"))
        else:
            found.append(Finding("failed-connection", "info", failure.node,
                                 failure.describe() + "; clean it up once the other findings for "
                                 f"{failure.node} are fixed", fix, "cluster"))
    return found


# --- from the live nodes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeCell:
    """One (cluster node, target) pair of the safe-probe matrix."""

    source: str
    target: str
    endpoint: str  # address:port
    tcp: Optional[str]
    verdict: str


def _key_groups(fingerprints: Mapping[str, Optional[str]]):
    """(fingerprint -> nodes, those groups largest first, the fingerprint most nodes hold or None on a tie)."""
    groups: Dict[str, List[str]] = {}
    for node, fp in fingerprints.items():
        if fp:
            groups.setdefault(fp, []).append(node)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    majority = ranked[0][0] if ranked and (len(ranked) == 1 or len(ranked[0][1]) > len(ranked[1][1])) else None
    return groups, ranked, majority


def keep_safe_repairs(findings: List[Finding], fingerprints: Mapping[str, Optional[str]]) -> List[Finding]:
    """An owner/mode fix is safe only on a key with the right bytes: the fingerprint most nodes hold, and no
    key-mismatch named there. Otherwise the printed command stays, and --fix skips it."""
    majority = _key_groups(fingerprints)[2]
    odd = {f.node for f in findings if f.check == "key-mismatch"}
    out = []
    for finding in findings:
        if finding.check == "key-unreadable" and finding.repair is not None and (
                majority is None or fingerprints.get(finding.node or "") != majority or finding.node in odd):
            finding = dataclasses.replace(finding, repair=None)
        out.append(finding)
    return out


def key_findings(fingerprints: Mapping[str, Optional[str]], cells: Sequence[ProbeCell]) -> List[Finding]:
    """``fingerprints``: node -> the fingerprint of the key its Pacemaker loads (nodes read over SSH). A node whose
    key is not the majority's holds the odd key; a remote whose file matches but whose daemon answers the probe with
    another key holds a stale key in memory; one not read over SSH is judged by the probes alone."""
    found: List[Finding] = []
    groups, ranked, majority = _key_groups(fingerprints)
    mismatched: Dict[str, List[str]] = {}
    for cell in cells:
        if cell.verdict == "mismatch":
            mismatched.setdefault(cell.target, []).append(cell.source)
    odd: Set[str] = set()
    fix = _sh("remotectl", "authkey", "rotate", "--restart")
    if majority is None and len(groups) > 1:
        found.append(Finding("key-mismatch", "critical", None,
                             "no key is held by a majority of nodes: " + "; ".join(
                                 f"{fp[:19]}… on {_names(nodes)}" for fp, nodes in ranked), fix, "here"))
        odd = set(fingerprints)
    for fp, nodes in ranked:
        if majority is None or fp == majority:
            continue
        for node in nodes:
            odd.add(node)
            probes = f"; the probe from {_names(mismatched[node])} says mismatch" if node in mismatched else ""
            found.append(Finding("key-mismatch", "critical", node,
                                 f"{node} holds the odd key {fp[:19]}…, {_names(groups[majority])} hold "
                                 f"{majority[:19]}…{probes}", fix, "here"))
    for target, sources in mismatched.items():
        if target in odd:
            continue
        odd_sources = [s for s in sources if s in odd]
        if odd_sources and len(odd_sources) == len(sources):
            continue  # explained by the cluster node's own odd key
        if fingerprints.get(target) and fingerprints[target] == majority:
            found.append(Finding("key-mismatch", "critical", target,
                                 f"the key file on {target} matches, but its pacemaker-remoted answers the probe "
                                 f"from {_names(sources)} with another key: a stale key in memory",
                                 _sh("systemctl", "restart", "pacemaker_remote"), target))
        else:
            found.append(Finding("key-mismatch", "critical", target,
                                 f"the probe from {_names(sources)} says {target} holds another key (its key file "
                                 "could not be read over SSH)", fix, "here"))
    return found


def port_findings(cells: Sequence[ProbeCell], service_down: Set[str]) -> List[Finding]:
    """TCP failures and wrong answers per target, naming the cluster nodes they happen from."""
    found: List[Finding] = []
    by_target: Dict[str, List[ProbeCell]] = {}
    for cell in cells:
        by_target.setdefault(cell.target, []).append(cell)
    for target, row in by_target.items():
        if target in service_down:
            continue  # the service finding explains refused connections
        failing = [c for c in row if c.tcp in _TCP_FAILURES or c.verdict == "timeout"]
        if failing:
            fine = [c.source for c in row if c not in failing and c.tcp == "open"]
            what = "; ".join(f"{c.tcp if c.tcp in _TCP_FAILURES else 'no TLS answer'} from {c.source}"
                             for c in failing)
            tail = f" (open from {_names(fine)})" if fine else ""
            found.append(Finding("port-unreachable", "critical", target,
                                 f"{failing[0].endpoint}: {what}{tail}; allow TCP to it from "
                                 f"{_names(c.source for c in failing)} in {target}'s firewall, or fix routing/DNS "
                                 "(needs a person)"))
        wrong = [c for c in row if c.verdict in ("not-tls", "tls-not-psk", "tls12-only", "bad-server-finished")]
        if wrong:
            cell = wrong[0]
            check, severity = ("config-drift", "warning") if cell.verdict in ("tls12-only", "tls-not-psk") else \
                ("service-down", "critical")
            found.append(Finding(check, severity, target,
                                 f"{cell.endpoint} answers {cell.source}'s probe with verdict {cell.verdict} "
                                 "(not a pacemaker-remoted with a TLS 1.3 PSK key)"))
    return found


@dataclass(frozen=True)
class ServiceState:
    """What the host says about its pacemaker-remoted (transport.hostops.HostState, reduced)."""

    node: str
    port: int
    unit: Optional[str]
    active: Optional[str]
    listening: Optional[bool]


def service_findings(states: Sequence[ServiceState]) -> List[Finding]:
    found = []
    for state in states:
        if state.unit is None:
            found.append(Finding("service-down", "critical", state.node,
                                 f"no pacemaker_remote service on {state.node}: install pacemaker-remote "
                                 "(needs a person)"))
        elif state.active != "active":
            found.append(Finding("service-down", "critical", state.node,
                                 f"{state.unit}.service is {state.active or 'not active'} on {state.node}",
                                 _sh("systemctl", "start", state.unit), state.node))
        elif state.listening is False:
            found.append(Finding("service-down", "critical", state.node,
                                 f"{state.unit}.service runs on {state.node} but nothing listens on port "
                                 f"{state.port}", _sh("systemctl", "restart", state.unit), state.node))
    return found


@dataclass(frozen=True)
class KeyFile:
    """One node's key as authkey verify saw it."""

    node: str
    type: Optional[str]
    path: Optional[str]
    size: Optional[int]
    problems: Tuple[Problem, ...] = ()


def key_file_findings(files: Sequence[KeyFile]) -> List[Finding]:
    found = []
    for key in files:
        problems = [p for p in key.problems if p.code in _KEY_FILE_CODES
                    and not (p.code == "unreadable-by-hacluster" and key.type != "cluster")]
        size_error = key_size_error(key.size) if key.size else None
        if size_error:
            problems.append(Problem("short", "error", f"{key.path}: {size_error}"))
        if not problems:
            continue
        severity = "critical" if any(p.severity == "error" for p in problems) else "warning"
        message = "; ".join(p.message for p in problems)
        if key.path and all(p.code in _PERMISSION_CODES for p in problems):  # the file is there, only its mode
            found.append(_repairable("key-unreadable", severity, key.node, message, Repair(key.node, (
                tuple(tools.file_owner(f"{KEY_OWNER}:{KEY_GROUP}", key.path)),
                tuple(tools.file_mode(KEY_MODE, key.path))))))
        else:
            found.append(Finding("key-unreadable", severity, key.node,
                                 message + " (install the cluster's key there: needs a person)"))
    for key in files:
        for problem in key.problems:
            if problem.code == "env-conflict":  # X.509 mode: the tls_diagnosis checks
                found.append(Finding("config-drift", "warning", key.node, problem.message))
    return found


def drift_findings(settings: Mapping[str, Mapping[str, str]], types: Mapping[str, Optional[str]],
                   ports: Mapping[str, Optional[int]]) -> List[Finding]:
    """``settings``: node -> authkey.remote_settings(); ``ports``: remote/guest node -> the port the CIB connects to."""
    found: List[Finding] = []
    for name in (LOCATION_VARIABLE, "PCMK_tls_priorities"):  # the mode: tls_diagnosis.mode_findings
        groups: Dict[str, List[str]] = {}
        for node, values_ in settings.items():
            groups.setdefault(values_[name], []).append(node)
        if len(groups) < 2:
            continue
        ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
        for value, nodes in ranked[1:]:
            for node in nodes:
                found.append(Finding("config-drift", "warning", node,
                                     f"{name} is {value!r} on {node} but {ranked[0][0]!r} on "
                                     f"{_names(ranked[0][1])}"))
    for node, values_ in settings.items():
        port = ports.get(node)
        if types.get(node) in ("remote", "guest") and port and values_["PCMK_remote_port"] != str(port):
            found.append(Finding("config-drift", "critical", node,
                                 f"pacemaker-remoted on {node} listens on PCMK_remote_port="
                                 f"{values_['PCMK_remote_port']}, but the CIB connects to port {port}"))
    return found


def version_findings(versions: Mapping[str, Optional[Version]], types: Mapping[str, Optional[str]]) -> List[Finding]:
    """Cluster nodes should run one release; each remote/guest node is judged against the oldest cluster node by
    the one version rule (:func:`remotectl.pacemaker.lifecycle.version_compatibility`)."""
    found: List[Finding] = []
    cluster = {n: v for n, v in versions.items() if v is not None and types.get(n) == "cluster"}
    releases = sorted({v[:2] for v in cluster.values()})
    if len(releases) > 1:
        found.append(Finding("version-skew", "warning", None,
                             "cluster nodes run different Pacemaker releases: " + ", ".join(
                                 f"{n} {'.'.join(map(str, v))}" for n, v in sorted(cluster.items()))
                             + " (finish the rolling upgrade)"))
    if not cluster:
        return found
    oldest = min(cluster.values())
    for node, version in versions.items():
        if version is None or types.get(node) not in ("remote", "guest"):
            continue
        verdict = version_compatibility(oldest, version)
        if verdict is not None:
            found.append(Finding("version-skew", verdict[0], node, f"{node}: {verdict[1]}"))
    return found


# --- causes ----------------------------------------------------------------------------------------------------------

_CAUSE_ORDER = ("service-down", "key-mismatch", "port-unreachable", "config-drift", "failed-connection")


def mark_causes(findings: List[Finding], offline: Sequence[str], cluster_nodes: Sequence[str],
                resources: Optional[Mapping[str, Optional[str]]] = None) -> List[Finding]:
    """Mark, for each offline remote/guest node, the finding that explains it (its own, in :data:`_CAUSE_ORDER`,
    else a cluster node's odd or unreadable key); add ``node-offline`` when none does, with a refresh of its
    resource (``resources``: node -> connection or container) as the fix: the cluster stopped reconnecting (after
    a clean shutdown of pacemaker-remoted, for one) and re-reads the node's state."""
    out = list(findings)
    for node in offline:
        chosen = None
        for check in _CAUSE_ORDER:
            chosen = next((f for f in out if f.node == node and f.check == check and f.severity != "info"), None)
            if chosen is not None:
                break
        if chosen is None:
            chosen = next((f for f in out if f.node in cluster_nodes and f.check in ("key-mismatch", "key-unreadable")
                           and f.severity == "critical"), None)
            if chosen is not None:
                chosen.message += f" (why {node} is offline)"
        if chosen is not None:
            chosen.cause = True
        else:
            resource = (resources or {}).get(node)
            out.append(Finding("node-offline", "critical", node,
                               f"{node} is offline although its checks pass: the cluster is not reconnecting "
                               "(see its logs); a refresh makes it try again",
                               _sh("crm_resource", "--refresh", "--resource", resource) if resource else None,
                               "cluster" if resource else None, cause=True))
    return out


def severity_counts(findings: Sequence[Finding]) -> Dict[str, int]:
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return counts


def sort_findings(findings: Sequence[Finding]) -> List[Finding]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order.get(f.severity, 9), not f.cause, f.node or "", f.check))
