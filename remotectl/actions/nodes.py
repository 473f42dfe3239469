"""List cluster, remote, guest and bundle nodes, and turn node names into the addresses other actions use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from remotectl.jsonable import json_field
from remotectl.reports import RemotectlError, Report


@dataclass
class NodeList:
    nodes: list
    source: str = json_field(omit=True)  # "live" (crm_mon + the CIB's inventory) or "cib-file" (the pure model)
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
    return NodeList(nodes, "cib-file", schema_reports(root))


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
