"""`remotectl check`: is a node's pacemaker-remoted reachable, and does it hold our key?

Per target: DNS, TCP connect, then the safe TLS 1.3 PSK probe of :mod:`remotectl.transport.psk_probe`, which
proves the key without ever completing the handshake (the cluster's connection to a live node is not disturbed).

Three ways to run it:

* ``here`` (default): from this machine, with one key read once from ``--key`` or from where Pacemaker reads it
  on this machine (``PCMK_authkey_location`` in /etc/sysconfig/pacemaker or /etc/default/pacemaker, else
  /etc/pacemaker/authkey). Targets run through a bounded thread pool (``probe_many``).
* ``cluster`` (``--from cluster``): the same probe run ON every online cluster node over SSH
  (``psk_probe.remote_invocation``: the module's source goes over stdin, no secret and no target on argv), each
  with that node's own key file, against every target: a cluster-node x target matrix. This finds the case where
  only one cluster node is firewalled off from a remote (the cluster moves the connection there and fences).
* ``x509`` (``--ca FILE``): for nodes in Pacemaker 3's X.509 mode, the safe certificate probe of
  :mod:`remotectl.transport.x509_probe` from this machine: the server's chain, validity and names are checked
  against the CA file and the handshake is aborted before our own Certificate/Finished (no client certificate is
  ever sent). ``ok`` means ``x509-trusted``; entries add the certificate's ``subject``, ``issuer``, ``dns_names``,
  ``ip_addresses``, ``not_after`` and ``days_left``.
* ``full`` (``--full``): a complete handshake plus executor registration (``lrmd_check.full_check``) to vet a host
  BEFORE it joins: it reports the executor's protocol version. Against a node a cluster is connected to it makes
  the cluster drop its connection ("unexpected client takeover"), mark the node unclean and maybe fence it, so
  :func:`plan_check` refuses it (RefusedError, exit 4) for online remote/guest/bundle nodes (matched by name, or
  by address and port), and also when no cluster can be queried at all (it cannot tell), unless ``force``.

JSON entries carry the contract keys (target, address, port, tcp, verdict, tls_version, cipher, ok, hint) first;
``tcp`` is one of open|refused|timeout|unreachable|unresolved (psk_probe's ``tcp-timeout`` verdict has tcp
``timeout``), or null when the TCP step never ran (verdict ``not-checked``: the probe could not run on that cluster
node, or ``probe-bug``). With --from cluster each entry adds ``from`` and the document a ``matrix``.

Exit status (:meth:`CheckRun.exit_code`): 0 when every result is ``ok`` (verdict ``match``), 1 when none could be
checked (no TCP connection to any target, or the probe could not run anywhere), 3 otherwise.

Key bytes stay in a local variable of :func:`run_check`: never in a result, a report, an exception or argv.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from remotectl.actions.targets import Target, is_ip, psk, resolve_targets, split_target
from remotectl.jsonable import json_field, jsonable
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, Reporter
from remotectl.transport import psk_probe, x509_probe

DEFAULT_PORT = psk_probe.DEFAULT_PORT
DEFAULT_TIMEOUT = 5.0
# The default --parallel, measured with bench/check_latency.py --sweep: 1,000 endpoints on 16 real remoteds behind
# bench/latency_proxy.py, whole-process probes/s, 2 cores shared with other jobs (load average 3-7; the proxy and
# the remoteds alone used 1.3-1.9 s of CPU per run, as much as remotectl's 0.9-1.5 s):
#   --parallel        32     64    128    256
#   loopback         518    404    413    435   (CPU-bound on 2 cores: proxy + remoteds + remotectl)
#   20 ms RTT        529    608    636    568
#   100 ms RTT       143    270    439    407
#   peak RSS (MiB)    34     36     39     48
# A probe costs 2 RTT (connect, then ClientHello -> server Finished) and ~0.9 ms of client CPU under the GIL, so
# one process tops out near 1,000 probes/s on one core: ~50 probes in flight saturate 20 ms, ~200 would saturate
# 100 ms. 128 was the best at 20 ms and 100 ms; on loopback (CPU-bound) it lost 20% to 32 (413 vs 518/s: about
# 0.5 s per 1,000 targets, where 32 would cost 5 s at 100 ms). 256 was slower at both latencies and takes 9 MiB
# more. Cut to what the open-file limit holds (choose_workers).
DEFAULT_WORKERS = 128
# From each cluster node (--from cluster) the probe runs on a production node: the earlier, gentler default.
DEFAULT_REMOTE_WORKERS = 32
MAX_WORKERS = 256
TCP_VALUES = ("open", "refused", "timeout", "unreachable", "unresolved")

# remotectl-level verdict for a (cluster node, target) pair whose probe could not run on that cluster node
NOT_CHECKED = "not-checked"

_TCP_FROM_VERDICT = {
    psk_probe.REFUSED: "refused",
    psk_probe.TCP_TIMEOUT: "timeout",
    psk_probe.UNREACHABLE: "unreachable",
    psk_probe.UNRESOLVED: "unresolved",
}


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


@dataclass
class CheckEntry:
    """One result row. Fields in JSON order: the contract keys first, then the extras; ``from`` only with
    --from cluster, ``protocol_version``/``lrmd_rc`` only with --full (see to_dict)."""

    target: str
    address: Optional[str]
    port: Optional[int]
    tcp: Optional[str]
    verdict: str
    tls_version: Optional[str]
    cipher: Optional[str]
    ok: bool
    hint: str
    source: Optional[str] = json_field(default=None, name="from")  # the cluster node the probe ran on
    node: Optional[str] = None
    kx: Optional[str] = None
    elapsed_ms: Optional[float] = None
    detail: Optional[str] = None
    protocol_version: Optional[str] = None  # --full only
    lrmd_rc: Optional[int] = None  # --full only
    subject: Optional[str] = None  # --ca only: the server certificate's subject, issuer, SANs, end, days left
    issuer: Optional[str] = None
    dns_names: Optional[List[str]] = None
    ip_addresses: Optional[List[str]] = None
    not_after: Optional[str] = None
    days_left: Optional[int] = None
    ca: Optional[str] = None  # the CA file the certificate was checked against, or whose PCMK_ca_file it was
    full: bool = json_field(omit=True, default=False)
    x509: bool = json_field(omit=True, default=False)

    @property
    def checked(self) -> bool:
        """A TCP connection was made and the probe itself ran: there is a verdict about the service."""
        return self.tcp == "open" and self.verdict not in (psk_probe.PROBE_BUG, NOT_CHECKED)

    def to_dict(self) -> Dict[str, Any]:
        out = jsonable(self)
        if self.source is None:
            del out["from"]
        if not self.full:
            del out["protocol_version"], out["lrmd_rc"]
        if not self.x509:
            for name in X509_FIELDS:
                del out[name]
        return out


X509_FIELDS = ("subject", "issuer", "dns_names", "ip_addresses", "not_after", "days_left", "ca")


def _entries_json(entries: Sequence[CheckEntry]) -> List[Dict[str, Any]]:
    return [entry.to_dict() for entry in entries]


@dataclass
class CheckPlan:
    """What will be probed, how, and what the operator must be told before it happens."""

    targets: List[Target]
    mode: str  # "here" | "cluster" | "full" | "x509"
    timeout: float
    workers: int
    key_path: Optional[str] = None
    ca_path: Optional[str] = None  # mode "x509"
    sources: List[str] = field(default_factory=list)  # cluster nodes to probe from (mode "cluster")
    skipped_sources: List[Dict[str, str]] = field(default_factory=list)  # offline cluster nodes
    warnings: List[str] = field(default_factory=list)  # printed on stderr BEFORE anything runs (--force)
    reports: List[Report] = field(default_factory=list)


@dataclass
class CheckRun:
    """The JSON document: ``results`` and ``mode``, then per mode what to_json names."""

    plan: CheckPlan = json_field(omit=True)
    entries: List[CheckEntry] = json_field(name="results", convert=_entries_json)
    # the key used here: path, source, size, fingerprint (never bytes)
    key: Optional[Dict[str, Any]] = json_field(omit=True, default=None)
    # per cluster node: key, python, gnutls, error
    origins: Dict[str, Dict[str, Any]] = json_field(omit=True, default_factory=dict)
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def ca(self) -> Optional[str]:
        """The CA file the certificates were checked against (mode "x509")."""
        return self.plan.ca_path

    @property
    def matrix(self) -> Dict[str, Dict[str, str]]:
        """{cluster node: {target label: verdict}} (mode "cluster")."""
        matrix: Dict[str, Dict[str, str]] = {name: {} for name in self.plan.sources}
        for entry in self.entries:
            if entry.source is not None:
                matrix.setdefault(entry.source, {})[entry.target] = entry.verdict
        return matrix

    @property
    def sources(self) -> Dict[str, Dict[str, Any]]:
        return self.origins

    @property
    def skipped(self) -> List[Dict[str, str]]:
        return list(self.plan.skipped_sources)

    def failing_pairs(self) -> List[CheckEntry]:
        return [entry for entry in self.entries if not entry.ok]

    def exit_code(self) -> ExitCode:
        if self.entries and all(entry.ok for entry in self.entries):
            return ExitCode.OK
        if not any(entry.checked for entry in self.entries):
            return ExitCode.FAILURE
        return ExitCode.PARTIAL

    def to_json(self) -> Dict[str, Any]:
        if self.mode == "cluster":
            extra: Tuple[str, ...] = ("mode", "matrix", "sources", "skipped")
        elif self.mode == "x509":
            extra = ("mode", "ca")
        else:
            extra = ("mode", "key")
        return jsonable(self, extra=extra)

    def summary(self) -> str:
        total = len(self.entries)
        good = sum(entry.ok for entry in self.entries)
        counts: Dict[str, int] = {}
        for entry in self.entries:
            if not entry.ok:
                counts[entry.verdict] = counts.get(entry.verdict, 0) + 1
        what = "probe" if self.mode != "cluster" else "pair"
        text = f"{total} {what}{'s' if total != 1 else ''}: {good} ok"
        if counts:
            text += ", " + ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        return text


def needs_cluster(targets: Sequence[str]) -> bool:
    """Whether resolving these targets needs the node list: any that is not an IP literal may be a node name."""
    return any(not is_ip(split_target(t)[0]) for t in targets)


# --------------------------------------------------------------------------------------------------------------
# Planning (reads the cluster; refuses unsafe --full)
# --------------------------------------------------------------------------------------------------------------


def full_force_warning(target: Target) -> str:
    what = f"{target.node} ({target.host}:{target.port})" if target.node else f"{target.host}:{target.port}"
    return (f"--full --force against {what}, a {target.type} node the cluster is connected to: completing the "
            f"handshake makes the cluster drop its connection ('unexpected client takeover'); {target.node} will be "
            "marked unclean and may be fenced, and its resources will be recovered elsewhere")


def _check_options(targets: Sequence[str], *, all_nodes: bool, source: str, full: bool, force: bool,
                   timeout: float, ca_path: Optional[str] = None, key_path: Optional[str] = None) -> None:
    """Usage errors (exit 2) before anything is asked."""
    if ca_path is not None:
        for flag, given in (("--full", full), ("--key", key_path)):
            if given:
                raise RemotectlError(f"--ca checks certificates: not with {flag}", exit_code=ExitCode.USAGE)
        if not ca_path:
            raise RemotectlError("--ca needs a file name", exit_code=ExitCode.USAGE)
    if all_nodes and targets:
        raise RemotectlError("give TARGETs or --all, not both", exit_code=ExitCode.USAGE)
    if not all_nodes and not targets:
        raise RemotectlError("nothing to check: give TARGET... or --all", exit_code=ExitCode.USAGE)
    if full and source != "here":
        raise RemotectlError("--full runs from here only (not with --from cluster)", exit_code=ExitCode.USAGE)
    if force and not full:
        raise RemotectlError("--force only applies to --full", exit_code=ExitCode.USAGE)
    if not timeout or timeout <= 0 or not math.isfinite(timeout):
        raise RemotectlError("--timeout must be a positive number of seconds", exit_code=ExitCode.USAGE)


def _cluster_nodes(get_nodes: Callable[[], Sequence[Any]], targets: Sequence[str], *, all_nodes: bool, source: str,
                   full: bool, reporter: Reporter) -> Tuple[Optional[List[Any]], Optional[str]]:
    """(the node list or None, why there is none). Asked only when needed; required by --all and --from cluster."""
    nodes: Optional[List[Any]] = None
    cluster_error: Optional[str] = None
    if all_nodes or source == "cluster" or full or needs_cluster(targets):
        try:
            nodes = list(get_nodes())
        except RemotectlError as exc:
            cluster_error = exc.message
    if nodes is None and (all_nodes or source == "cluster"):
        what = "--all" if all_nodes else "--from cluster"
        raise RemotectlError(f"{what} needs the cluster's node list, and no cluster could be queried: {cluster_error}")
    if cluster_error and not full:  # only some TARGET that may be a node name made us ask
        reporter.warning(f"no cluster could be queried ({cluster_error}); targets are used as host names",
                         code="no-node-list")
    return nodes, cluster_error


def _guard_full(resolved: Sequence[Target], nodes: Optional[List[Any]], cluster_error: Optional[str], *, force: bool,
                reporter: Reporter) -> List[str]:
    """Refuse --full against a node the cluster is connected to, or when no cluster could tell (RefusedError, exit
    4), unless ``force``; returns the warnings to print before anything runs."""
    warnings: List[str] = []
    if nodes is None:
        message = ("--full completes the TLS handshake and registers with the executor; no cluster could be "
                   f"queried ({cluster_error}), so remotectl cannot tell whether a cluster is connected to "
                   f"{', '.join(t.label for t in resolved)}. A connected node would be dropped by its cluster, "
                   "marked unclean and maybe fenced")
        if not force:
            raise RefusedError(message + ". Use --cluster to name the cluster, or --force if the target is not "
                               "part of any running cluster")
        warnings.append(message + "; going ahead because of --force")
    connected = [t for t in resolved if t.connected]
    if connected and not force:
        names = ", ".join(f"{t.label} (node {t.node}, {t.host}:{t.port})" for t in connected)
        raise RefusedError(
            f"refusing --full against {names}: the cluster is connected to it, and completing the handshake "
            "would make the cluster drop the connection, mark the node unclean and maybe fence it. The default "
            "check (without --full) proves the key safely; --force overrides")
    warnings.extend(full_force_warning(t) for t in connected)
    for target in resolved:
        if target.node and not target.connected:
            reporter.info(f"{target.label} is node {target.node} of the cluster, which is not connected to it "
                          "now; if the cluster reconnects during the check it simply takes the connection over",
                          node=target.node, code="full-node-not-connected")
    return warnings


def _add_sources(plan: CheckPlan, nodes: Optional[List[Any]], reporter: Reporter) -> None:
    """--from cluster: probe from every online cluster node; the others are listed as skipped."""
    members = [node for node in nodes or [] if node.type == "cluster"]
    plan.sources = [node.name for node in members if node.online]
    plan.skipped_sources = [{"node": node.name, "reason": "unclean" if node.unclean else "offline"}
                            for node in members if not node.online]
    for skipped in plan.skipped_sources:
        reporter.warning(f"cluster node {skipped['node']} is {skipped['reason']}: not checked from it",
                         node=skipped["node"], code="source-offline")
    if not plan.sources:
        raise RemotectlError("--from cluster: no online cluster node to probe from")


def choose_workers(requested: Optional[int], source: str = "here") -> int:
    """--parallel as given (bounded to 1..MAX_WORKERS), else DEFAULT_WORKERS lowered to fit this process's
    open-file limit (one socket per worker), so the default never runs out of descriptors. From the cluster nodes
    (their own limits apply there): DEFAULT_REMOTE_WORKERS."""
    if requested is not None:
        return max(1, min(int(requested), MAX_WORKERS))
    if source == "cluster":
        return DEFAULT_REMOTE_WORKERS
    from remotectl.transport.limits import cap_workers

    return cap_workers(DEFAULT_WORKERS)


def plan_check(
    get_nodes: Callable[[], Sequence[Any]],
    targets: Sequence[str] = (),
    *,
    all_nodes: bool = False,
    port: Optional[int] = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: Optional[int] = None,
    source: str = "here",
    full: bool = False,
    force: bool = False,
    key_path: Optional[str] = None,
    ca_path: Optional[str] = None,
) -> CheckPlan:
    """Decide what to probe and from where. ``get_nodes()`` returns the cluster's nodes (list_nodes(...).nodes) or
    raises RemotectlError when no cluster can be reached; it is only called when needed."""
    _check_options(targets, all_nodes=all_nodes, source=source, full=full, force=force, timeout=timeout,
                   ca_path=ca_path, key_path=key_path)
    reporter = Reporter()
    nodes, cluster_error = _cluster_nodes(get_nodes, targets, all_nodes=all_nodes, source=source, full=full,
                                          reporter=reporter)
    addresses = None
    if full:  # the --full guard also matches a host to a node by resolved address
        from remotectl.transport.dns import AddressCache

        addresses = AddressCache().addresses
    resolved = resolve_targets(targets, nodes, all_nodes=all_nodes, reach=psk(port, addresses))
    if all_nodes and not resolved:
        raise RemotectlError("--all: the cluster has no remote, guest or bundle nodes")
    warnings = _guard_full(resolved, nodes, cluster_error, force=force, reporter=reporter) if full else []
    mode = "full" if full else "x509" if ca_path is not None and source == "here" else source
    plan = CheckPlan(targets=resolved, mode=mode, timeout=float(timeout), workers=choose_workers(workers, source),
                     key_path=key_path, ca_path=ca_path, warnings=warnings, reports=reporter.reports)
    if source == "cluster":
        _add_sources(plan, nodes, reporter)
    return plan


# --------------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------------


def _tcp_of(result: Dict[str, Any]) -> Optional[str]:
    tcp = result.get("tcp")
    if tcp in TCP_VALUES:
        return tcp
    return _TCP_FROM_VERDICT.get(result.get("verdict"))  # e.g. "tcp-timeout" -> "timeout"; None: the TCP step never ran


def entry_from_probe(target: Target, result: Dict[str, Any], source: Optional[str] = None,
                     full: bool = False, x509: bool = False) -> CheckEntry:
    """A CheckEntry from a ProbeResult.to_dict() (local or from a cluster node's JSON), or an X509Result's."""
    verdict = str(result.get("verdict") or psk_probe.PROBE_BUG)
    if verdict not in (x509_probe.VERDICTS if x509 else psk_probe.VERDICTS):
        verdict = psk_probe.PROBE_BUG
    good = x509_probe.X509_TRUSTED if x509 else psk_probe.MATCH
    ok = verdict == good and bool(result.get("ok"))
    hints = x509_probe.hint_for if x509 else psk_probe.hint_for
    hint = result.get("hint") or hints(verdict, target.host, target.port)
    port = result.get("port")
    return CheckEntry(
        target=target.label,
        address=result.get("address") or None,
        port=port if isinstance(port, int) else target.port,
        tcp=_tcp_of(result),
        verdict=verdict,
        tls_version=result.get("tls_version"),
        cipher=result.get("cipher"),
        ok=ok,
        hint=str(hint),
        node=target.node,
        source=source,
        kx=result.get("kx"),
        elapsed_ms=result.get("elapsed_ms"),
        detail=result.get("detail"),
        protocol_version=result.get("protocol_version") if full else None,
        lrmd_rc=result.get("lrmd_rc") if full else None,
        full=full,
        x509=x509,
        **{name: _listify(result.get(name)) for name in X509_FIELDS if x509 and name != "ca"},
    )


def _listify(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def not_checked(target: Target, source: str, why: str) -> CheckEntry:
    return CheckEntry(target=target.label, address=None, port=target.port, tcp=None, verdict=NOT_CHECKED,
                      tls_version=None, cipher=None, ok=False, hint=why, node=target.node, source=source)


def load_key(path: Optional[str]) -> Tuple[bytes, Dict[str, Any], List[str]]:
    """(key bytes, description without the bytes, warnings) from --key PATH or where Pacemaker reads it here."""
    try:
        if path:
            key = psk_probe.read_key(path)
            info = {"path": path, "source": "--key", "warnings": []}
        else:
            key, found, source, warnings = psk_probe.locate_node_key(version=psk_probe.pacemaker_version())
            info = {"path": found, "source": source, "warnings": list(warnings)}
    except psk_probe.ProbeError as exc:
        raise RemotectlError(f"{exc} (use --key PATH)" if not path else str(exc)) from None
    info.update(size=len(key), fingerprint=psk_probe.key_fingerprint(key))
    return key, info, list(info["warnings"])


class Pending:
    """What a fan-out still waits for. The pools start work in submission order, so the first unfinished item is
    the one running longest: the "slowest pending" a progress display names."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.done = [False] * len(self.labels)
        self.first = 0

    def slowest(self) -> Optional[str]:
        return self.labels[self.first] if self.first < len(self.labels) else None

    def finish(self, index: int) -> Optional[str]:
        """Mark item ``index`` done; the slowest pending one after it."""
        self.done[index] = True
        while self.first < len(self.done) and self.done[self.first]:
            self.first += 1
        return self.slowest()


def first_pending(plan: CheckPlan) -> Optional[str]:
    """What a progress display names before anything has finished."""
    names = plan.sources if plan.mode == "cluster" else [t.label for t in plan.targets]
    return names[0] if names else None


def run_check(plan: CheckPlan, *, runner_for: Optional[Callable[[str], Any]] = None,
              on_progress: Optional[Callable[[Optional[str]], None]] = None) -> CheckRun:
    """Run a plan. ``runner_for(node name)`` gives a Runner (SSH) to a cluster node, for mode "cluster".
    ``on_progress(pending)`` is called once per finished target (per cluster node with --from cluster), with the
    label of the one now waited for longest (None at the end)."""
    tick = on_progress or (lambda _pending: None)
    if plan.mode == "cluster":
        if runner_for is None:
            raise ValueError("mode 'cluster' needs runner_for")
        return _run_from_cluster(plan, runner_for, tick)
    if plan.mode == "x509":
        return CheckRun(plan=plan, entries=_run_x509(plan, tick), reports=list(plan.reports))
    from remotectl.actions import check_x509

    reporter = Reporter(list(plan.reports))
    try:
        key, info, key_warnings = load_key(plan.key_path)
    except RemotectlError as exc:
        entries = check_x509.x509_only(plan, tick) if plan.mode == "here" and not plan.key_path else None
        if entries is None:
            raise
        reporter.warning(f"no authkey here ({exc.message}): every target got the certificate probe with this "
                         "machine's PCMK_ca_file (PSK nodes answer tls-not-x509)", code="check-no-key")
        return CheckRun(plan=plan, entries=entries, reports=reporter.reports)
    for warning in key_warnings:
        reporter.warning(f"key: {warning}", code="key-warning")
    try:
        if plan.mode == "full":
            entries = _run_full(plan, key, tick)
        else:
            entries = check_x509.follow_x509(plan, _run_here(plan, key, tick), runner_for, reporter)
    except psk_probe.ProbeError as exc:  # no libgnutls, no TLS 1.3: nothing could run
        raise RemotectlError(f"the key probe cannot run here: {exc}") from None
    finally:
        key = None  # noqa: F841 - drop our reference as soon as the probes are done
    return CheckRun(plan=plan, entries=entries, key=info, reports=reporter.reports)


def _run_here(plan: CheckPlan, key: bytes, tick: Callable[[Optional[str]], None]) -> List[CheckEntry]:
    pairs = [(t.host, t.port) for t in plan.targets]
    pending = Pending([t.label for t in plan.targets])
    waiting: Dict[Tuple[str, Any], List[int]] = {}
    for index, (host, port) in enumerate(pairs):
        waiting.setdefault((str(host), port), []).append(index)

    def done(result) -> None:  # results name their target by host and port, not by index
        indexes = waiting.get((result.target, result.port))
        tick(pending.finish(indexes.pop(0)) if indexes else pending.slowest())

    results = psk_probe.probe_many(pairs, key, timeout=plan.timeout, workers=plan.workers, callback=done)
    return [entry_from_probe(t, r.to_dict()) for t, r in zip(plan.targets, results)]


def _run_x509(plan: CheckPlan, tick: Callable[[], None]) -> List[CheckEntry]:
    """The certificate probe against --ca FILE."""
    from remotectl.actions.check_x509 import x509_jobs

    try:
        results = x509_probe.probe_many(x509_jobs(plan.targets), plan.ca_path, timeout=plan.timeout, workers=plan.workers,
                                        callback=lambda _result: tick())
    except psk_probe.ProbeError as exc:
        raise RemotectlError(f"the certificate probe cannot run here: {exc}") from None
    entries = [entry_from_probe(t, r.to_dict(), x509=True) for t, r in zip(plan.targets, results)]
    for entry in entries:
        entry.ca = plan.ca_path
    return entries


def _run_full(plan: CheckPlan, key: bytes, tick: Callable[[], None]) -> List[CheckEntry]:
    from remotectl.transport import lrmd_check
    from remotectl.transport.fanout import fan_out

    cannot_run: List[psk_probe.ProbeError] = []

    def one(target: Target):
        try:
            return lrmd_check.full_check(target.host, target.port, key, timeout=plan.timeout)
        except psk_probe.ProbeError as exc:  # a local limit (e.g. out of file descriptors), no target's fault
            cannot_run.append(exc)
            raise RemotectlError(str(exc)) from None

    outcomes = fan_out(one, plan.targets, workers=min(plan.workers, 16), on_done=_ticker(plan.targets, tick))
    if cannot_run:
        raise cannot_run[0]
    entries = []
    for outcome in outcomes:
        if outcome.ok:
            entries.append(entry_from_probe(outcome.item, outcome.value.to_dict(), full=True))
        else:
            entry = entry_from_probe(outcome.item, {"verdict": psk_probe.PROBE_BUG, "detail": outcome.error},
                                     full=True)
            entries.append(entry)
    return entries


def _ticker(items: Sequence[Any], tick: Callable[[Optional[str]], None]) -> Callable[[Any], None]:
    """fan_out's on_done: tick with the slowest pending item (outcomes carry the item itself)."""
    pending = Pending([item.label if isinstance(item, Target) else str(item) for item in items])
    index = {id(item): i for i, item in enumerate(items)}

    def done(outcome) -> None:
        position = index.get(id(outcome.item))
        tick(pending.finish(position) if position is not None else pending.slowest())

    return done


def guard_full_on_hosts(plan: CheckPlan, runner_for: Callable[[str], Any], *, force: bool) -> None:
    """--full: the cluster remotectl talks to is not the only one that may hold a connection. Ask each target's
    host itself over SSH whether its pacemaker-remoted has an established connection on the port (any cluster's),
    and refuse (exit 4) when it has, unless ``force``. A host that cannot be asked gets a warning."""
    if plan.mode != "full" or force:
        return
    from remotectl.transport import hostops

    reporter = Reporter(plan.reports)
    for target in plan.targets:
        try:
            peers = hostops.host_state(runner_for(target.host), target.port or DEFAULT_PORT).established
        except RemotectlError as exc:
            reporter.warning(f"{target.label}: could not ask the host over SSH whether a cluster holds its "
                             f"pacemaker-remoted ({exc.message}); only the cluster's view was checked",
                             node=target.node, code="full-host-unchecked")
            continue
        if peers:
            raise RefusedError(f"refusing --full against {target.label}: its pacemaker-remoted has an established "
                               f"connection on {target.port or DEFAULT_PORT} from {', '.join(peers)} (read on the "
                               "host itself: a cluster, maybe another one, holds it); --force overrides")
    plan.reports = reporter.reports


def remote_timeout(plan: CheckPlan) -> float:
    """How long one cluster node may take for all targets: one deadline (connect + handshake) per wave of
    workers, plus slack for DNS, SSH and starting python3 there."""
    waves = math.ceil(len(plan.targets) / max(1, plan.workers))
    return plan.timeout * waves + 30.0


def run_on_sources(names: Sequence[str], argv: List[str], stdin: bytes, fmt: str, expected: int, budget: float,
                   runner_for: Callable[[str], Any], tick) -> List[Any]:
    """fan_out's outcomes of one shipped probe program run on each cluster node: its parsed JSON document."""
    from remotectl.transport.fanout import fan_out

    def from_node(name: str) -> Dict[str, Any]:
        result = runner_for(name).run(argv, stdin=stdin, timeout=budget)
        return parse_remote_output(name, result.rc, result.stdout, result.stderr, expected, fmt)

    return fan_out(from_node, list(names), workers=16, on_done=_ticker(list(names), tick))


def per_node_entries(plan: CheckPlan, outcomes: Sequence[Any], reporter: Reporter,
                     origins: Dict[str, Dict[str, Any]], x509: bool = False) -> Dict[str, List[CheckEntry]]:
    """{cluster node: its entries, in plan.targets order}; a node where the probe could not run gets not-checked
    entries and a probe-not-run error."""
    out: Dict[str, List[CheckEntry]] = {}
    for outcome in outcomes:
        name = outcome.item
        doc = outcome.value if outcome.ok else {"error": outcome.error}
        origins[name] = {"error": doc.get("error"), "key": doc.get("key"), "python": doc.get("python"),
                         "gnutls": doc.get("gnutls"), "ca": doc.get("ca")}
        if doc.get("error"):
            where = "from" if not outcome.ok else "on"
            reporter.error(f"probe could not run {where} {name}: {doc['error']}", node=name, code="probe-not-run")
            out[name] = [not_checked(t, name, f"probe could not run {where} {name}: {doc['error']}")
                         for t in plan.targets]
            continue
        for warning in (doc.get("key") or {}).get("warnings") or []:
            reporter.warning(f"key on {name}: {warning}", node=name, code="key-warning")
        out[name] = [entry_from_probe(target, result, source=name, x509=x509)
                     for target, result in zip(plan.targets, doc["results"])]
    return out


def _run_from_cluster(plan: CheckPlan, runner_for: Callable[[str], Any], tick) -> CheckRun:
    from remotectl.actions import check_x509

    reporter = Reporter(list(plan.reports))
    origins: Dict[str, Dict[str, Any]] = {}
    if plan.ca_path is not None:
        per_node = check_x509.x509_from_cluster(plan, runner_for, tick, reporter, origins)
    else:
        pairs = [(t.host, t.port) for t in plan.targets]
        argv, stdin = psk_probe.remote_invocation(pairs, key_path=plan.key_path, timeout=plan.timeout,
                                                  workers=plan.workers)
        outcomes = run_on_sources(plan.sources, argv, stdin, psk_probe.FORMAT, len(pairs), remote_timeout(plan),
                                  runner_for, tick)
        per_node = per_node_entries(plan, outcomes, reporter, origins)
        check_x509.follow_x509_on_nodes(plan, per_node, runner_for, reporter, origins)
    entries = [entry for name in plan.sources for entry in per_node.get(name, [])]
    fingerprints = {name: (origin.get("key") or {}).get("fingerprint") for name, origin in origins.items()}
    distinct = {fp for fp in fingerprints.values() if fp}
    if len(distinct) > 1:
        reporter.warning("the cluster nodes use different keys: " + ", ".join(
            f"{name} {fp}" for name, fp in sorted(fingerprints.items()) if fp), code="cluster-keys-differ")
    return CheckRun(plan=plan, entries=entries, origins=origins, reports=reporter.reports)


def parse_remote_output(name: str, rc: int, stdout: str, stderr: str, expected: int,
                        fmt: str = psk_probe.FORMAT) -> Dict[str, Any]:
    """The one JSON document psk_probe.main (or x509_node.main: ``fmt``) printed on a cluster node;
    RemotectlError when there is none."""
    if rc == 127:
        raise RemotectlError(f"python3 not found on {name} (the probe needs python3 >= 3.6 there)")
    doc = None
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
            break
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        first = next((ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()), f"exit status {rc}")
        raise RemotectlError(f"no probe result from {name} (exit status {rc}): {first[:200]}")
    if not doc.get("error"):
        results = doc.get("results")
        if not isinstance(results, list) or len(results) != expected or not all(isinstance(r, dict) for r in results):
            raise RemotectlError(f"{name} returned {len(results) if isinstance(results, list) else 'no'} results "
                                 f"for {expected} targets")
    return doc
