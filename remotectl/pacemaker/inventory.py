"""The nodes a CIB configures: the one place that decides what a cluster, remote, guest or bundle node is.

It is the configuration half of the offline model (:func:`remotectl.pacemaker.simulate.unpack_configuration`:
Pacemaker 2.1.5's ``unpack_config``, ``unpack_nodes``, ``unpack_remote_nodes``, ``unpack_resources``), so the
inventory and ``nodes_from_cib`` apply the same rules and cannot drift apart:

* cluster nodes: ``<nodes><node>`` with ``type`` absent or ``member``;
* remote nodes: every top-level ``ocf:pacemaker:remote`` primitive (node name = resource id), and a stale
  ``<node type="remote">`` entry whose connection is gone (type ``remote``, no connection);
* guest nodes: the ``remote-node`` meta attribute of a top-level primitive or of a primitive in a top-level group
  (not in a clone);
* bundle nodes: ``B-0 .. B-(n-1)`` for a bundle with a primitive and ``ip-range-start`` or ``control-port``
  (Pacemaker refuses a bundle with a primitive but neither).

Ping nodes (deprecated) are not listed. Nodes only in the status section are not configured, so not listed (a
history of a deleted connection makes the full model add an orphaned remote node; this does not).

The ``resource``/``address``/``port`` fields follow the ``remotectl nodes`` contract
(:mod:`remotectl.pacemaker.nodes`); a bundle replica without ``ip-range-start`` has ``address`` None here, because
Pacemaker then connects to the container's host, which only the status says.
Pure: XML text, bytes or an element in, data out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from remotectl.pacemaker import xmlsafe
from remotectl.pacemaker.simulate import WorkingSet, unpack_configuration
from remotectl.pacemaker.simulate.objects import PeResource
from remotectl.pacemaker.simulate.remote import location_of, node_kind

__all__ = ["ConfiguredNode", "Connection", "GUEST_META_NAMES", "Inventory", "guest_meta", "inventory_from_cib"]

CibDocument = Union[bytes, str, ElementTree.Element]
DEFAULT_GUEST_PORT = 3121  # remote-port's default


@dataclass(frozen=True)
class ConfiguredNode:
    """One node the configuration defines."""

    name: str
    type: str  # "cluster" | "remote" | "guest" | "bundle"
    resource: Optional[str] = None  # contract "resource": remote: connection; guest: container; bundle: bundle id
    connection: Optional[str] = None  # the connection resource (implicit for guest and bundle nodes)
    container: Optional[str] = None  # guest: the resource with remote-node; bundle: the replica's container
    bundle: Optional[str] = None  # bundle nodes: the bundle's id
    address: Optional[str] = None  # where pacemaker-remoted listens (None for cluster nodes)
    port: Optional[int] = None  # None for cluster nodes, or when the configured value is not a port number


@dataclass(frozen=True)
class Connection:
    """A primitive that is a Pacemaker Remote connection (``ocf:pacemaker:remote``, configured or implicit),
    including one Pacemaker makes no node for (inside a group or clone): the constraint checks warn about those."""

    id: str
    node: str  # the node it connects (Pacemaker names it after the resource)
    kind: str  # "remote" | "guest" | "bundle"
    container: Optional[str] = None  # guest: the container resource; bundle: the bundle
    is_node: bool = True  # False when Pacemaker creates no node for it
    reconnect_ms: int = 0  # the ``reconnect_interval`` parameter (remote connections), 0 when unset


class Inventory:
    """The configured nodes of one CIB, in Pacemaker's order (``<nodes>`` first, then remote and guest nodes in
    resource order, bundle replicas as their bundles are unpacked)."""

    def __init__(self, working_set: WorkingSet) -> None:
        self._ws = working_set
        self.nodes: Tuple[ConfiguredNode, ...] = tuple(_configured(working_set))
        self._by_name: Dict[str, ConfiguredNode] = {}
        for node in self.nodes:
            self._by_name.setdefault(node.name, node)

    def names(self) -> List[str]:
        return [n.name for n in self.nodes]

    def node(self, name: str) -> Optional[ConfiguredNode]:
        return self._by_name.get(name)

    def node_type(self, name: str) -> Optional[str]:
        node = self._by_name.get(name)
        return node.type if node is not None else None

    def location_of(self, name: str, kind: str) -> Tuple[Optional[str], Optional[str], Optional[int]]:
        """(resource, address, port) of node ``name`` read as a node of type ``kind`` (names match as Pacemaker
        matches them, case-insensitively); all None when the configuration has no such node."""
        return location_of(self._ws, name, kind)

    def connections(self) -> List[Connection]:
        """Every connection resource, by resource order; the implicit ones of guest and bundle nodes too."""
        out: List[Connection] = []
        for rsc in list(self._ws.prims.values()) + list(self._ws.clone_prims.values()):
            if not rsc.is_remote_node:
                continue
            node = self._ws.find_node(rsc.id)
            is_node = node is not None and node.remote_rsc is rsc
            kind = "remote"
            if rsc.container is not None:
                kind = "bundle" if rsc.is_bundled() else "guest"
            out.append(Connection(rsc.id, rsc.id, kind, _holder(rsc), is_node, rsc.remote_reconnect_ms))
        return out


    def guest_of(self, resource: str) -> Optional[ConfiguredNode]:
        """The guest node whose container is ``resource``, if any."""
        return next((n for n in self.nodes if n.type == "guest" and n.container == resource), None)

    def guest_container_refusal(self, resource: str) -> Optional[str]:
        """Why ``resource`` cannot hold a guest node, or None: Pacemaker makes guest nodes only of primitives at the
        top level or in a top-level group, and a connection resource is no VM or container."""
        rsc = self._ws.prims.get(resource)
        if rsc is None or rsc.variant != "primitive" or rsc.orphan:
            if resource in self._ws.clone_prims:
                return f"{resource} is inside a clone: a guest node's resource must be a primitive at the top " \
                       "level or in a group"
            return f"no primitive resource {resource} in the CIB (create the VM or container resource first)"
        parent = rsc.parent
        if parent is not None and not (parent.variant == "group" and parent.parent is None):
            return f"{resource} is inside a {parent.variant}: a guest node's resource must be a primitive at the top " \
                   "level or in a group (a bundle makes its own guest nodes)"
        if rsc.is_remote_node:
            return f"{resource} is a Pacemaker Remote connection, not a VM or container"
        return None


# The meta attributes of a guest node's container: what `node add-guest` sets and `node remove` deletes again,
# remote-node first (deleting it is what ends the guest node).
GUEST_META_NAMES = ("remote-node", "remote-addr", "remote-port")


def guest_meta(name: str, address: str, port: int) -> List[Tuple[str, str]]:
    """The meta attributes that make a container resource the guest node ``name`` reached at address:port, in the
    order to set them: ``remote-node`` last, because it is the one that makes the guest."""
    wanted = []
    if address != name:
        wanted.append(("remote-addr", address))
    if port != DEFAULT_GUEST_PORT:
        wanted.append(("remote-port", str(port)))
    return wanted + [("remote-node", name)]


def _holder(rsc: PeResource) -> Optional[str]:
    if rsc.container is None:
        return None
    if rsc.bundle is not None:
        return rsc.bundle.rsc.id
    return rsc.container.id


def _configured(ws: WorkingSet) -> List[ConfiguredNode]:
    out: List[ConfiguredNode] = []
    for node in ws.nodes:
        kind = node_kind(node)
        if kind is None:
            continue
        if kind == "cluster":
            out.append(ConfiguredNode(node.name, kind))
            continue
        conn = node.remote_rsc
        resource, address, port = location_of(ws, node.name, kind)
        out.append(ConfiguredNode(
            node.name, kind, resource,
            connection=conn.id if conn is not None else None,
            container=conn.container.id if conn is not None and conn.container is not None else None,
            bundle=conn.bundle.rsc.id if conn is not None and conn.bundle is not None else None,
            address=address, port=port,
        ))
    return out


def inventory_from_cib(cib: CibDocument, what: str = "CIB", *,
                       pacemaker_version: Optional[Tuple[int, ...]] = None) -> Inventory:
    """The configured nodes of ``cib``: a ``<cib>`` or its ``<configuration>`` (``cibadmin -Q --scope
    configuration``), as XML text, bytes or a parsed element, read as Pacemaker ``pacemaker_version`` reads it
    (default: the CIB's ``dc-version``, :mod:`remotectl.pacemaker.simulate.schema`). Raises RemotectlError for
    malformed XML or a schema too old to read."""
    root = cib if isinstance(cib, ElementTree.Element) else xmlsafe.parse(cib, what)
    if root.tag == "configuration":
        wrapper = ElementTree.Element("cib")
        wrapper.append(root)
        root = wrapper
    return Inventory(unpack_configuration(root, pacemaker_version=pacemaker_version))


# What inventory_from_cib reads of a CIB (simulate.unpack_configuration: unpack_config, unpack_nodes,
# unpack_resources and the WorkingSet's defaults): these <configuration> sections and the <cib> element's own
# attributes (validate-with for the schema upgrade, crm_feature_set, have-quorum). Never the status section, which
# holds most of a big cluster's CIB (every node's resource history), nor the constraints.
SECTIONS = ("crm_config", "rsc_defaults", "op_defaults", "nodes", "resources")


def cib_from_parts(root_xml: str, sections_xml: str) -> Optional[ElementTree.Element]:
    """A ``<cib>`` holding just what the inventory reads, from ``cibadmin --query --xpath /cib --no-children``
    (the root element alone) and a query of :data:`SECTIONS` (one element, or several in ``<xpath-query>``).

    None when the parts cannot stand in for the whole CIB: an ``id-ref`` that points outside them (a rule or
    attribute set defined in a section not fetched), or parts that are not what was asked for. The caller then
    reads the whole CIB."""
    root = xmlsafe.parse(root_xml, "CIB")
    found = xmlsafe.parse(sections_xml, "CIB sections")
    if root.tag != "cib" or len(root):
        return None
    parts = list(found) if found.tag == "xpath-query" else [found]
    if not parts or any(part.tag not in SECTIONS for part in parts):
        return None
    configuration = ElementTree.SubElement(root, "configuration")
    configuration.extend(parts)
    ids = set()
    refs = set()
    for element in root.iter():
        if "id-ref" in element.attrib:
            refs.add(element.get("id-ref"))
        elif "id" in element.attrib:
            ids.add(element.get("id"))
    if not refs <= ids:
        return None
    return root
