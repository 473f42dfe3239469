"""`remotectl node add HOST`: make a fresh host a remote node, step by step, idempotently.

Every step is a `Step` row of the result (planned, then done / unchanged / failed); a run after a failure or a kill
starts again from the first step and finds the finished ones unchanged, so the same command continues.
Refusals (exit 4) happen before anything is changed; the one trial change (the firewall rule, so that the port
can be tested from every cluster node) is undone before refusing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import hostfirewall, lifecycle, tools, values, xmlsafe
from remotectl.pacemaker.status import read_status
from remotectl.reports import ExitCode, RemotectlError, Report, Reporter
from remotectl.transport import hostops
from remotectl.transport.base import Runner

RunnerFor = Callable[[str], Runner]
OK_TCP = ("open", "refused")  # the packet got through: refused only means remoted does not listen yet


@dataclass
class Step:
    """One step of a lifecycle command. status: done | unchanged | checked | would | failed | refused | skipped."""

    step: str
    status: str
    detail: str = ""
    undo: Optional[str] = None  # how to undo this change by hand (for a change that was made)

    def to_json(self) -> dict:
        return jsonable(self)


@dataclass
class LifecycleResult:
    command: str  # add | remove | drain | resume
    node: str
    host: Optional[str]
    outcome: str = "done"  # done | nothing-to-do | dry-run | refused | failed
    address: Optional[str] = None
    port: Optional[int] = None
    fingerprint: Optional[str] = None  # the cluster's key that was (or would be) installed
    steps: List[Step] = field(default_factory=list)
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def changed(self) -> bool:
        return any(step.status == "done" for step in self.steps)

    @property
    def exit_code(self) -> ExitCode:
        return {"refused": ExitCode.REFUSED, "failed": ExitCode.FAILURE}.get(self.outcome, ExitCode.OK)

    def add(self, step: str, status: str, detail: str = "", undo: Optional[str] = None) -> Step:
        row = Step(step, status, detail, undo)
        self.steps.append(row)
        return row

    def finish(self) -> "LifecycleResult":
        if self.outcome == "done" and not self.changed:
            self.outcome = "nothing-to-do"
        return self

    def to_json(self) -> dict:
        return jsonable(self, extra=("changed",))


class Refused(RemotectlError):
    pass


@dataclass
class AddOptions:
    name: Optional[str] = None
    address: Optional[str] = None
    port: int = lifecycle.DEFAULT_PORT
    reconnect_interval: str = lifecycle.DEFAULT_RECONNECT_INTERVAL
    dry_run: bool = False
    firewall: bool = True
    wait: float = 120.0
    probe_timeout: float = 3.0
    poll: float = 1.0


def host_name(destination: str) -> str:
    """The host part of an SSH destination [user@]host[:port]."""
    host = destination.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.split(":", 1)[0] if host.count(":") == 1 else host


def cluster_facts(cluster, name: str):
    cib = xmlsafe.parse(cluster.cib_xml(), "CIB")
    status = read_status(cluster.crm_mon_xml())
    return cib, status


def _existing(cib, name: str):
    """(the remote node `name` as the inventory configures it when its connection resource is `name`, other
    clashes of the name in the configuration)."""
    from remotectl.pacemaker.inventory import inventory_from_cib

    node = inventory_from_cib(cib).node(name)
    ours = node if node is not None and node.type == "remote" and node.connection == name else None
    clashes = lifecycle.ids_in_cib(cib, name)
    if ours is not None:
        clashes = [tag for tag in clashes if tag not in ("primitive", "node")]  # the resource and its node entry
    elif node is not None:
        clashes.append(f"a {node.type} node")
    return ours, clashes


def cluster_key(cluster_runner: Runner) -> bytes:
    from remotectl.actions.authkey.facts import inspect_node

    facts = inspect_node(cluster_runner, None, version=False)
    return hostops.read_key_bytes(cluster_runner, facts.location.path)


def _sources(status) -> List[str]:
    return [n.name for n in status.nodes.values() if n.type == "cluster" and n.online]


def probe_from_cluster(sources: List[str], runner_for: RunnerFor, address: str, port: int, timeout: float):
    from remotectl.transport.fanout import fan_out

    outcomes = fan_out(lambda node: hostops.tcp_probe(runner_for(node), address, port, timeout), sources)
    return {o.item: (o.value if o.ok else f"error {o.error}") for o in outcomes}


def _blocked(results: dict) -> List[str]:
    return [f"{node} ({verdict})" for node, verdict in results.items() if verdict not in OK_TCP]


def firewall_plan(state: hostops.HostState, port: int) -> hostfirewall.FirewallPlan:
    """What node add does to the host's firewall, in the terms of the one that is active (see
    hostfirewall.FirewallPlan); raw nftables only when neither firewalld nor ufw is."""
    kind = state.firewall
    if kind == hostfirewall.FIREWALLD:
        return hostfirewall.firewalld_plan(state.firewalld_runtime, state.firewalld_permanent,
                                           state.firewalld_marker, state.firewalld_zone or "public")
    if kind == hostfirewall.UFW:
        return hostfirewall.ufw_plan(state.ufw_added, port, lifecycle.nft_comment(port))
    chain = lifecycle.nft_input_chain(state.nft_ruleset) if kind == hostfirewall.NFTABLES else None
    if chain is None:
        return hostfirewall.FirewallPlan(kind)
    family, table, name, policy = chain
    if lifecycle.nft_comment(port) in state.nft_ruleset:
        # Only in the live ruleset, not in the configuration: the trial rule of a run that was killed before the
        # port was proven reachable; this run's trial owns it (removed again if the trial fails).
        action = "present" if state.nft_persisted_in else "trial-leftover"
        return hostfirewall.FirewallPlan(kind, action, (family, table, name))
    return hostfirewall.FirewallPlan(kind, "open" if policy == "drop" else None, (family, table, name))


def add_node(cluster, runner_for: RunnerFor, host: str, options: AddOptions) -> LifecycleResult:
    """Steps: preflight, firewall, reachability from every cluster node, key, service, listening, pre-join check,
    connection resource, online. See the module docstring."""
    name = options.name or host_name(host)
    address = options.address or host_name(host)
    result = LifecycleResult("add", name, host, address=address, port=options.port)
    reporter = Reporter()
    run_steps(result, reporter, lambda: _add(cluster, runner_for, host, name, address, options, result, reporter))
    if result.outcome == "failed" and result.changed:
        reporter.info("changes made so far: " + "; ".join(f"{s.step} (undo: {s.undo})" for s in result.steps
                                                          if s.status == "done" and s.undo)
                      + "; run the same command again to continue", node=name, code="node-add-partial")
    return result


def run_steps(result: LifecycleResult, reporter: Reporter, work) -> LifecycleResult:
    """Run ``work()`` (the steps of one node command): a refusal or a failure ends it with that outcome and a
    last step saying why; every node command shares this."""
    result.reports = reporter.reports
    try:
        work()
    except Refused as exc:
        result.outcome = "refused"
        result.add("refused", "refused", exc.message)
    except RemotectlError as exc:
        result.outcome = "failed"
        result.add("error", "failed", exc.message)
        reporter.error(exc.message, node=result.node, code="node-step-failed")
    return result.finish()


def _add(cluster, runner_for, host, name, address, options, result, reporter) -> None:
    try:
        values.check_name("node", name)
    except RemotectlError as exc:
        raise Refused(exc.message) from None
    if lifecycle.name_refusal(name):
        raise Refused(lifecycle.name_refusal(name))
    if values.parse_interval_ms(options.reconnect_interval) <= 0:
        raise Refused(f"--reconnect-interval {options.reconnect_interval!r} is not an interval (e.g. 60s)")
    port = options.port
    # preflight: nothing is changed here
    cib, status = cluster_facts(cluster, name)
    primitive, clashes = _existing(cib, name)
    if clashes:
        raise Refused(f"the name {name} is taken in the CIB (by: {', '.join(sorted(set(clashes)))}); "
                      "choose another with --name")
    if primitive is not None and (primitive.address, primitive.port) != (address, port):
        raise Refused(f"a connection resource {name} already exists for {primitive.address}:{primitive.port}, "
                      f"not {address}:{port}")
    node_status = status.nodes.get(name)
    if node_status is not None and primitive is None:
        raise Refused(f"a {node_status.type} node {name} is already known to the cluster")
    online = node_status is not None and node_status.online
    host_facts = host_preflight(cluster, runner_for, host, port, status, online, options, result)
    result.add("preflight", "checked",
               f"{host_facts.state.unit}.service installed ({host_facts.versions}); name {name} "
               f"{'already configured' if primitive is not None else 'free'}; cluster key {result.fingerprint}")
    if options.dry_run:
        plan_only(result, host_facts, primitive is None, online, runner_for, address, port, options,
                   f"create ocf:pacemaker:remote {name} server={address} port={port}")
        return
    prepare_host(cluster, runner_for, host, name, address, port, host_facts, options, result, reporter,
                  pre_join=not online and primitive is None)
    if primitive is None:
        xml = lifecycle.remote_primitive(name, address, port, options.reconnect_interval)
        cluster.check_tool(tools.cib_create_glued("resources", xml))
        result.add("resource", "done", f"ocf:pacemaker:remote {name} server={address} port={port} "
                                       f"reconnect_interval={options.reconnect_interval}",
                   undo=f"remotectl node remove {name}")
    else:
        result.add("resource", "unchanged", f"connection resource {name} exists")
    online_step(cluster, name, online, options, result)


def online_step(cluster, name: str, online: bool, options, result) -> None:
    if online:
        result.add("online", "unchanged", f"{name} is online")
        return
    if not wait_online(cluster, name, options.wait, options.poll):
        raise RemotectlError(f"{name} is not online after {options.wait:g} s (see crm_mon; run again to continue)")
    result.add("online", "done", f"{name} is online")


@dataclass
class HostFacts:
    """What the preflight learnt about the host: its state, the cluster's key, the firewall plan."""

    runner: Runner
    state: hostops.HostState
    key: bytes = field(repr=False)
    sources: List[str]
    firewall: hostfirewall.FirewallPlan
    versions: str


def host_preflight(cluster, runner_for, host, port, status, online, options, result) -> HostFacts:
    """The host's half of the preflight (add and add-guest): a cluster node online, pacemaker-remote installed and
    compatible, no connection held there by another cluster, the cluster's key, the firewall plan. Changes nothing."""
    sources = _sources(status)
    if not sources:
        raise Refused("no cluster node is online")
    runner = runner_for(host)
    state = hostops.host_state(runner, port, result.address or "", firewall=True)
    if state.unit is None:
        raise Refused(f"{host}: pacemaker-remote is not installed (no pacemaker_remote.service)")
    from remotectl.pacemaker.authkey import fingerprint, parse_version

    cluster_version = parse_version(status.dc_version or "")
    host_version = parse_version(state.version_line or "")
    refusal = lifecycle.version_refusal(cluster_version, host_version)
    if refusal:
        raise Refused(f"{host}: {refusal}")
    if state.established and not online:
        raise Refused(f"{host}: its pacemaker-remoted already has a connection on {port} from "
                      f"{', '.join(state.established)}: another cluster holds it")
    key = cluster_key(cluster.runner)
    result.fingerprint = fingerprint(key)
    plan = firewall_plan(state, port) if options.firewall else hostfirewall.FirewallPlan(hostfirewall.NONE)
    versions = f"pacemaker-remoted {'.'.join(map(str, host_version))}, cluster {status.dc_version or '?'}"
    return HostFacts(runner, state, key, sources, plan, versions)


def prepare_host(cluster, runner_for, host, name, address, port, facts: HostFacts, options, result, reporter,
                  pre_join: bool) -> None:
    """Firewall (a trial until the port is proven reachable from every cluster node), the cluster's key, the
    service and its port, and the pre-join check: the host's steps of add and add-guest."""
    runner, state, firewall = facts.runner, facts.state, facts.firewall
    opened_now = firewall.action == "trial-leftover"
    if firewall.action == "open":
        _firewall_trial(runner, firewall, port)
        opened_now = True
    probes = probe_from_cluster(facts.sources, runner_for, address, port, options.probe_timeout)
    blocked = _blocked(probes)
    if blocked:
        if opened_now:
            _firewall_undo(runner, firewall, port)
        raise Refused(f"{address}:{port} is not reachable from cluster node(s) {', '.join(blocked)} "
                      f"(a firewall between them drops it; 'refused' would mean reachable){_nothing(opened_now)}")
    _firewall_keep(runner, host, name, firewall, port, opened_now, options, result, reporter)
    result.add("reachability", "checked", ", ".join(f"{n}: {v}" for n, v in probes.items()))
    from remotectl.actions.authkey.push import PushOptions, push_one
    from remotectl.actions.targets import Target

    pushed = push_one(Target(label=name, host=host), runner, facts.key, PushOptions())
    facts.key = b""  # drop the bytes as soon as they are installed
    if not pushed.ok:
        raise RemotectlError(f"{host}: the key could not be installed: {pushed.error}")
    result.add("key", "done" if pushed.status == "written" else "unchanged",
               f"{pushed.path} {pushed.fingerprint}" + (f" (previous kept as {pushed.backup})" if pushed.backup
                                                        else ""),
               undo=f"rm {pushed.path}" if pushed.status == "written" else None)
    if state.enabled == "enabled" and state.active == "active":
        result.add("service", "unchanged", f"{state.unit} enabled and active")
    else:
        hostops.systemctl(runner, "enable", state.unit)
        result.add("service", "done", f"systemctl enable --now {state.unit}",
                   undo=f"systemctl disable --now {state.unit}")
    if not hostops.wait_listening(runner, port, min(options.wait, 60.0)):
        raise RemotectlError(f"{host}: {state.unit} does not listen on {port} after {min(options.wait, 60):g} s")
    result.add("listening", "checked", f"{state.unit} listens on {port}")
    if pre_join:
        _pre_join(cluster, runner, host, address, port, options, result)
    else:
        result.add("pre-join check", "skipped", "the node is configured already")


def _firewall_trial(runner: Runner, firewall: hostfirewall.FirewallPlan, port: int) -> None:
    """Open the port for the reachability test (kept only once every cluster node got through)."""
    if firewall.kind == hostfirewall.FIREWALLD:
        hostops.firewalld_open(runner, firewall.where, port)
    elif firewall.kind == hostfirewall.UFW:
        hostops.ufw_open(runner, port)
    else:
        hostops.nft_open(runner, *firewall.where, port, lifecycle.nft_comment(port))


def _firewall_undo(runner: Runner, firewall: hostfirewall.FirewallPlan, port: int) -> None:
    if firewall.kind == hostfirewall.FIREWALLD:
        hostops.firewalld_close(runner, firewall.where, port)
    elif firewall.kind == hostfirewall.UFW:
        hostops.ufw_close(runner, port)
    else:
        hostops.nft_close(runner, *firewall.where, lifecycle.nft_comment(port))


def _firewall_keep(runner, host, name, firewall, port, opened_now, options, result, reporter) -> None:
    """Make the trial's rule stay (across reboots) and say what was changed, in that firewall's own terms."""
    comment = lifecycle.nft_comment(port)
    kind, action = firewall.kind, firewall.action
    if action is None:
        result.add("firewall", "skipped", "no firewall change needed" if options.firewall else "--no-firewall")
        return
    if action == "other":
        what = f"{port}/tcp is open in firewalld {firewall.where_text}" if kind == hostfirewall.FIREWALLD else \
            f"a ufw rule allows {port}/tcp"
        result.add("firewall", "unchanged", f"{what} already (not by node add: node remove leaves it)")
        return
    if kind == hostfirewall.FIREWALLD:
        runtime = firewall.runtime_open or action == "open"  # the trial opened it
        hostops.firewalld_keep(runner, firewall.where, port, runtime=not runtime, permanent=not firewall.permanent_open)
        changed = opened_now or not (runtime and firewall.permanent_open)
        marker = hostfirewall.firewalld_marker(port)
        if changed:
            result.add("firewall", "done", f"firewalld: {port}/tcp opened in {firewall.where_text}, runtime and "
                                           f"permanent (recorded in {marker})",
                       undo=f"firewall-cmd [--permanent] --zone={firewall.where} --remove-port={port}/tcp; "
                            f"rm {marker}")
        else:
            result.add("firewall", "unchanged", f"firewalld: {port}/tcp open in {firewall.where_text} by node add")
        return
    if kind == hostfirewall.UFW:
        if opened_now:
            result.add("firewall", "done", f"ufw: allow {port}/tcp (comment {comment})",
                       undo=f"ufw delete allow {port}/tcp comment {comment}")
        else:
            result.add("firewall", "unchanged", f"ufw rule {comment} already there")
        return
    chain = " ".join(firewall.where)
    persisted = hostops.nft_persist(runner, *firewall.where, port, comment)
    if persisted == "none":
        reporter.warning(f"{host}: no /etc/nftables.conf to keep the rule in: it is lost at the next reboot",
                         node=name, code="firewall-not-persistent")
    where = f"; kept in {persisted.split(' ', 1)[1]}" if persisted != "none" else ""
    if opened_now or persisted.startswith("added"):
        result.add("firewall", "done", f"nftables: accept tcp dport {port} in {chain} (comment {comment}){where}",
                   undo=f"nft delete rule {chain} handle <the rule with comment {comment}>, and its "
                        "line in the nftables configuration")
    else:
        result.add("firewall", "unchanged", f"nftables rule {comment} already there{where}")


def firewall_change(firewall: hostfirewall.FirewallPlan, port: int) -> str:
    """The plan's words for opening the port."""
    if firewall.kind == hostfirewall.FIREWALLD:
        return f"firewalld: open {port}/tcp in {firewall.where_text}, runtime and permanent"
    if firewall.kind == hostfirewall.UFW:
        return f"ufw: allow {port}/tcp (comment {lifecycle.nft_comment(port)})"
    return f"nftables: accept tcp dport {port} in {firewall.where_text}"


def _nothing(opened_now: bool) -> str:
    return "; the trial firewall rule was removed again, nothing was changed" if opened_now else \
        "; nothing was changed"


def _pre_join(cluster, runner, host, address, port, options, result) -> None:
    state = hostops.host_state(runner, port)
    if state.established:
        raise Refused(f"{host}: pacemaker-remoted already has a connection on {port} from "
                      f"{', '.join(state.established)}: another cluster holds it (nothing more was changed)")
    from remotectl.transport import prejoin

    source = cluster.runner.name
    check = prejoin.full_check_from(cluster.runner, address, port, timeout=max(options.probe_timeout, 5.0))
    if check.get("verdict") != "match":
        raise RemotectlError(f"pre-join check of {address}:{port} from {source} failed: {check.get('verdict')} "
                             f"({check.get('hint') or check.get('detail') or ''})")
    result.add("pre-join check", "checked", f"from {source}: handshake and registration accepted with the "
               f"cluster's key (protocol {check.get('protocol_version')})")


def plan_only(result, facts: HostFacts, configure: bool, online: bool, runner_for, address, port, options,
               configuration: str) -> None:
    result.outcome = "dry-run"
    state, firewall, sources = facts.state, facts.firewall, facts.sources
    if firewall.action == "open":
        result.add("firewall", "would", f"{firewall_change(firewall, port)}; then test the port from "
                                        f"{', '.join(sources)}")
    else:
        if firewall.action == "trial-leftover":
            result.add("firewall", "would", f"keep the {firewall.kind} rule an interrupted run left in "
                                            f"{firewall.where_text} (only live, not kept) once the port proves "
                                            "reachable")
        probes = probe_from_cluster(sources, runner_for, address, port, options.probe_timeout)
        result.add("reachability", "would", ", ".join(f"{n}: {v}" for n, v in probes.items()))
    result.add("key", "would", "install the cluster's key (atomic, 0400 hacluster:haclient)")
    if not (state.enabled == "enabled" and state.active == "active"):
        result.add("service", "would", f"systemctl enable --now {state.unit}")
    if configure:
        result.add("pre-join check", "would", "full handshake + registration")
        result.add("resource", "would", configuration)
    if not online:
        result.add("online", "would", f"wait up to {options.wait:g} s")


def wait_online(cluster, name: str, timeout: float, poll: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        node = read_status(cluster.crm_mon_xml()).nodes.get(name)
        if node is not None and node.online:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
