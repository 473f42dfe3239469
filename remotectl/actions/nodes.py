"""List cluster, remote, guest and bundle nodes, and turn node names into the addresses other actions use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from remotectl.jsonable import json_field
from remotectl.reports import RemotectlError, Report


@dataclass
class NodeList:
    nodes: list
    source: str = json_field(omit=True)  # "live" (crm_mon + the CIB's inventory) or "cib-file" (the pure model)
    # --tls: the cluster's mode over the nodes that answered (psk|x509|mixed|unknown, pacemaker.x509.cluster_mode)
    tls_mode: Optional[str] = None
    reports: List[Report] = field(default_factory=list)


def list_nodes(cluster, type_filter: Optional[str] = None) -> NodeList:
    """Live: crm_mon is the authority on state, the CIB adds addresses. Offline: the pure CIB model."""
    from remotectl.pacemaker import nodes as model

    if type_filter is not None and type_filter not in model.NODE_TYPES:
        raise RemotectlError(f"unknown node type {type_filter!r} (choose from {', '.join(model.NODE_TYPES)})")
    from remotectl.pacemaker import xmlsafe
    from remotectl.pacemaker.simulate.schema import schema_reports

    if cluster.live:
        nodes = model.nodes_from_crm_mon(*cluster.status_and_inventory_xml())
        return NodeList([n for n in nodes if not type_filter or n.type == type_filter], "live")
    root = xmlsafe.parse(cluster.cib_xml(), "CIB")
    nodes = model.nodes_from_cib(root)
    if type_filter:
        nodes = [node for node in nodes if node.type == type_filter]
    return NodeList(nodes, "cib-file", reports=schema_reports(root))


def with_tls_modes(result: NodeList, runner_for: Callable[[str], object], *, on_done=None,
                   workers: int = 16) -> NodeList:
    """`nodes --tls`: each node's PSK/X.509 mode, read from its own env files over SSH (one round trip per node,
    nothing secret read), since neither the CIB nor crm_mon records it. A node that cannot be read is `unknown`
    with a warning; the list's `tls_mode` is the cluster's word over those that answered (`mixed`: they cannot
    talk to each other)."""
    from dataclasses import replace

    from remotectl.actions.targets import SSH, resolve_targets
    from remotectl.actions.tls.node_certs import read_node
    from remotectl.pacemaker.x509 import cluster_mode
    from remotectl.transport.fanout import fan_out

    targets = [t for t in resolve_targets([], result.nodes, all_nodes=True, reach=SSH) if not t.error]
    outcomes = fan_out(lambda t: read_node(runner_for(t.host), certificate=False).mode, targets, workers=workers,
                       on_done=on_done)
    modes = {o.item.node: o.value for o in outcomes if o.ok}
    for outcome in outcomes:
        if not outcome.ok:
            result.reports.append(Report("warning", f"its TLS mode cannot be read: {outcome.error}",
                                         node=outcome.item.node, code="nodes-tls-unread"))
    result.nodes = [replace(n, tls_mode=modes.get(n.name, "unknown")) for n in result.nodes]
    result.tls_mode = cluster_mode(list(modes.values()))
    if result.tls_mode == "mixed":
        result.reports.append(Report("warning", "nodes differ in TLS mode ("
                                     + ", ".join(f"{m}: {', '.join(sorted(n for n in modes if modes[n] == m))}"
                                                 for m in sorted(set(modes.values())))
                                     + "): a PSK node and an X.509 node cannot connect; `remotectl tls enable` "
                                       "or `tls disable` switches them all together", code="nodes-tls-mixed"))
    return result


def find_node(nodes: Sequence, name: str):
    for node in nodes:
        if node.name == name:
            return node
    return None


def connect_address(node) -> str:
    """The address the cluster connects to for a remote, guest or bundle node: the configured one, else the node
    name (Pacemaker's default for server= / remote-addr)."""
    return node.address or node.name


def ssh_destination(node) -> str:
    """Where to SSH for a node: cluster nodes by name (ssh_config/DNS decide), remote and guest nodes by the
    address the cluster itself connects to."""
    if node.type == "cluster":
        return node.name
    return connect_address(node)
