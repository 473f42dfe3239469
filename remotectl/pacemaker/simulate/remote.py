"""Remote and guest nodes (lib/pengine/remote.c): which primitive is a connection, the implicit connection
resource of a guest or bundle node, and where a remote/guest/bundle node is reached."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Optional, Tuple

from remotectl.pacemaker.simulate.enums import Role
from remotectl.pacemaker.simulate.objects import PeNode
from remotectl.pacemaker.simulate.working_set import WorkingSet

DEFAULT_REMOTE_PORT = 3121  # DEFAULT_REMOTE_PORT (include/crm/common/remote_internal.h)


def contains_remote_node(el: ElementTree.Element, cls: Optional[str] = None, provider: Optional[str] = None,
                         agent: Optional[str] = None) -> bool:
    """``xml_contains_remote_node`` (remote.c): an ``ocf:pacemaker:remote`` primitive? ``cls``,
    ``provider`` and ``agent`` override the element's (they may come from a template)."""
    cls = el.get("class") if cls is None else cls
    provider = el.get("provider") if provider is None else provider
    agent = el.get("type") if agent is None else agent
    return (
        (agent or "").lower() == "remote"
        and (cls or "").lower() == "ocf"
        and (provider or "").lower() == "pacemaker"
    )


def node_kind(node: PeNode) -> Optional[str]:
    """The contract type: ``cluster``, ``remote``, ``guest`` (its connection has a container) or ``bundle``
    (that container is a bundle replica's); None for ping nodes."""
    if node.type == "member":
        return "cluster"
    if node.type != "remote":
        return None
    conn = node.remote_rsc
    if conn is not None and conn.container is not None:
        return "bundle" if conn.is_bundled() else "guest"
    return "remote"


def location_of(ws: WorkingSet, node_name: str, kind: str) -> Tuple[Optional[str], Optional[str], Optional[int]]:
    """(resource, address, port) for a node of the given kind, from the configuration."""
    node = ws.find_node(node_name)
    conn = node.remote_rsc if node is not None else None
    if kind == "remote":
        if conn is None:
            return None, None, None
        if conn.orphan:
            return conn.id, None, None
        server = conn.params.get("server") or conn.params.get("addr") or conn.id
        return conn.id, server, remote_port(conn.params.get("port"))
    if kind == "guest":
        if conn is None or conn.container is None:
            return None, None, None
        addr = conn.params.get("addr") or node_name
        return conn.container.id, addr, remote_port(conn.params.get("port"))
    if kind == "bundle":
        if conn is None or conn.bundle is None:
            return None, None, None
        bundle = conn.bundle
        rep = next((r for r in bundle.replicas if r.remote is conn), None)
        return bundle.rsc.id, (rep.ip if rep is not None else None), remote_port(bundle.control_port)
    return None, None, None


def host_of(node: PeNode, kind: str) -> Optional[str]:
    """The cluster node the connection (remote) or the container (guest, bundle) is active on."""
    conn = node.remote_rsc
    if conn is None:
        return None
    target = conn if kind == "remote" else conn.container
    if target is None or not target.running_on or target.role in (Role.STOPPED, Role.UNKNOWN):
        return None
    return target.running_on[0].name


def create_remote_xml(uname: str, container_id: Optional[str], allow_migrate: Optional[str], is_managed: Optional[str],
                start_timeout: Optional[str], server: Optional[str], port: Optional[str]) -> ElementTree.Element:
    """``pe_create_remote_xml``: the implicit connection primitive of a guest or bundle node."""
    remote = ElementTree.Element("primitive", {"id": uname, "class": "ocf", "provider": "pacemaker",
                                               "type": "remote"})
    meta = ElementTree.SubElement(remote, "meta_attributes", {"id": f"{uname}-meta_attributes"})
    ElementTree.SubElement(meta, "nvpair", {"name": "internal", "value": "true"})
    if container_id:
        ElementTree.SubElement(meta, "nvpair", {"name": "container", "value": container_id})
    if allow_migrate:
        ElementTree.SubElement(meta, "nvpair", {"name": "allow-migrate", "value": allow_migrate})
    if is_managed:
        ElementTree.SubElement(meta, "nvpair", {"name": "is-managed", "value": is_managed})
    if port or server:
        inst = ElementTree.SubElement(remote, "instance_attributes", {"id": f"{uname}-instance_attributes"})
        if server:
            ElementTree.SubElement(inst, "nvpair", {"name": "addr", "value": server})
        if port:
            ElementTree.SubElement(inst, "nvpair", {"name": "port", "value": port})
    ops = ElementTree.SubElement(remote, "operations")
    ElementTree.SubElement(ops, "op", {"id": f"{uname}-monitor-interval-30s", "name": "monitor",
                                       "interval": "30s", "timeout": "30s"})
    if start_timeout:
        ElementTree.SubElement(ops, "op", {"id": f"{uname}-start-interval-0", "name": "start", "interval": "0",
                                           "timeout": start_timeout})
    return remote


def remote_port(value: Optional[str]) -> Optional[int]:
    """A configured port as a number: 3121 when empty, None when it is not a port number."""
    if value is None or value.strip() == "":
        return DEFAULT_REMOTE_PORT
    v = value.strip()
    if v.isdigit() and 0 < int(v) < 65536:
        return int(v)
    return None
