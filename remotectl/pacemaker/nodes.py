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
    belongs to a bundle). Live, the type is what :mod:`remotectl.pacemaker.status` reads from crm_mon.
  * ``resource``: remote: the connection resource; guest: the container; bundle: the bundle.
  * ``address``/``port``: remote: ``server`` (or its alias ``addr``, else the resource id) and ``port`` (3121);
    guest: ``remote-addr`` (else the node name) and ``remote-port`` (3121); bundle: the replica's address from
    ``ip-range-start``, or without one the container's host (Pacemaker connects to ``#uname``), and
    ``control-port`` (3121). ``port`` is None when the configured value is not a port number.
  * ``host``: remote: the first node the connection resource is active on; guest/bundle: the container's node.

The node JSON (``jsonable(node)``) has exactly the keys of the ``remotectl nodes --json`` contract, in order.
Depends only on :mod:`remotectl.pacemaker`, :mod:`remotectl.reports` and the standard library; Python 3.9+.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from remotectl.jsonable import jsonable
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
    # Read from the status alone (status.node_version: the DC's release only), never by asking each node.
    pacemaker_version: Optional[str] = None
    feature_set: Optional[str] = None  # cluster nodes: their CRM feature set, as the status records it
    # psk|x509|unknown from the node's own env files (`nodes --tls`, over SSH: no CIB records it); None: not asked
    tls_mode: Optional[str] = None

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
                   membership_timestamps: Optional[bool] = None,
                   pacemaker_version: Optional[Tuple[int, ...]] = None) -> List[Node]:
    """The offline model: every node with its state, computed from a CIB alone.

    ``cib`` is the CIB as XML text (bytes or str) or an already parsed ``<cib>`` element. ``now`` (epoch seconds) is the time failure timeouts are measured against
    (default: the current time, as crm_mon does). ``membership_timestamps``: see the module docstring.
    ``pacemaker_version``: the Pacemaker whose reading to follow where versions differ (default: the CIB's
    ``dc-version``, else the newest the model knows; :mod:`remotectl.pacemaker.simulate.schema`).
    Raises :class:`RemotectlError` for unreadable or malformed input.
    """
    from remotectl.pacemaker.status import cib_node_versions

    root = _load(cib, "CIB")
    records = _node_records(cluster_status(root, now=now, membership_timestamps=membership_timestamps,
                                           pacemaker_version=pacemaker_version))
    versions = cib_node_versions(root)
    return [dataclasses.replace(n, pacemaker_version=versions[n.name][0],
                                feature_set=versions[n.name][1] if n.type == "cluster" and n.online else None)
            if n.name in versions else n for n in records]


def nodes_from_crm_mon(crm_mon_xml: CibInput, cib: Optional[CibInput] = None, *,
                       pacemaker_version: Optional[Tuple[int, ...]] = None) -> List[Node]:
    """Nodes as a live cluster reports them: states from ``crm_mon --output-as=xml``, the rest from the CIB.

    ``crm_mon_xml`` is crm_mon's XML output (text or element). ``cib`` (optional, same forms; ``cibadmin -Q
    --scope configuration`` is enough) supplies what crm_mon does not print: remote servers/ports, guest
    ``remote-addr``/``remote-port`` and bundle replica addresses and ``control-port``. Without it those fields are
    ``None`` except what crm_mon's own resources section shows (where connections and containers run).
    ``pacemaker_version``: as for :func:`nodes_from_cib` (the CIB's configuration is read as that version reads it).
    """
    from remotectl.pacemaker.status import read_status

    cluster_status = read_status(crm_mon_xml)
    inventory = (inventory_from_cib(_load(cib, "CIB"), pacemaker_version=pacemaker_version)
                 if cib is not None else None)
    return nodes_live(cluster_status, inventory)


def nodes_live(cluster_status, inventory: Optional[Inventory] = None) -> List[Node]:
    """The contract records of a live cluster: one join of crm_mon's status (:mod:`remotectl.pacemaker.status`:
    types and states) and the CIB's inventory (:mod:`remotectl.pacemaker.inventory`: resource, address, port)."""
    from remotectl.pacemaker.status import contract_nodes

    out: List[Node] = []
    for state in contract_nodes(cluster_status):
        flags = (state.online, state.standby, state.maintenance, state.unclean)
        if state.type == "cluster":
            out.append(Node(state.name, state.type, *flags, pacemaker_version=state.pacemaker_version,
                            feature_set=state.feature_set))
            continue
        resource, address, port = inventory.location_of(state.name, state.type) if inventory else (None, None, None)
        if resource is None:
            if state.type == "remote":
                resource = state.name if state.connection_hosts else None
            elif state.type == "guest":
                resource = state.container
            else:
                resource = state.bundle
        host = state.hosts[0] if state.hosts else None
        if state.type == "bundle" and address is None:
            address = host  # no ip-range-start: Pacemaker connects to the container's host
        out.append(Node(state.name, state.type, *flags, resource, address, port, host, state.pacemaker_version))
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
    json.dump({"nodes": [jsonable(n) for n in nodes]}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
