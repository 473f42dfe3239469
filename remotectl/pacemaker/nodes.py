"""The node model: every node of a Pacemaker cluster (cluster, remote, guest and bundle nodes) as plain data.

Two ways in:

* :func:`nodes_from_crm_mon` reads ``crm_mon --output-as=xml`` (what a live cluster says), and takes the
  addresses and ports from the CIB's configuration, because crm_mon's XML does not carry them;
* :func:`nodes_from_cib` is an offline model: it computes the same node states from a CIB alone (``cibadmin -Q``
  output or a ``CIB_file``), in pure Python. It must agree with ``CIB_file=FILE crm_mon --output-as=xml`` on
  name, type, online, standby, maintenance and unclean; ``tests/integration/test_nodes_vs_crm_mon.py`` checks
  that for every CIB in ``tests/data/cib``, ``tests/data/cib-lab`` and ``tests/data/cib-handwritten``.

Both take XML text (bytes or str) or a parsed element: the model reads no files, a caller with a path reads it.

The offline model is the port of Pacemaker's scheduler unpacking in :mod:`remotectl.pacemaker.simulate`, whose
docstring lists the rules it implements, its known divergences from crm_mon and how it was validated. Which nodes a
CIB configures comes from :mod:`remotectl.pacemaker.inventory`, the configuration half of the same code.

Contract fields
  * ``type``: ``cluster`` (``<node>`` of type member), ``remote`` (remote node, also a stale ``type="remote"``
    node entry or an orphaned connection), ``guest`` (connection has a container), ``bundle`` (that container
    belongs to a bundle). From crm_mon: ``type="member"`` is cluster; ``type="remote"`` with ``id_as_resource`` is
    guest or bundle, decided by the CIB when given, else by crm_mon's bundle section or Pacemaker's replica
    naming (``B-i`` / ``B-<agent>-i``).
  * ``resource``: remote: the connection resource; guest: the container; bundle: the bundle.
  * ``address``/``port``: remote: ``server`` (or its alias ``addr``, else the resource id) and ``port`` (3121);
    guest: ``remote-addr`` (else the node name) and ``remote-port`` (3121); bundle: the replica's address from
    ``ip-range-start``, or without one the container's host (Pacemaker connects to ``#uname``), and
    ``control-port`` (3121). ``port`` is None when the configured value is not a port number.
  * ``host``: remote: the first node the connection resource is active on; guest/bundle: the container's node.

The node JSON (``Node.to_dict()``) has exactly the keys of the ``remotectl nodes --json`` contract.
Depends only on :mod:`remotectl.pacemaker`, :mod:`remotectl.reports` and the standard library; Python 3.9+.
"""

from __future__ import annotations

import functools
import re
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from remotectl.pacemaker import values, xmlsafe
from remotectl.pacemaker.inventory import Inventory, inventory_from_cib
from remotectl.pacemaker.simulate import WorkingSet, cluster_status
from remotectl.pacemaker.simulate.remote import DEFAULT_REMOTE_PORT, host_of, location_of, node_kind
from remotectl.reports import RemotectlError

__all__ = [
    "DEFAULT_REMOTE_PORT",
    "NODE_TYPES",
    "Node",
    "nodes_from_cib",
    "nodes_from_crm_mon",
    "sort_nodes",
]

NODE_TYPES = ("cluster", "remote", "guest", "bundle")
_TYPE_ORDER = {t: i for i, t in enumerate(NODE_TYPES)}

CibInput = Union[bytes, str, ElementTree.Element]


# --------------------------------------------------------------------------------------------------------------
# The public data
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One node as ``remotectl nodes`` reports it. Field names are the JSON contract."""

    name: str
    type: str  # "cluster" | "remote" | "guest" | "bundle"
    online: bool
    standby: bool
    maintenance: bool
    unclean: bool
    resource: Optional[str] = None  # remote: connection resource; guest: container resource; bundle: bundle id
    address: Optional[str] = None  # where pacemaker-remoted listens (remote/guest/bundle), else None
    port: Optional[int] = None
    host: Optional[str] = None  # cluster node running the connection (remote) or the container (guest, bundle)

    def to_dict(self) -> Dict[str, Any]:
        """Every contract key, in contract order; ``None`` where a key does not apply."""
        return {
            "name": self.name,
            "type": self.type,
            "online": self.online,
            "standby": self.standby,
            "maintenance": self.maintenance,
            "unclean": self.unclean,
            "resource": self.resource,
            "address": self.address,
            "port": self.port,
            "host": self.host,
        }

    def state_key(self) -> Tuple[str, str, bool, bool, bool, bool]:
        """The fields the offline model must agree with crm_mon on."""
        return (self.name, self.type, self.online, self.standby, self.maintenance, self.unclean)


def _node_cmp(x: Node, y: Node) -> int:
    tx, ty = _TYPE_ORDER.get(x.type, 99), _TYPE_ORDER.get(y.type, 99)
    if tx != ty:
        return -1 if tx < ty else 1
    c = values.numeric_strcasecmp(x.name, y.name)
    if c:
        return c
    return (x.name > y.name) - (x.name < y.name)


def sort_nodes(nodes: Iterable[Node]) -> List[Node]:
    """Cluster nodes first, then remote, guest, bundle; by name within a type (numbers sort numerically)."""
    return sorted(nodes, key=functools.cmp_to_key(_node_cmp))


def _node_records(ws: WorkingSet) -> List[Node]:
    """The contract records of every listed node of an unpacked working set."""
    out: List[Node] = []
    for node in ws.nodes:
        kind = node_kind(node)
        if kind is None:
            continue
        if kind == "cluster":
            out.append(Node(node.name, kind, node.online, node.standby, node.maintenance, node.unclean))
            continue
        resource, address, port = location_of(ws, node.name, kind)
        host = host_of(node, kind)
        if kind == "bundle" and address is None:
            address = host  # no ip-range-start: the connection goes to the container's host ("#uname")
        out.append(Node(node.name, kind, node.online, node.standby, node.maintenance, node.unclean,
                        resource, address, port, host))
    return sort_nodes(out)


def _load(doc: CibInput, what: str) -> ElementTree.Element:
    """XML text or a parsed element. The model reads no files: a caller with a path reads it (so a file name can
    never be mistaken for XML, or XML for a file name)."""
    if isinstance(doc, ElementTree.Element):
        return doc
    if isinstance(doc, (bytes, bytearray, str)):
        return xmlsafe.parse(doc, what)
    raise TypeError(f"expected XML bytes/str or an Element, not {type(doc).__name__} (read the file first)")


def nodes_from_cib(cib: CibInput, *, now: Optional[float] = None,
                   membership_timestamps: Optional[bool] = None) -> List[Node]:
    """The offline model: every node with its state, computed from a CIB alone.

    ``cib`` is the CIB as XML text (bytes or str) or an already parsed ``<cib>`` element. ``now`` (epoch seconds) is the time failure timeouts are measured against
    (default: the current time, as crm_mon does). ``membership_timestamps``: see the module docstring.
    Raises :class:`RemotectlError` for unreadable or malformed input.
    """
    root = _load(cib, "CIB")
    return _node_records(cluster_status(root, now=now, membership_timestamps=membership_timestamps))


def _crm_mon_resources(mon: ElementTree.Element) -> Tuple[Dict[str, List[str]], Dict[str, str]]:
    """(resource id -> node names it is active on, container id -> bundle id) from crm_mon's resources."""
    where: Dict[str, List[str]] = {}
    bundle_of: Dict[str, str] = {}
    resources = mon.find("resources")
    if resources is None:
        return where, bundle_of
    for bundle in resources.iter("bundle"):
        bid = bundle.get("id")
        if bid is None:
            continue
        for r in bundle.iter("resource"):
            rid = r.get("id")
            if rid is not None:
                bundle_of.setdefault(rid, bid)
    for r in resources.iter("resource"):
        rid = r.get("id")
        if rid is None or (r.get("active") or "true").lower() == "false":
            continue
        names = [n.get("name") for n in r.findall("node") if n.get("name")]
        if names:
            where.setdefault(rid, names)  # type: ignore[arg-type]
    return where, bundle_of


_REPLICA_CONTAINER = re.compile(r"^(.+)-(docker|podman|rkt)-([0-9]+)$")


def _looks_like_bundle_replica(node_name: str, container: str) -> bool:
    """Pacemaker names bundle replica ``i`` of bundle ``B`` node ``B-i`` with container ``B-<agent>-i``."""
    m = _REPLICA_CONTAINER.match(container)
    return m is not None and node_name == f"{m.group(1)}-{m.group(3)}"


def nodes_from_crm_mon(crm_mon_xml: CibInput, cib: Optional[CibInput] = None) -> List[Node]:
    """Nodes as a live cluster reports them: states from ``crm_mon --output-as=xml``, the rest from the CIB.

    ``crm_mon_xml`` is crm_mon's XML output (text or element). ``cib`` (optional, same forms) supplies
    what crm_mon does not print: remote servers/ports, guest ``remote-addr``/``remote-port``, bundle replica
    addresses and ``control-port``, and which containers belong to bundles. Without it those fields are
    ``None`` except what crm_mon's own resources section shows (where connections and containers run).
    """
    mon = _load(crm_mon_xml, "crm_mon output")
    nodes_el = mon.find("nodes")
    if nodes_el is None:
        if mon.tag in ("pacemaker-result", "crm_mon"):
            status = mon.find("status")
            if status is not None and status.get("code") not in (None, "0"):
                raise RemotectlError(f"crm_mon failed: {status.get('message') or 'error ' + str(status.get('code'))}")
        raise RemotectlError("crm_mon output has no <nodes> section (was it run with --output-as=xml?)")
    inventory: Optional[Inventory] = None
    if cib is not None:  # cibadmin -Q --scope configuration is enough for addresses
        inventory = inventory_from_cib(_load(cib, "CIB"))
    where, bundle_of = _crm_mon_resources(mon)

    out: List[Node] = []
    for el in nodes_el.findall("node"):
        name = el.get("name")
        if name is None:
            continue
        mtype = el.get("type")
        if mtype == "member":
            kind = "cluster"
        elif mtype == "remote":
            container = el.get("id_as_resource")
            if container is None:
                kind = "remote"
            else:
                if inventory is not None:
                    in_bundle = inventory.container_in_bundle(container)
                else:
                    in_bundle = container in bundle_of or _looks_like_bundle_replica(name, container)
                kind = "bundle" if in_bundle else "guest"
        else:
            continue  # ping / unknown nodes are not part of the contract

        def flag(attr: str) -> bool:
            return (el.get(attr) or "false").lower() == "true"

        online, standby, maintenance, unclean = (flag("online"), flag("standby"), flag("maintenance"),
                                                 flag("unclean"))
        if kind == "cluster":
            out.append(Node(name, kind, online, standby, maintenance, unclean))
            continue
        resource = address = None
        port: Optional[int] = None
        if inventory is not None:
            resource, address, port = inventory.location_of(name, kind)
        container = el.get("id_as_resource")
        if kind == "remote":
            resource = resource if resource is not None else (name if name in where else None)
            running = where.get(name)
        else:
            if kind == "guest" and resource is None:
                resource = container
            if kind == "bundle" and resource is None and container is not None:
                resource = bundle_of.get(container)
                if resource is None:
                    m = _REPLICA_CONTAINER.match(container)
                    resource = m.group(1) if m else None
            running = where.get(container) if container else None
        host = running[0] if running else None
        if kind == "bundle" and address is None:
            address = host
        out.append(Node(name, kind, online, standby, maintenance, unclean, resource, address, port, host))
    return sort_nodes(out)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m remotectl.pacemaker.nodes CIB.xml``: the offline model's JSON (for benchmarks and debugging)."""
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m remotectl.pacemaker.nodes CIB.xml", file=sys.stderr)
        return 2
    try:
        try:
            with open(args[0], "rb") as fh:
                data = fh.read(xmlsafe.MAX_BYTES + 1)
        except OSError as exc:
            raise RemotectlError(f"cannot read CIB {args[0]}: {exc.strerror or exc}") from None
        nodes = nodes_from_cib(data)
    except RemotectlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    json.dump({"nodes": [n.to_dict() for n in nodes]}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
