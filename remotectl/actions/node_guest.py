"""`remotectl node add-guest HOST --resource RSC`: make a running VM or container resource a guest node.

A guest node is a primitive (top level, or in a top-level group) with the ``remote-node`` meta attribute: the
cluster then connects to the pacemaker-remoted inside it. The host's steps are those of `node add` (preflight,
firewall trial, the cluster's key, the service, the pre-join check); instead of a connection resource the
container resource gets ``remote-addr``/``remote-port`` and, last, ``remote-node`` (that one makes it a guest).
Same guarantees: refusals before any change, idempotent, resumable.
"""

from __future__ import annotations

from dataclasses import dataclass

from remotectl.actions.node_lifecycle import (AddOptions, LifecycleResult, Refused, RunnerFor, cluster_facts,
                                              host_name, host_preflight, online_step, plan_only, prepare_host,
                                              run_steps)
from remotectl.pacemaker import lifecycle, tools, values
from remotectl.reports import RemotectlError, Reporter


@dataclass
class GuestOptions(AddOptions):
    resource: str = ""


def add_guest(cluster, runner_for: RunnerFor, host: str, options: GuestOptions) -> LifecycleResult:
    name = options.name or host_name(host)
    address = options.address or host_name(host)
    result = LifecycleResult("add-guest", name, host, address=address, port=options.port)
    reporter = Reporter()
    return run_steps(result, reporter, lambda: _add_guest(cluster, runner_for, host, name, address, options,
                                                          result, reporter))


def _add_guest(cluster, runner_for, host, name, address, options: GuestOptions, result, reporter) -> None:
    try:
        values.check_name("node", name)
        values.check_name("resource", options.resource)
    except RemotectlError as exc:
        raise Refused(exc.message) from None
    if lifecycle.name_refusal(name):
        raise Refused(lifecycle.name_refusal(name))
    port, resource = options.port, options.resource
    cib, status = cluster_facts(cluster, name)
    from remotectl.pacemaker.inventory import guest_meta, inventory_from_cib

    inventory = inventory_from_cib(cib)
    refusal = inventory.guest_container_refusal(resource)
    if refusal:
        raise Refused(refusal)
    guest = inventory.guest_of(resource)
    configured = guest is not None and guest.name == name
    if guest is not None and not configured:
        raise Refused(f"{resource} is already the container of guest node {guest.name}")
    if configured and (guest.address, guest.port) != (address, port):
        raise Refused(f"guest node {name} exists for {guest.address}:{guest.port}, not {address}:{port}")
    wanted = guest_meta(name, address, port)
    entry = inventory.node(name)
    stale = entry is not None and entry.type == "remote" and entry.connection is None  # a <node> left behind
    clashes = [tag for tag in lifecycle.ids_in_cib(cib, name) if not ((configured or stale) and tag == "node")]
    if clashes:
        raise Refused(f"the name {name} is taken in the CIB (by: {', '.join(sorted(set(clashes)))}); "
                      "choose another with --name")
    node_status = status.nodes.get(name)
    leftover = node_status is not None and not configured
    if leftover and (node_status.online or node_status.type == "cluster"):
        raise Refused(f"a {node_status.type} node {name} is already known to the cluster")
    # An offline entry of that name left in the status (a guest whose remote-node was removed, its attributes kept)
    # is the same node coming back: Pacemaker takes it over once the resource is a guest again.
    running = status.resources.get(resource)
    if running is None or not running.active:
        raise Refused(f"{resource} is not running: start it first (its guest must be up to be prepared over SSH)")
    online = node_status is not None and node_status.online and configured
    facts = host_preflight(cluster, runner_for, host, port, status, online, options, result)
    naming = "already configured" if configured else "free (an old offline entry is reused)" if leftover else "free"
    result.add("preflight", "checked",
               f"{facts.state.unit}.service installed ({facts.versions}); {resource} runs on "
               f"{', '.join(running.nodes) or '?'}; name {name} {naming}; "
               f"cluster key {result.fingerprint}")
    settings = " ".join(f"{key}={value}" for key, value in wanted)
    if options.dry_run:
        plan_only(result, facts, not configured, online, runner_for, address, port, options,
                   f"meta {settings} on {resource}")
        return
    prepare_host(cluster, runner_for, host, name, address, port, facts, options, result, reporter,
                  pre_join=not online and not configured)
    if configured:
        result.add("resource", "unchanged", f"{resource} is the container of guest node {name}")
    else:
        for key, value in wanted:
            cluster.check_tool(tools.resource_meta_set(resource, key, value))
        result.add("resource", "done", f"meta {settings} on {resource}",
                   undo=f"crm_resource --resource {resource} --meta --delete-parameter remote-node")
    online_step(cluster, name, online, options, result)
