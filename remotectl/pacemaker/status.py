"""The only reader of ``crm_mon --output-as=xml``: what a live cluster says about its nodes and resources.

Every command that needs live state (``nodes``, ``standby``/``maintenance --wait``, ``fence``, ``check``, the
wait after a key rotation) reads it through :func:`read_status`, so they cannot disagree about a node.

What crm_mon prints (Pacemaker 2.1.5 ``lib/pengine/pe_output.c`` ``node_xml`` and ``native.c``
``pe__resource_xml``; 3.0.x prints the same attributes):

* ``<node name type online standby maintenance pending unclean shutdown resources_running id_as_resource>``:
  ``type`` is ``member``, ``remote``, ``ping`` (gone in 3.0) or ``unknown``; ``id_as_resource`` is set when the
  node is a guest node in Pacemaker's sense (``pe__is_guest_node``: its connection has a container), which bundle
  replicas are too, so it names the guest's or the replica's container. Booleans are "true"/"false".
* ``<resource id active managed ...><node name/>`` for every primitive (clone instances repeat the id), inside
  ``<bundle id><replica>`` for bundle replicas. The XML output always includes inactive resources.

Node type (one classifier, :func:`_node_type`): ``member`` is a cluster node; ``remote`` without
``id_as_resource`` a remote node; with it, a bundle node when its container sits in a ``<bundle>`` section, else a
guest node. Only when crm_mon printed no resources section at all does Pacemaker's replica naming decide
(bundle ``B``'s replica ``i`` is node ``B-i`` with container ``B-docker-i``/``B-podman-i``/``B-rkt-i``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from remotectl.pacemaker import values, xmlsafe
from remotectl.reports import RemotectlError

__all__ = ["ClusterStatus", "NodeStatus", "ResourceStatus", "cib_node_versions", "contract_nodes", "node_version",
           "read_status"]

Element = ElementTree.Element
_REPLICA_CONTAINER = re.compile(r"^(.+)-(docker|podman|rkt)-([0-9]+)$")
_RELEASE = re.compile(r"^[0-9]+(?:\.[0-9]+){1,3}")


@dataclass(frozen=True)
class ResourceStatus:
    """A primitive as crm_mon shows it; clone instances (which share an id) are merged."""

    id: str
    nodes: Tuple[str, ...]  # the nodes it is active on, in crm_mon's order
    active: bool
    managed: bool
    bundle: Optional[str] = None  # the bundle whose replica holds it


@dataclass(frozen=True)
class NodeStatus:
    """One ``<node>`` of crm_mon, with what the resources section says about its connection or container."""

    name: str
    type: str  # cluster | remote | guest | bundle | ping | unknown
    online: bool
    standby: bool
    maintenance: bool
    unclean: bool
    pending: bool = False
    shutdown: bool = False
    resources_running: int = 0
    container: Optional[str] = None  # guest and bundle nodes: id_as_resource
    container_hosts: Tuple[str, ...] = ()  # where that container runs (normally one cluster node)
    container_managed: Optional[bool] = None
    connection_hosts: Tuple[str, ...] = ()  # remote nodes: where the connection resource (same id) is active
    bundle: Optional[str] = None  # bundle nodes: the bundle's id
    is_dc: bool = False
    feature_set: Optional[str] = None  # cluster nodes: the CRM feature set crm_mon shows (not a release number)
    pacemaker_version: Optional[str] = None  # "2.1.5" where the status says it (see node_version), else None

    @property
    def hosts(self) -> Tuple[str, ...]:
        """The cluster nodes carrying this node: its container's (guest, bundle) or connection's (remote)."""
        return self.container_hosts if self.container is not None else self.connection_hosts

    def summary(self) -> str:
        """A short state phrase: ``online``, ``OFFLINE``, ``UNCLEAN``, plus ``pending``/``standby``/``maintenance``."""
        words = ["UNCLEAN" if self.unclean else "online" if self.online else "OFFLINE"]
        if self.pending:
            words.append("pending")
        if self.standby:
            words.append("standby")
        if self.maintenance:
            words.append("maintenance")
        return ", ".join(words)


@dataclass(frozen=True)
class ClusterStatus:
    nodes: Dict[str, NodeStatus]  # in crm_mon's order
    resources: Dict[str, ResourceStatus]
    dc_version: Optional[str] = None  # the DC's Pacemaker version ("2.1.5-a3f44794f94"), when there is a DC

    def node(self, name: str) -> Optional[NodeStatus]:
        return self.nodes.get(name)


def read_status(document: Union[str, bytes, Element]) -> ClusterStatus:
    """Parse crm_mon's XML (text or an already parsed element). Raises :class:`RemotectlError` when crm_mon reported a
    failure or the document is not crm_mon's XML."""
    root = document if isinstance(document, Element) else xmlsafe.parse(document, "crm_mon output")
    section = root.find("nodes")
    if section is None:
        if root.tag in ("pacemaker-result", "crm_mon"):
            status = values.result_status(root)
            if status.code not in (None, 0):
                raise RemotectlError(f"crm_mon failed: {status.describe() or 'error ' + str(status.code)}")
        raise RemotectlError("crm_mon output has no <nodes> section (was it run with --output-as=xml?)")
    resources = _resources(root.find("resources"))
    have_resources = root.find("resources") is not None
    current_dc = root.find("summary/current_dc")
    dc_version = current_dc.get("version") if current_dc is not None else None
    nodes: Dict[str, NodeStatus] = {}
    for element in section.findall("node"):
        name = element.get("name")
        if not name:
            continue
        nodes[name] = _node(element, name, resources, have_resources, dc_version)
    return ClusterStatus(nodes=nodes, resources=resources, dc_version=dc_version)


def _resources(section: Optional[Element]) -> Dict[str, ResourceStatus]:
    found: Dict[str, ResourceStatus] = {}
    if section is None:
        return found
    bundle_of: Dict[str, str] = {}
    for bundle in section.iter("bundle"):
        bundle_id = bundle.get("id")
        if bundle_id:
            for resource in bundle.iter("resource"):
                if resource.get("id"):
                    bundle_of.setdefault(resource.get("id"), bundle_id)  # type: ignore[arg-type]
    for resource in section.iter("resource"):
        rid = resource.get("id")
        if not rid:
            continue
        active = values.is_true(resource.get("active", "true"))
        nodes: Tuple[str, ...] = tuple(n.get("name") for n in resource.findall("node") if n.get("name")) if active \
            else ()
        previous = found.get(rid)
        if previous is not None:  # another clone instance: merge where they run
            nodes = previous.nodes + tuple(n for n in nodes if n not in previous.nodes)
            active = active or previous.active
        found[rid] = ResourceStatus(id=rid, nodes=nodes, active=active,
                                    managed=values.is_true(resource.get("managed", "true")),
                                    bundle=bundle_of.get(rid))
    return found


def _node_type(raw_type: Optional[str], name: str, container: Optional[str],
               resources: Dict[str, ResourceStatus], have_resources: bool) -> Tuple[str, Optional[str]]:
    """(type, bundle id) of a crm_mon node; see the module docstring."""
    if raw_type == "member":
        return "cluster", None
    if raw_type == "remote" and container is None:
        return "remote", None
    if raw_type == "remote":
        state = resources.get(container)
        if state is not None and state.bundle is not None:
            return "bundle", state.bundle
        if not have_resources:
            match = _REPLICA_CONTAINER.match(container)
            if match is not None and name == f"{match.group(1)}-{match.group(3)}":
                return "bundle", match.group(1)
        return "guest", None
    if raw_type == "ping":
        return "ping", None
    return "unknown", None


def node_version(is_dc: bool, dc_version: Optional[str]) -> Optional[str]:
    """The Pacemaker release of one node, as far as the status says it without asking the node: the one rule.

    Only the DC's release is recorded (crm_mon's ``current_dc version``, the CIB's ``dc-version``, both
    "2.1.5-a3f44794f94"). Other cluster nodes record only their ``#feature-set`` (a CRM protocol number several
    releases share), and remote and guest nodes nothing: neither 2.1.5 nor 3.0.3 writes their release or their
    executor protocol version into the status section (checked with ``cibadmin -Q`` on both, and on a 2.1.5
    cluster with a 3.0.3 remote). So every other node is None: only asking the node itself tells."""
    if not is_dc or not dc_version:
        return None
    match = _RELEASE.match(dc_version)
    return match.group(0) if match else None


def cib_node_versions(cib: Element) -> Dict[str, Tuple[Optional[str], Optional[str]]]:
    """node name -> (Pacemaker release, feature set) as a CIB dump records them (:func:`node_version`'s rule):
    the DC is ``dc-uuid``, its release ``dc-version``. The feature set is what crm_mon prints for a cluster node
    that is online and expected up (the caller checks online): its ``#feature-set`` transient attribute, which
    Pacemaker writes since feature set 3.15.1, so crm_mon prints "<3.15.1" when it is missing."""
    dc_uuid = cib.get("dc-uuid")
    dc_version = None
    for nvpair in cib.iterfind("./configuration/crm_config/cluster_property_set/nvpair"):
        if nvpair.get("name") == "dc-version":
            dc_version = nvpair.get("value")
    found: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
    for state in cib.iterfind("./status/node_state"):
        name = state.get("uname")
        if not name:
            continue
        attributes = state.iterfind("./transient_attributes/instance_attributes/nvpair")
        feature_set = next((nv.get("value") for nv in attributes if nv.get("name") == "#feature-set"), "<3.15.1")
        if state.get("expected") != "member" or values.is_true(state.get("remote_node")):
            feature_set = None
        is_dc = dc_uuid is not None and state.get("id") == dc_uuid and not values.is_true(state.get("remote_node"))
        found[name] = (node_version(is_dc, dc_version), feature_set)
    return found


def _node(element: Element, name: str, resources: Dict[str, ResourceStatus], have_resources: bool,
          dc_version: Optional[str] = None) -> NodeStatus:
    container = element.get("id_as_resource")
    node_type, bundle = _node_type(element.get("type"), name, container, resources, have_resources)
    container_state = resources.get(container) if container else None
    connection = resources.get(name) if node_type == "remote" else None
    running = values.scan_ll(element.get("resources_running"))
    is_dc = values.is_true(element.get("is_dc"))
    return NodeStatus(
        name=name,
        type=node_type,
        online=values.is_true(element.get("online")),
        standby=values.is_true(element.get("standby")),
        maintenance=values.is_true(element.get("maintenance")),
        unclean=values.is_true(element.get("unclean")),
        pending=values.is_true(element.get("pending")),
        shutdown=values.is_true(element.get("shutdown")),
        resources_running=running if running is not None and running > 0 else 0,
        container=container,
        container_hosts=container_state.nodes if container_state else (),
        container_managed=container_state.managed if container_state else None,
        connection_hosts=connection.nodes if connection else (),
        bundle=bundle,
        is_dc=is_dc,
        feature_set=element.get("feature_set") or None,
        pacemaker_version=node_version(is_dc, dc_version),
    )


def contract_nodes(status: ClusterStatus) -> List[NodeStatus]:
    """The nodes of the ``remotectl nodes`` contract: cluster, remote, guest and bundle nodes (ping nodes, which
    Pacemaker 3.0 dropped, and nodes of unknown type are left out)."""
    return [n for n in status.nodes.values() if n.type in ("cluster", "remote", "guest", "bundle")]
