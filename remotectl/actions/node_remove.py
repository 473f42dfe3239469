"""`remotectl node drain|resume|remove NODE`: take a remote node out of service without fencing, bring it back,
or remove it (or a guest node) from the cluster and clean its host. Results are `LifecycleResult`s with one
`Step` per step."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional

from remotectl.actions.node_lifecycle import (LifecycleResult, Refused, RunnerFor, host_name, run_steps,
                                              wait_online)
from remotectl.pacemaker import hostfirewall, lifecycle, tools, xmlsafe
from remotectl.pacemaker.inventory import GUEST_META_NAMES, inventory_from_cib
from remotectl.pacemaker.status import read_status
from remotectl.reports import RemotectlError, Reporter
from remotectl.transport import hostops


@dataclass
class DrainOptions:
    wait: float = 120.0
    force: bool = False
    poll: float = 1.0


def _configured(cluster, name: str):
    inventory = inventory_from_cib(cluster.cib_xml())
    return inventory.node(name)


def _drain_target(cluster, name: str, force: bool):
    """(the node's configuration, the resource whose target-role drains it)."""
    node = _configured(cluster, name)
    if node is None:
        raise Refused(f"{name} is not a node of this cluster")
    if node.type == "cluster":
        raise Refused(f"{name} is a cluster node; drain works on remote and guest nodes")
    if node.type == "bundle":
        raise Refused(f"{name} is a bundle node: stop its bundle instead")
    if node.type == "guest":
        if not force:
            raise Refused(f"{name} is a guest node: draining it stops the guest itself ({node.container}); "
                          "add --force to do that")
        return node, node.container
    return node, node.connection


def _meta(cluster, resource: str, name: str = "target-role") -> Optional[str]:
    result = cluster.run_tool(tools.resource_meta_get(resource, name))
    if result.rc != 0:
        return None
    value = tools.attribute_value(result.stdout)
    return value


def _wait(cluster, test, timeout: float, poll: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if test(read_status(cluster.crm_mon_xml())):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def _drain(cluster, name: str, options: DrainOptions, result: LifecycleResult) -> None:
    node, resource = _drain_target(cluster, name, options.force)
    before = read_status(cluster.crm_mon_xml()).nodes.get(name)
    stopped = _meta(cluster, resource) == "Stopped"
    if stopped and (before is None or not before.online):
        result.add("standby", "unchanged", f"{name} is drained already")
        result.add("disable", "unchanged", f"{resource} target-role=Stopped")
        return
    _standby(cluster, name, options.wait, result)
    cluster.check_tool(tools.resource_meta_set(resource, "target-role", "Stopped"))
    if not _wait(cluster, lambda st: not (st.nodes.get(name) and st.nodes[name].online), options.wait, options.poll):
        if not stopped:  # set all the same: the report names it
            result.add("disable", "done", f"{resource} target-role=Stopped", undo=f"remotectl node resume {name}")
        raise RemotectlError(f"{name} is still connected {options.wait:g} s after disabling {resource}")
    result.add("disable", "done" if not stopped else "unchanged", f"{resource} target-role=Stopped: "
               f"{'the guest is stopped' if node.type == 'guest' else 'the connection is closed'}",
               undo=f"remotectl node resume {name}")


def _standby(cluster, name: str, wait: float, result: LifecycleResult) -> None:
    """Standby, and wait until no resource runs on the node any more."""
    from remotectl.actions.node_state import standby

    change = standby(cluster, [name], wait=wait).changes[0]
    if not (change.ok and change.settled) and change.changed:
        # set all the same (the wait failed): the report names it, so that a rerun or an undo can follow
        result.add("standby", "done", f"{name} in standby", undo=f"remotectl unstandby {name}")
    if not change.ok:
        raise RemotectlError(f"standby of {name} failed: {change.error}")
    if not change.settled:
        raise RemotectlError(f"{name} still runs resources after {wait:g} s in standby")
    result.add("standby", "done" if change.changed else "unchanged", f"{name} in standby, no resource runs there",
               undo=f"remotectl unstandby {name}")


def drain_node(cluster, name: str, options: DrainOptions) -> LifecycleResult:
    result = LifecycleResult("drain", name, None)
    return run_steps(result, Reporter(), lambda: _drain(cluster, name, options, result))


def _resume(cluster, name: str, options: DrainOptions, result: LifecycleResult) -> None:
    from remotectl.actions.node_state import unstandby

    node, resource = _drain_target(cluster, name, True)
    if node.type == "remote" and node.address:
        _wait_listening(cluster, node.address, node.port or lifecycle.DEFAULT_PORT, options, result)
    if _meta(cluster, resource) is not None:
        cluster.check_tool(tools.resource_meta_delete(resource, "target-role"))
        result.add("enable", "done", f"{resource}: target-role removed")
    else:
        result.add("enable", "unchanged", f"{resource} has no target-role")
    if not wait_online(cluster, name, options.wait, options.poll):
        raise RemotectlError(f"{name} is not online {options.wait:g} s after enabling {resource}")
    result.add("online", "checked", f"{name} is online")
    change = unstandby(cluster, [name], wait=options.wait).changes[0]
    if not change.ok:
        raise RemotectlError(f"unstandby of {name} failed: {change.error}")
    if not change.settled:
        raise RemotectlError(f"{name} still in standby after {options.wait:g} s")
    result.add("unstandby", "done" if change.changed else "unchanged", f"{name} can take resources")


def _wait_listening(cluster, address: str, port: int, options: DrainOptions, result: LifecycleResult) -> None:
    """Enable the connection only once the host's pacemaker-remoted accepts TCP from the cluster node remotectl
    talks to: a start against a host still booting fails and leaves a failed action behind."""
    deadline = time.monotonic() + options.wait
    while True:
        verdict = hostops.tcp_probe(cluster.runner, address, port)
        if verdict == "open":
            result.add("listening", "checked", f"{address}:{port} accepts connections from {cluster.runner.name}")
            return
        if time.monotonic() >= deadline:
            raise RemotectlError(f"{address}:{port} does not accept connections from {cluster.runner.name} after "
                                 f"{options.wait:g} s ({verdict}); nothing was changed")
        time.sleep(options.poll)


def resume_node(cluster, name: str, options: DrainOptions) -> LifecycleResult:
    result = LifecycleResult("resume", name, None)
    return run_steps(result, Reporter(), lambda: _resume(cluster, name, options, result))


@dataclass
class RemoveOptions:
    host: Optional[str] = None  # where to clean up; default: the connection's server, else NODE
    keep_key: bool = False
    remove_constraints: bool = False
    dry_run: bool = False
    wait: float = 120.0
    poll: float = 1.0


def remove_node(cluster, runner_for: RunnerFor, name: str, options: RemoveOptions) -> LifecycleResult:
    result = LifecycleResult("remove", name, options.host)
    reporter = Reporter()
    return run_steps(result, reporter, lambda: _remove(cluster, runner_for, name, options, result, reporter))


def _remove(cluster, runner_for, name, options, result, reporter) -> None:
    node = _configured(cluster, name)
    if node is not None and node.type not in ("remote", "guest"):
        raise Refused(f"{name} is a {node.type} node; node remove handles remote and guest nodes only")
    guest = node is not None and node.type == "guest"
    host = options.host or (node.address if node is not None and node.address else name)
    result.host = host
    port = (node.port if node is not None and node.port else lifecycle.DEFAULT_PORT)
    result.address, result.port = host_name(host), port
    cib = xmlsafe.parse(cluster.cib_xml(), "CIB")
    constraints = lifecycle.constraints_naming(cib, name)
    if constraints and not options.remove_constraints:
        raise Refused(f"constraints name {name}: {', '.join(c.get('id') or '?' for c in constraints)}; "
                      "add --remove-constraints to delete them (nothing was changed)")
    metas = [key for key in GUEST_META_NAMES if _meta(cluster, node.container, key) is not None] if guest else []
    if options.dry_run:
        _plan_remove(cluster, runner_for(host), name, node, cib, constraints, metas, port, options, result)
        return
    if guest:
        # The guest keeps running: standby moves its resources away, then its container stops being a guest.
        _standby(cluster, name, options.wait, result)
    elif node is not None:
        _drain(cluster, name, DrainOptions(wait=options.wait, poll=options.poll), result)
    for constraint in constraints:
        cluster.check_tool(tools.cib_delete_glued(lifecycle.element_xml("rsc_location", constraint.get("id"))))
        result.add("constraint", "done", f"deleted {constraint.get('id')}")
    if guest:
        for key in metas:
            cluster.check_tool(tools.resource_meta_delete(node.container, key))
        if not _wait(cluster, lambda st: not (st.nodes.get(name) and st.nodes[name].online), options.wait,
                     options.poll):
            raise RemotectlError(f"{name} is still connected {options.wait:g} s after deleting remote-node from "
                                 f"{node.container}")
        # The implicit connection resource (named as the node) is gone; its history goes too, for the same
        # reason as a remote's below.
        _wait_history_gone(cluster, name, options)
        result.add("resource", "done", f"deleted {', '.join(metas)} from {node.container} (it keeps running), "
                                       f"and the history of the connection {name}",
                   undo=f"remotectl node add-guest {host} --resource {node.container}")
    elif node is not None:
        # Its history first (it is stopped and disabled: nothing restarts it), so no orphan of it can outlive the
        # node's status entry: an orphan connection without a node_state is an unclean node, which gets fenced.
        cluster.check_tool(tools.resource_cleanup(node.connection))
        cluster.check_tool(tools.cib_delete_glued(lifecycle.element_xml("primitive", node.connection)))
        _wait_history_gone(cluster, node.connection, options)
        result.add("resource", "done", f"deleted connection resource {node.connection} and its history")
    else:
        result.add("resource", "unchanged", f"no connection resource {name}")
    _forget(cluster, name, options, result)
    _clean_host(runner_for(host), host, port, options, result)


def _plan_remove(cluster, runner, name, node, cib, constraints, metas, port, options, result) -> None:
    """What remove would change, from the same facts the real run reads (nothing is changed)."""
    result.outcome = "dry-run"
    if node is not None and node.type == "guest":
        result.add("drain", "would", f"standby {name} and wait until no resource runs there ({node.container} "
                                     "keeps running)")
    elif node is not None:
        result.add("drain", "would", f"standby {name}, wait until no resource runs there, then "
                                     f"target-role=Stopped on {node.connection}")
    for constraint in constraints:
        result.add("constraint", "would", f"delete {constraint.get('id')}")
    if node is not None and node.type == "guest":
        result.add("resource", "would", f"delete {', '.join(metas)} from {node.container}, and the history of "
                                        f"the connection {name}")
    elif node is not None:
        result.add("resource", "would", f"delete connection resource {node.connection} and its history")
    else:
        result.add("resource", "unchanged", f"no connection resource {name}")
    in_nodes, in_status = lifecycle.node_entries(cib, name)
    if node is not None or in_nodes or in_status or name in read_status(cluster.crm_mon_xml()).nodes:
        result.add("forget", "would", f"crm_node --force --remove={name}")
    else:
        result.add("forget", "unchanged", f"{name} is in neither the CIB nor crm_mon")
    state = hostops.host_state(runner, port, firewall=True)
    if state.unit is not None and (state.enabled == "enabled" or state.active == "active"):
        result.add("service", "would", f"systemctl disable --now {state.unit}")
    for change in _firewall_changes(state, port):
        result.add("firewall", "would", f"undo {change}")
    if not options.keep_key:
        from remotectl.actions.authkey.facts import inspect_node

        facts = inspect_node(runner, None, version=False)
        if facts.key.exists:
            result.add("key", "would", f"remove {facts.location.path} ({facts.key.fingerprint})")


def _wait_history_gone(cluster, resource: str, options: RemoveOptions) -> None:
    deadline = time.monotonic() + options.wait
    while lifecycle.has_history(xmlsafe.parse(cluster.cib_xml(), "CIB"), resource):
        if time.monotonic() >= deadline:
            raise RemotectlError(f"the operation history of {resource} is still in the CIB {options.wait:g} s after "
                                 f"deleting it (crm_resource --cleanup --resource={resource}, then run again)")
        cluster.run_tool(tools.resource_cleanup(resource))
        time.sleep(options.poll)


def _firewall_changes(state: hostops.HostState, port: int) -> List[str]:
    """node add's firewall changes still on the host, in each firewall's own terms (whichever is active now)."""
    comment = lifecycle.nft_comment(port)
    changes = []
    if state.firewalld_marker:
        changes.append(f"firewalld: {port}/tcp in zone {state.firewalld_marker} "
                       f"({hostfirewall.firewalld_marker(port)})")
    if hostfirewall.ufw_rule_state(state.ufw_added, port, comment) == "ours":
        changes.append(f"ufw: allow {port}/tcp comment {comment}")
    if comment in state.nft_ruleset or state.nft_persisted_in:
        changes.append(f"nftables: the rule {comment}"
                       + (f" and its line in {', '.join(state.nft_persisted_in)}" if state.nft_persisted_in else ""))
    return changes


def _undo_firewall(runner, state: hostops.HostState, port: int, result: LifecycleResult) -> None:
    """Undo what node add opened (and only that): firewalld's recorded port, ufw's and nftables' marked rules."""
    comment = lifecycle.nft_comment(port)
    undone = []
    if state.firewalld_marker:
        hostops.firewalld_close(runner, state.firewalld_marker, port,
                                running=state.firewall == hostfirewall.FIREWALLD)
        undone.append(f"firewalld: closed {port}/tcp in zone {state.firewalld_marker}")
    if hostfirewall.ufw_rule_state(state.ufw_added, port, comment) == "ours":
        hostops.ufw_close(runner, port)
        undone.append(f"ufw: deleted allow {port}/tcp (comment {comment})")
    chain = lifecycle.nft_input_chain(state.nft_ruleset)
    removed = hostops.nft_close(runner, *chain[:3], comment) if chain and comment in state.nft_ruleset else 0
    files_changed = hostops.nft_unpersist(runner, comment)
    if removed or files_changed:
        undone.append(f"nftables: removed {removed} rule(s) {comment}"
                      + (f" and its line in {', '.join(files_changed)}" if files_changed else ""))
    if undone:
        result.add("firewall", "done", "; ".join(undone))
    else:
        result.add("firewall", "unchanged", "no firewall rule of node add")


def _forget(cluster, name: str, options: RemoveOptions, result: LifecycleResult) -> None:
    """No trace of the node in the CIB's nodes and status sections nor in crm_mon."""
    def left() -> tuple:
        cib = xmlsafe.parse(cluster.cib_xml(), "CIB")
        in_nodes, in_status = lifecycle.node_entries(cib, name)
        shown = name in read_status(cluster.crm_mon_xml()).nodes
        return in_nodes, in_status, shown

    if not any(left()):
        result.add("forget", "unchanged", f"{name} is in neither the CIB nor crm_mon")
        return
    deadline = time.monotonic() + options.wait
    while True:
        cluster.run_tool(tools.node_forget(name))
        state = left()
        if not any(state):
            break
        if time.monotonic() >= deadline:
            raise RemotectlError(f"{name} is still in the CIB or crm_mon after crm_node --remove "
                                 f"(nodes: {state[0]}, status: {state[1]}, crm_mon: {state[2]})")
        time.sleep(options.poll)
    result.add("forget", "done", f"crm_node --force --remove={name}: gone from the CIB's nodes and status, "
                                 "and from crm_mon")


def _clean_host(runner, host: str, port: int, options: RemoveOptions, result: LifecycleResult) -> None:
    state = hostops.host_state(runner, port, firewall=True)
    if state.unit is not None and (state.enabled == "enabled" or state.active == "active"):
        hostops.systemctl(runner, "disable", state.unit)
        result.add("service", "done", f"systemctl disable --now {state.unit}",
                   undo=f"systemctl enable --now {state.unit}")
    else:
        result.add("service", "unchanged", f"{state.unit or 'pacemaker_remote'} disabled and stopped")
    _undo_firewall(runner, state, port, result)
    if options.keep_key:
        result.add("key", "skipped", "--keep-key")
        return
    from remotectl.actions.authkey.facts import inspect_node
    from remotectl.transport import files

    facts = inspect_node(runner, None, version=False)
    if facts.key.exists:
        files.remove_file(runner, facts.location.path)
        result.add("key", "done", f"removed {facts.location.path} ({facts.key.fingerprint})")
    else:
        result.add("key", "unchanged", f"no key at {facts.location.path}")
