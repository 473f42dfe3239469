"""The configuration half of ``cluster_status()`` (lib/pengine/unpack.c): cluster options, ``<nodes>``, the remote and
guest nodes a configuration implies, and the resources. This is what decides which nodes a CIB configures;
:mod:`remotectl.pacemaker.inventory` exposes it."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.complex import unpack_resource
from remotectl.pacemaker.simulate.objects import PeNode, PeResource
from remotectl.pacemaker.simulate.remote import contains_remote_node, create_remote_xml
from remotectl.pacemaker.simulate.rules import unpack_dataset_nvpairs
from remotectl.pacemaker.simulate.working_set import WorkingSet

_RSC_TAGS = ("primitive", "group", "clone", "master", "bundle")


def unpack_config(ws: WorkingSet) -> None:
    """``unpack_config`` (unpack.c): the cluster options node states depend on."""
    opts: Dict[str, str] = {}
    crm_config = ws.section("crm_config")
    unpack_dataset_nvpairs(ws, crm_config, "cluster_property_set", opts, first_id="cib-bootstrap-options")

    def flag(name: str, default: bool) -> bool:
        b = values.str_to_boolean(values.cluster_option(opts, name, ws.version, values.is_boolean) or "")
        return default if b is None else b

    ws.stonith_enabled = flag("fencing-enabled", True)
    ws.maintenance_mode = flag("maintenance-mode", False)
    ws.startup_fencing = ws.stonith_enabled and flag("startup-fencing", True)
    ws.stop_orphan_resources = flag("stop-removed-resources", True)
    ws.have_quorum = values.is_true(ws.root.get("have-quorum"))
    policy = (values.cluster_option(opts, "no-quorum-policy", ws.version,
                                    values.valid_no_quorum_policy(ws.version)) or "stop").lower()
    if policy in ("suicide", "fence"):  # one policy: "suicide" is the name before 2.1.9
        if ws.stonith_enabled:
            panic = values.scan_ll(ws.root.get("no-quorum-panic")) or 0
            policy = "fence" if (panic or ws.have_quorum) else "stop"
        else:
            policy = "stop"
    ws.no_quorum_policy = policy
    if ws.version >= (2, 1, 7):
        ws.node_pending_ms = values.parse_interval_ms(opts.get("node-pending-timeout"))
    ws.legacy_failcounts = values.version_tuple(ws.root.get("crm_feature_set")) < (3, 0, 13)
    ws.enable_unfencing = False
    for holder in (ws.section("resources"), ws.rsc_defaults):
        if holder is None:
            continue
        for meta_block in holder.iter("meta_attributes"):
            for nvpair in meta_block.findall("nvpair"):
                if nvpair.get("name") in ("provides", "requires") and nvpair.get("value") == "unfencing":
                    ws.enable_unfencing = True


def handle_startup_fencing(ws: WorkingSet, node: PeNode) -> None:
    """``handle_startup_fencing`` (unpack.c): a node not seen yet is unclean when startup fencing
    applies (not a remote node without its connection)."""
    if node.type == "remote" and node.remote_rsc is None:
        return
    node.unclean = ws.startup_fencing


def unpack_nodes(ws: WorkingSet) -> None:
    """``unpack_nodes`` (unpack.c): ``<nodes><node>`` and their permanent attributes."""
    nodes_el = ws.section("nodes")
    if nodes_el is None:
        return
    for el in nodes_el:
        if el.tag != "node":
            continue
        node_id = el.get("id")
        if node_id is None:
            continue
        node = ws.create_node(node_id, el.get("uname"), el.get("type"))
        if node is None:
            return  # Pacemaker 3.0 gives up on <nodes> at a node of unknown type
        handle_startup_fencing(ws, node)
        unpack_dataset_nvpairs(ws, el, "instance_attributes", node.attrs, overwrite=False)


def unpack_remote_nodes(ws: WorkingSet, resources: ElementTree.Element) -> List[ElementTree.Element]:
    """``unpack_remote_nodes`` (unpack.c): remote nodes for top-level connections, guest nodes for ``remote-node``
    on top-level primitives and group members; returns the implicit guest connections to unpack with the rest."""
    implicit: List[ElementTree.Element] = []
    for el in list(resources):
        if contains_remote_node(el):
            rid = el.get("id")
            if rid and ws.find_node(rid) is None:
                ws.create_node(rid, rid, "remote")
            continue
        if el.tag == "primitive":
            expand_remote_rsc_meta(ws, el, implicit)
        elif el.tag == "group":
            for child in el:
                expand_remote_rsc_meta(ws, child, implicit)
    return implicit


def expand_remote_rsc_meta(ws: WorkingSet, el: ElementTree.Element, implicit: List[ElementTree.Element]) -> None:
    """``expand_remote_rsc_meta`` (unpack.c): a ``remote-node`` meta attribute makes a guest node
    and its implicit connection primitive (appended to ``implicit``)."""
    remote_name = server = port = allow_migrate = is_managed = None
    connect_timeout: Optional[str] = "60s"
    exact = ws.version >= (2, 1, 8)  # 2.1.8 matches these names case-sensitively, before any case
    for block in el:
        if (block.tag if exact else block.tag.lower()) != "meta_attributes":
            continue
        for nvpair in block:
            name = nvpair.get("name") or ""
            name = name if exact else name.lower()
            value = nvpair.get("value")
            if name == "remote-node":
                remote_name = value
            elif name == "remote-addr":
                server = value
            elif name == "remote-port":
                port = value
            elif name == "remote-connect-timeout":
                connect_timeout = value
            elif name == "remote-allow-migrate":
                allow_migrate = value
            elif name == "is-managed":
                is_managed = value
    if remote_name is None:
        return
    xml = create_remote_xml(remote_name, el.get("id"), allow_migrate, is_managed, connect_timeout, server, port)
    implicit.append(xml)
    if ws.find_node(remote_name) is None:
        ws.create_node(remote_name, remote_name, "remote")


def unpack_resources(ws: WorkingSet) -> None:
    """``unpack_resources`` (unpack.c): templates, remote and guest nodes, then every top-level resource."""
    resources = ws.section("resources")
    if resources is None:
        return
    for el in resources:
        if el.tag == "template" and el.get("id"):
            ws.templates.setdefault(el.get("id") or "", el)
    implicit = unpack_remote_nodes(ws, resources)
    top: List[PeResource] = []
    for el in list(resources) + implicit:
        if el.tag not in _RSC_TAGS or not el.get("id"):
            continue
        r = unpack_resource(ws, el, None)
        if r is not None:
            top.append(r)
    for r in top:
        setup_container(ws, r)
        link_rsc2remotenode(ws, r)


def setup_container(ws: WorkingSet, rsc: PeResource) -> None:
    """``setup_container`` (unpack.c): the ``container`` meta attribute."""
    if rsc.children:
        for c in rsc.children:
            setup_container(ws, c)
        return
    cid = rsc.meta.get("container")
    if cid and cid.lower() != rsc.id.lower() and rsc.container is None:
        container = ws.find_resource(cid)
        if container is not None:
            rsc.container = container


def link_rsc2remotenode(ws: WorkingSet, rsc: PeResource) -> None:
    """``link_rsc2remotenode`` (unpack.c)."""
    if not rsc.is_remote_node:
        return
    node = ws.find_node(rsc.id)
    if node is None:
        return
    node.remote_rsc = rsc
    if rsc.container is None:
        handle_startup_fencing(ws, node)
