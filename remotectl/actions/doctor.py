"""`remotectl doctor`: gather the facts about every remote and guest node with the actions that already exist, and
let :mod:`remotectl.pacemaker.diagnosis` say what is wrong.

Four gatherings run at the same time, each through the bounded fan-out of the action it reuses:

* the safe probe from every online cluster node against every remote/guest/bundle node (``check --from cluster``:
  never a completed handshake, so no connected node is disturbed);
* the key file, env-file settings and Pacemaker version of every cluster, remote and guest node over SSH
  (``authkey verify``);
* the pacemaker-remoted service and its listening port on each remote and guest host over SSH (``hostops``);
* each node's X.509 mode, Pacemaker version and certificate (``tls.node_certs``: no private key is read), for
  :mod:`remotectl.pacemaker.tls_diagnosis`.

With ``--cib FILE`` only :data:`~remotectl.pacemaker.diagnosis.CIB_CHECKS` run; the result lists the others as
skipped, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import diagnosis as dx
from remotectl.reports import ExitCode, RemotectlError, Report, Reporter


@dataclass
class NodeHealth:
    """One remote, guest or bundle node's gauges (the JSON ``nodes`` and the Prometheus metrics)."""

    node: str
    type: str
    online: bool
    key_match: Optional[bool] = None  # every cluster node's probe says match; None: not probed
    port_open: Dict[str, bool] = field(default_factory=dict)  # cluster node -> TCP connect worked
    fail_count: int = 0  # of its connection resource, summed over the cluster nodes


@dataclass
class DoctorResult:
    findings: List[dx.Finding]
    nodes: List[NodeHealth]
    checks: List[str]  # the checks that ran
    skipped: List[Dict[str, str]]  # {"check", "reason"}
    source: str  # live | cib-file
    reports: List[Report] = json_field(omit=True, default_factory=list)
    fixes: Optional[List[Any]] = json_field(omit=True, default=None)  # doctor --fix: actions.doctor_fix.Fix

    @property
    def counts(self) -> Dict[str, int]:
        return dx.severity_counts(self.findings)

    @property
    def healthy(self) -> bool:
        counts = self.counts
        return counts["critical"] == 0 and counts["warning"] == 0

    def exit_code(self) -> ExitCode:
        counts = self.counts
        if counts["critical"]:
            return ExitCode.FAILURE
        if counts["warning"]:
            return ExitCode.PARTIAL
        return ExitCode.OK

    def to_json(self) -> Dict[str, Any]:
        doc = jsonable(self, extra=("healthy", "counts"))
        if self.fixes is not None:
            doc["fixes"] = jsonable(self.fixes)
        return doc


def _select(nodes: Sequence[Any], names: Sequence[str]) -> List[Any]:
    peers = [n for n in nodes if n.type in dx.PEER_TYPES]
    if not names:
        return peers
    by_name = {n.name: n for n in nodes}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise RemotectlError(f"no such node: {', '.join(unknown)}", exit_code=ExitCode.USAGE)
    wrong = [name for name in names if by_name[name].type not in dx.PEER_TYPES]
    if wrong:
        raise RemotectlError(f"{', '.join(wrong)}: doctor checks remote, guest and bundle nodes (cluster nodes are "
                             "checked as the side that connects to them)", exit_code=ExitCode.USAGE)
    return [by_name[name] for name in dict.fromkeys(names)]


def run_doctor(cluster, names: Sequence[str] = (), *, runner_for: Optional[Callable[[str], Any]] = None,
               on_progress: Optional[Callable[[], None]] = None, timeout: float = 5.0,
               progress_total: Optional[Callable[[int], None]] = None) -> DoctorResult:
    """``runner_for(destination)`` gives an SSH Runner (live clusters only). ``progress_total(n)`` is told how many
    units ``on_progress`` will count."""
    from remotectl.actions.nodes import list_nodes
    from remotectl.pacemaker.constraints import CibIndex

    index = CibIndex(cluster.cib_xml())
    nodes = list_nodes(cluster).nodes
    # a node entry without a connection (stale-node) has nothing live to check
    selected = [n for n in _select(nodes, names) if n.resource is not None]
    wanted = {n.name for n in selected}
    failures = [f for f in dx.connection_failures(index) if f.node in wanted]
    pure = [f for f in dx.no_reconnect_interval(index) + dx.misuse_findings(index) if f.node in wanted]
    stale = dx.stale_nodes(index)
    if names:
        stale = [f for f in stale if f.node in names]
    health = {n.name: NodeHealth(n.name, n.type, bool(n.online)) for n in selected}
    for failure in failures:
        health[failure.node].fail_count = min(failure.fail_count + health[failure.node].fail_count, 1000000)
    if not cluster.live:
        findings = pure + stale + dx.failure_findings(failures, live=False, healthy=set(), offline=set())
        skipped = [{"check": check, "reason": "needs the live nodes; a CIB file cannot show it"}
                   for check in dx.LIVE_CHECKS]
        return DoctorResult(dx.sort_findings(findings), list(health.values()), list(dx.CIB_CHECKS), skipped,
                            "cib-file")
    if runner_for is None:
        raise ValueError("a live doctor run needs runner_for")
    live = _Live(nodes, selected, runner_for, on_progress or (lambda: None), timeout)
    if progress_total is not None:
        progress_total(live.units())
    live.gather()
    findings = pure + stale + live.findings(health)
    offline = [n.name for n in selected if not n.online]
    problem_nodes = {f.node for f in findings if f.severity in ("critical", "warning")}
    findings += dx.failure_findings(failures, live=True,
                                    healthy={n for n in wanted if health[n].online and n not in problem_nodes},
                                    offline=set(offline),
                                    reachable={n for n in wanted if n not in problem_nodes and health[n].key_match
                                               and health[n].port_open and all(health[n].port_open.values())})
    findings = dx.mark_causes(findings, offline, [n.name for n in nodes if n.type == "cluster"],
                              {n.name: n.resource for n in selected})
    if names:
        keep = wanted | {n.name for n in nodes if n.type == "cluster"}
        findings = [f for f in findings if f.node is None or f.node in keep]
    checks = [c for c in dx.CHECKS if c not in {s["check"] for s in live.skipped}]
    return DoctorResult(dx.sort_findings(findings), list(health.values()), checks, live.skipped, "live",
                        live.reporter.reports)


class _Live:
    """The three live gatherings and what they found."""

    def __init__(self, nodes, selected, runner_for, tick, timeout) -> None:
        from remotectl.actions.nodes import ssh_destination
        from remotectl.actions.targets import SSH, resolve_targets

        self.nodes, self.selected, self.runner_for, self.tick, self.timeout = nodes, selected, runner_for, tick, timeout
        self.reporter = Reporter()
        self.skipped: List[Dict[str, str]] = []
        wanted = {n.name for n in selected}
        self.sources = [n.name for n in nodes if n.type == "cluster" and n.online]
        self.ssh_targets = [t for t in resolve_targets([], nodes, all_nodes=True, reach=SSH)
                            if t.type == "cluster" or t.node in wanted]
        self.hosts = [(n, ssh_destination(n)) for n in selected if n.type in ("remote", "guest")]
        self.probe = self.verify = None
        self.services: List[Any] = []
        self.tls: Optional[List[Any]] = None  # tls_diagnosis.NodeTls per node that answered

    def units(self) -> int:
        return len(self.sources) + 2 * len(self.ssh_targets) + len(self.hosts)

    def gather(self) -> None:
        from remotectl.transport.fanout import fan_out

        tasks = {"probe": self._probe, "verify": self._verify, "service": self._services, "tls": self._tls}
        for outcome in fan_out(lambda name: tasks[name](), list(tasks), workers=len(tasks)):
            if not outcome.ok:
                self.reporter.error(f"{outcome.item} checks could not run: {outcome.error}", code="doctor-gather-failed")
                self._skip_for(outcome.item, outcome.error or "failed")

    def _skip_for(self, task: str, reason: str) -> None:
        checks = {"probe": ("key-mismatch", "port-unreachable"), "verify": ("key-unreadable", "config-drift",
                                                                            "version-skew"),
                  "service": ("service-down",), "tls": dx.TLS_CHECKS}[task]
        self.skipped.extend({"check": check, "reason": reason} for check in checks)

    def _probe(self) -> None:
        from remotectl.actions import check

        if not self.selected:
            return
        plan = check.plan_check(lambda: self.nodes, [n.name for n in self.selected], source="cluster",
                                timeout=self.timeout)
        self.probe = check.run_check(plan, runner_for=self.runner_for, on_progress=lambda _pending: self.tick())

    def _verify(self) -> None:
        from remotectl.actions.authkey.verify import verify_keys

        self.verify = verify_keys(self.ssh_targets, self.runner_for, on_done=lambda _o: self.tick())

    def _tls(self) -> None:
        from remotectl.actions.tls import node_certs

        self.tls, failed = node_certs.gather(self.ssh_targets, self.runner_for, on_done=lambda _o: self.tick())
        for node, error in failed.items():
            self.reporter.warning(f"could not read its X.509 settings and certificate over SSH: {error}", node=node,
                                  code="doctor-tls-unchecked")

    def _services(self) -> None:
        from remotectl.transport import hostops
        from remotectl.transport.fanout import fan_out

        def one(item):
            node, destination = item
            return hostops.host_state(self.runner_for(destination), node.port or 3121)

        def done(_outcome):
            self.tick()

        for outcome in fan_out(one, self.hosts, on_done=done):
            node = outcome.item[0]
            if not outcome.ok:
                self.reporter.warning(f"could not ask the host over SSH about its pacemaker-remoted: {outcome.error}",
                                      node=node.name, code="doctor-host-unchecked")
                continue
            state = outcome.value
            self.services.append(dx.ServiceState(node.name, node.port or 3121, state.unit, state.active,
                                                 state.listening))

    def findings(self, health: Dict[str, NodeHealth]) -> List[dx.Finding]:
        from remotectl.pacemaker import tls_diagnosis

        found = dx.service_findings(self.services)
        down = {f.node for f in found}
        # an X.509 remoted answers the PSK probe with tls-not-psk: its mode and certificate are judged below
        x509 = {n.node for n in self.tls or () if n.mode == "x509"}
        cells: List[dx.ProbeCell] = []
        if self.probe is not None:
            self.reporter.reports.extend(self.probe.reports)
            for entry in self.probe.entries:
                target = entry.node or entry.target
                if entry.verdict == "not-checked" or (entry.verdict == "tls-not-psk" and target in x509):
                    continue
                endpoint = f"{entry.address or '-'}:{entry.port}"
                cells.append(dx.ProbeCell(entry.source or "?", target, endpoint, entry.tcp, entry.verdict))
                if target in health:
                    health[target].port_open[entry.source or "?"] = entry.tcp == "open"
            for name in health:
                verdicts = [c.verdict for c in cells if c.target == name]
                if verdicts:
                    health[name].key_match = all(v == "match" for v in verdicts)
        fingerprints: Dict[str, Optional[str]] = {}
        if self.verify is not None:
            self.reporter.reports.extend(r for r in self.verify.reports if r.code != "no-majority-key")
            checked = [n for n in self.verify.nodes if n.status == "checked"]
            fingerprints = {n.node: n.fingerprint for n in checked}
            types = {n.node: n.type for n in checked}
            found += dx.key_file_findings([dx.KeyFile(n.node, n.type, n.path, n.size, tuple(n.problems))
                                           for n in checked])
            ports = {n.name: n.port for n in self.nodes}
            found += dx.drift_findings({n.node: n.settings for n in checked if n.settings}, types, ports)
            found += dx.version_findings({n.node: n.version for n in checked}, types)
        found += dx.key_findings(fingerprints, cells)
        found += dx.port_findings(cells, down)
        found += tls_diagnosis.tls_findings(self.tls or [])
        return dx.keep_safe_repairs(found, fingerprints)
