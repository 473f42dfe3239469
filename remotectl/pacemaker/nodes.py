"""The node model: every node of a Pacemaker cluster (cluster, remote, guest and bundle nodes) as plain data.

Two ways in:

* :func:`nodes_from_crm_mon` reads ``crm_mon --output-as=xml`` (what a live cluster says), and takes the
  addresses and ports from the CIB's configuration, because crm_mon's XML does not carry them;
* :func:`nodes_from_cib` is an offline model: it computes the same node states from a CIB alone (``cibadmin -Q``
  output or a ``CIB_file``), in pure Python. It must agree with ``CIB_file=FILE crm_mon --output-as=xml`` on
  name, type, online, standby, maintenance and unclean; ``tests/integration/test_nodes_vs_crm_mon.py`` checks
  that for every CIB in ``tests/data/cib``.

The offline model follows how Pacemaker 2.1.5's scheduler library unpacks a CIB (``lib/pengine/unpack.c``
``cluster_status()``: ``unpack_config``, ``unpack_nodes``, ``unpack_remote_nodes``, ``unpack_resources``,
``unpack_status``), restricted to what decides the node flags. Rules implemented:

Configuration
  * Cluster options from ``crm_config`` ``cluster_property_set`` blocks (``cib-bootstrap-options`` first, then by
    score; invalid values fall back to the default): ``stonith-enabled`` (default true), ``startup-fencing``
    (default true, only with fencing), ``maintenance-mode``, ``stop-orphan-resources``, ``no-quorum-policy``
    (``suicide`` needs fencing and ``have-quorum``/``no-quorum-panic`` on the ``cib`` element), plus
    ``have-quorum`` and ``crm_feature_set`` from the ``cib`` element.
  * ``<nodes><node>``: ``type`` absent/``member`` is a cluster node, ``remote`` a remote node, anything else a
    (deprecated) ping node, which is left out of the listing. Permanent node attributes from the node's
    ``instance_attributes``.
  * Remote nodes: every top-level ``ocf:pacemaker:remote`` primitive (node name = resource id). Guest nodes: the
    ``remote-node`` meta attribute of a top-level primitive or of a primitive in a top-level group (the implicit
    connection resource gets ``container``, ``is-managed``, ``remote-addr``/``remote-port``). Bundle nodes:
    ``B-0 .. B-(replicas-1)`` for a bundle with a primitive and either ``ip-range-start`` or ``control-port``
    (``replicas`` defaults to ``promoted-max`` or 1; addresses ``ip-range-start`` + i as Pacemaker's
    ``next_ip()`` counts them; containers ``B-docker-i`` / ``B-podman-i`` / ``B-rkt-i``).
  * Resource meta attributes as ``get_meta_attributes()`` resolves them: the element's own XML attributes, its
    ``meta_attributes`` (by score), then its parents' explicit meta attributes, ``rsc_defaults``, then the
    parents' resolved values. ``is-managed=false``, ``maintenance=true`` and cluster ``maintenance-mode=true``
    make a resource unmanaged. ``globally-unique``, ``promotable``/``<master>``, ``container``,
    ``failure-timeout``, ``multiple-active`` and the remote ``reconnect_interval`` parameter are honoured.
  * Templates: a primitive's ``template`` contributes its class/provider/type, attribute sets and operations.

Status
  * Cluster nodes (``determine_online_status``): ``in_ccm``, ``crmd``, ``join``, ``expected``, the ``shutdown`` and
    ``terminate`` attributes, with and without fencing; pending nodes (``join=pending`` etc.) count as standby;
    nodes without a ``node_state`` are unclean when startup fencing applies; ``no-quorum-policy=suicide``.
  * ``in_ccm``/``crmd`` as booleans and ``online``/``offline`` (all versions), or as epoch timestamps where 0 means
    "not a member"/"offline" (feature set 3.18.0, Pacemaker 2.1.7+). Pacemaker 2.1.5 does not know the timestamp
    form (it reads ``in_ccm="1700000000"`` as "not a member"); ``membership_timestamps`` chooses: ``None`` (default)
    honours timestamps when the CIB's ``crm_feature_set`` is 3.18.0 or later, ``True``/``False`` force it.
  * Transient attributes (``status/node_state/transient_attributes``) override permanent ones; ``standby`` and
    ``maintenance`` are read with Pacemaker's ``crm_is_true``. As in Pacemaker, a cluster node's attributes only
    count once it has a ``node_state``, and a remote/guest/bundle node's only once its history is unpacked
    (connection up, or fencing enabled and a ``node_state`` present).
  * Remote/guest/bundle nodes: online when the connection resource is started and neither it nor the guest's
    container failed, the container is not stopped and the guest's host is not unclean
    (``determine_remote_online_status``); maintenance also when the connection resource is unmanaged (so in
    ``maintenance-mode``); ``node_fenced``; remote nodes are unclean until seen (startup fencing) and after a
    connection failure whose recovery is "fence" (``on-fail`` default ``reset-remote``) when fencing is enabled;
    guest and bundle nodes are never marked unclean (they are "fenced" by recovering the container).
  * Resource history (``unpack_lrm_resource``/``unpack_rsc_op``): operations ordered by call id (and
    ``last-rc-change``/transition magic as Pacemaker does), expected result from the transition key, result
    remapping (degraded, masked probe failures, not-installed, not-configured), pending operations, migrations
    (``migrate_to``/``migrate_from`` success and failure, partial and dangling), ``on-fail`` per operation
    (operation XML, its ``meta_attributes``, ``op_defaults``, defaults per Pacemaker: ``fence`` for stop failures
    with fencing, ``restart-container`` for container fillers, ``reset-remote`` for remote connections), failure
    expiry (``failure-timeout``, remote ``reconnect_interval``, fail counts), orphans (history of resources no
    longer configured, including orphaned remote connections), anonymous and unique clone instances, bundle
    replicas, resources active on offline nodes (fencing), ``on-fail=standby``/``block``, multiply active
    resources with ``multiple-active=block`` (counting only clean nodes unless ``requires`` comes down to
    fencing), ``NOT_CONNECTED`` results, and the order in which Pacemaker unpacks node histories (guest/remote
    histories only after their connection is known to be up).
  * Fencing as a side effect of unpacking: a stop that has to be scheduled for a managed resource on an offline
    node makes that node unclean ("stop is unrunnable"); so does a lost ticket with ``loss-policy=fence`` for the
    nodes running the resources that depend on it (crm_mon unpacks constraints for its ticket section).

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

Known divergences (documented in tests/integration/test_nodes_vs_crm_mon.py as well):
  * Attribute sets (``meta_attributes``, ``instance_attributes``, ``cluster_property_set``, ``op_defaults``,
    ``rsc_defaults``) that carry a ``<rule>`` are ignored (treated as not applying). Rules in constraints do not
    matter here.
  * ``shutdown-lock`` and ``on-fail=block``'s effect on failure timeouts are not modelled.
  * Clone instances are tracked per node history entry rather than by instance number, which only matters for
    globally-unique clones that are active on several nodes at once.
  * A CIB that needs a schema upgrade (``validate-with`` older than pacemaker-3.0) is read as-is; crm_mon upgrades
    it in memory first. Malformed XML that libxml2 would recover from is refused.
  * With timestamps, only the reading of ``in_ccm``/``crmd`` follows Pacemaker 2.1.7+; its other changes
    (``node-pending-timeout``) are not modelled.
  * Ping nodes (``<node type="ping">``, deprecated) are not listed.
  * Failure timeouts are measured against ``now`` (default: the current time), as crm_mon does; results for CIBs
    with ``failure-timeout``/``reconnect_interval`` can change with the clock, for crm_mon too.

Validation: the model agrees with crm_mon 2.1.5 on every CIB in Pacemaker 2.1.5's ``cts/scheduler/xml`` (799
files, 86 of them with remote, guest or bundle nodes), on ``tests/data/cib`` and on thousands of random
mutations of both (fencing, maintenance, attributes, membership, operation results, ``on-fail``, deleted
resources and states, bundle networks and replica counts).

The node JSON (``Node.to_dict()``) has exactly the keys of the ``remotectl nodes --json`` contract.
Depends only on :mod:`remotectl.reports` and the standard library; Python 3.9+.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from remotectl.pacemaker import values, xmlsafe
from remotectl.reports import RemotectlError

__all__ = [
    "DEFAULT_REMOTE_PORT",
    "NODE_TYPES",
    "Node",
    "nodes_from_cib",
    "nodes_from_crm_mon",
    "sort_nodes",
]

DEFAULT_REMOTE_PORT = 3121
NODE_TYPES = ("cluster", "remote", "guest", "bundle")
_TYPE_ORDER = {t: i for i, t in enumerate(NODE_TYPES)}

CibInput = Union[bytes, str, "os.PathLike[str]", ElementTree.Element]


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


def _clone_strip(rsc_id: str) -> str:
    """``clone_strip``: ``rsc:3`` -> ``rsc``."""
    m = re.match(r"^(.+?):[0-9]*$", rsc_id)
    if m and len(rsc_id) > 1:
        return m.group(1)
    return rsc_id


# --------------------------------------------------------------------------------------------------------------
# Constants mirroring Pacemaker's enums
# --------------------------------------------------------------------------------------------------------------

ROLE_UNKNOWN, ROLE_STOPPED, ROLE_STARTED, ROLE_UNPROMOTED, ROLE_PROMOTED = range(5)

OCF_OK = 0
OCF_UNKNOWN_ERROR = 1
OCF_INVALID_PARAM = 2
OCF_UNIMPLEMENT_FEATURE = 3
OCF_INSUFFICIENT_PRIV = 4
OCF_NOT_INSTALLED = 5
OCF_NOT_CONFIGURED = 6
OCF_NOT_RUNNING = 7
OCF_RUNNING_PROMOTED = 8
OCF_FAILED_PROMOTED = 9
OCF_DEGRADED = 190
OCF_DEGRADED_PROMOTED = 191

EXEC_UNKNOWN = -2
EXEC_PENDING = -1
EXEC_DONE = 0
EXEC_CANCELLED = 1
EXEC_TIMEOUT = 2
EXEC_NOT_SUPPORTED = 3
EXEC_ERROR = 4
EXEC_ERROR_HARD = 5
EXEC_ERROR_FATAL = 6
EXEC_NOT_INSTALLED = 7
EXEC_NOT_CONNECTED = 8
EXEC_INVALID = 9
EXEC_NO_FENCE_DEVICE = 10
EXEC_NO_SECRETS = 11
EXEC_MAX = 11

(
    FAIL_IGNORE,
    FAIL_RECOVER,
    FAIL_MIGRATE,
    FAIL_BLOCK,
    FAIL_STOP,
    FAIL_STANDBY,
    FAIL_FENCE,
    FAIL_RESTART_CONTAINER,
    FAIL_RESET_REMOTE,
    FAIL_DEMOTE,
) = range(10)


def _cmp_on_fail(first: int, second: int) -> int:
    """``cmp_on_fail``: >0 when ``first`` is more severe than ``second``."""
    if first == FAIL_DEMOTE:
        if second == FAIL_IGNORE:
            return 1
        if second == FAIL_DEMOTE:
            return 0
        return -1
    if first == FAIL_RESET_REMOTE:
        if second in (FAIL_IGNORE, FAIL_DEMOTE, FAIL_RECOVER):
            return 1
        if second == FAIL_RESET_REMOTE:
            return 0
        return -1
    if first == FAIL_RESTART_CONTAINER:
        if second in (FAIL_IGNORE, FAIL_DEMOTE, FAIL_RECOVER, FAIL_RESET_REMOTE):
            return 1
        if second == FAIL_RESTART_CONTAINER:
            return 0
        return -1
    if second == FAIL_DEMOTE:
        return -1 if first == FAIL_IGNORE else 1
    if second == FAIL_RESET_REMOTE:
        return -1 if first in (FAIL_IGNORE, FAIL_DEMOTE, FAIL_RECOVER) else 1
    if second == FAIL_RESTART_CONTAINER:
        return -1 if first in (FAIL_IGNORE, FAIL_DEMOTE, FAIL_RECOVER, FAIL_RESET_REMOTE) else 1
    return first - second


# --------------------------------------------------------------------------------------------------------------
# Working objects
# --------------------------------------------------------------------------------------------------------------


class _PNode:
    __slots__ = (
        "id", "uname", "type", "online", "unclean", "standby", "maintenance", "shutdown", "expected_up", "unpacked", "remote_rsc", "remote_was_fenced",
        "remote_requires_reset", "attrs",
    )

    def __init__(self, node_id: str, uname: Optional[str], node_type: str) -> None:
        self.id = node_id
        self.uname = uname
        self.type = node_type  # "member" | "remote" | "ping"
        self.online = False
        self.unclean = False
        self.standby = False
        self.maintenance = False
        self.shutdown = False
        self.expected_up = False
        self.unpacked = False
        self.remote_rsc: Optional[_Rsc] = None
        self.remote_was_fenced = 0
        self.remote_requires_reset = False
        self.attrs: Dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.uname if self.uname is not None else self.id

    # pe__is_remote_node / pe__is_guest_node
    def is_remote(self) -> bool:
        return self.type == "remote" and (self.remote_rsc is None or self.remote_rsc.container is None)

    def is_guest(self) -> bool:
        return self.type == "remote" and self.remote_rsc is not None and self.remote_rsc.container is not None

    def is_guest_or_remote(self) -> bool:
        return self.type == "remote"


class _Rsc:
    __slots__ = (
        "id", "xml", "variant", "parent", "children", "meta", "params", "ops", "cls", "provider", "agent",
        "managed", "unique", "promotable", "is_remote_node", "container", "role",
        "failed", "running_on", "orphan", "orphan_container_filler", "remote_reconnect_ms",
        "failure_timeout", "recovery_type", "partial_migration_source", "partial_migration_target", "clone_name",
        "config", "bundle", "clone_max", "instances", "needs_fencing",
    )

    def __init__(self, rid: str, variant: str, parent: Optional["_Rsc"]) -> None:
        self.id = rid
        self.xml: Optional[ElementTree.Element] = None
        self.variant = variant  # primitive | group | clone | bundle
        self.parent = parent
        self.children: List[_Rsc] = []
        self.meta: Dict[str, str] = {}
        self.params: Dict[str, str] = {}
        self.ops: List[ElementTree.Element] = []
        self.cls: Optional[str] = None
        self.provider: Optional[str] = None
        self.agent: Optional[str] = None
        self.managed = True
        self.unique = True
        self.promotable = False
        self.is_remote_node = False
        self.container: Optional[_Rsc] = None
        self.role = ROLE_STOPPED
        self.failed = False
        self.running_on: List[_PNode] = []
        self.orphan = False
        self.orphan_container_filler = False
        self.remote_reconnect_ms = 0
        self.failure_timeout = 0
        self.recovery_type = "stop_start"
        self.partial_migration_source: Optional[_PNode] = None
        self.partial_migration_target: Optional[_PNode] = None
        self.clone_name: Optional[str] = None
        self.config: Optional[_Rsc] = None  # for a clone instance: its configured primitive
        self.bundle: Optional[_Bundle] = None
        self.clone_max = 0
        self.instances: List[_Rsc] = []  # for a primitive in a clone: its instances seen in the history
        self.needs_fencing = False  # "requires" resolves to fencing/unfencing

    def uber_parent(self) -> "_Rsc":
        r = self
        while r.parent is not None and r.parent.variant != "bundle":
            r = r.parent
        return r

    def is_bundled(self) -> bool:
        return self.uber_parent().parent is not None


class _Replica:
    __slots__ = ("offset", "ip", "remote")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.ip: Optional[str] = None
        self.remote: Optional[_Rsc] = None


class _Bundle:
    __slots__ = ("rsc", "control_port", "replicas")

    def __init__(self, rsc: _Rsc) -> None:
        self.rsc = rsc
        self.control_port: Optional[str] = None
        self.replicas: List[_Replica] = []


def _next_ip(last: str) -> Optional[str]:
    """Bundle ``next_ip()``: IPv4 only; after x.y.z.254 comes x.y.(z+1).1; nothing after x.y.254.254."""
    m = re.match(r"^\s*(\d+)\.(\d+)\.(\d+)\.(\d+)", last)
    if not m:
        return None
    o1, o2, o3, o4 = (int(g) for g in m.groups())
    if o3 > 253:
        return None
    if o4 > 253:
        o3 += 1
        o4 = 1
    else:
        o4 += 1
    return f"{o1}.{o2}.{o3}.{o4}"


# --------------------------------------------------------------------------------------------------------------
# The unpacker
# --------------------------------------------------------------------------------------------------------------

_RSC_TAGS = ("primitive", "group", "clone", "master", "bundle")


class _Cluster:
    """A CIB unpacked the way Pacemaker's scheduler library does it, as far as node states need."""

    def __init__(self, root: ElementTree.Element, *, now: Optional[float] = None,
                 membership_timestamps: Optional[bool] = None) -> None:
        if root.tag != "cib":
            raise RemotectlError(f"not a CIB: the root element is <{root.tag}>, not <cib>")
        self.root = root
        self.now = int(time.time() if now is None else now)
        self._ids: Optional[Dict[str, ElementTree.Element]] = None
        self.nodes: List[_PNode] = []
        self._by_uname: Dict[str, _PNode] = {}
        self._by_id: Dict[str, _PNode] = {}
        self.prims: Dict[str, _Rsc] = {}  # unique primitives (incl. implicit and orphans) by id
        self.collectives: Dict[str, _Rsc] = {}  # groups, clones, bundles by id
        self.clone_prims: Dict[str, _Rsc] = {}  # primitives inside clones, by their configured id
        self.templates: Dict[str, ElementTree.Element] = {}
        self._lrm_index: Optional[Dict[Tuple[str, str], ElementTree.Element]] = None
        self._stop_needed: List[_Rsc] = []

        if membership_timestamps is None:
            membership_timestamps = values.version_tuple(root.get("crm_feature_set")) >= (3, 18)
        self.membership_timestamps = membership_timestamps

        self.rsc_defaults = self._first(root, "rsc_defaults")
        self.op_defaults = self._first(root, "op_defaults")
        self._unpack_config()

    # ---- generic helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _first(root: ElementTree.Element, tag: str) -> Optional[ElementTree.Element]:
        conf = root.find("configuration")
        if conf is not None:
            el = conf.find(tag)
            if el is not None:
                return el
        return root.find(".//" + tag)

    def _expand_idref(self, el: ElementTree.Element) -> Optional[ElementTree.Element]:
        ref = el.get("id-ref")
        if ref is None:
            return el
        if self._ids is None:
            self._ids = {}
            for e in self.root.iter():
                i = e.get("id")
                if i is not None and "id-ref" not in e.attrib:
                    self._ids.setdefault(i, e)
        return self._ids.get(ref)

    def _unpack_sets(self, parent: Optional[ElementTree.Element], set_tag: str, into: Dict[str, str],
                     overwrite: bool = False, first_id: Optional[str] = None) -> None:
        """``pe__unpack_dataset_nvpairs``: blocks by score (``first_id`` first), rule-guarded blocks skipped."""
        if parent is None:
            return
        pairs = []
        for child in parent:
            if child.tag != set_tag:
                continue
            block = self._expand_idref(child)
            if block is None:
                continue
            pairs.append(block)
        if not pairs:
            return
        pairs.reverse()  # Pacemaker prepends, then stable-sorts

        def sort_key(block: ElementTree.Element) -> Tuple[int, int]:
            special = 0 if (first_id is not None and (block.get("id") or "").lower() == first_id.lower()) else 1
            return (special, -values.char2score(block.get("score")))

        pairs.sort(key=sort_key)
        for block in pairs:
            if block.find("rule") is not None:
                continue  # documented divergence: rules are not evaluated
            items = block
            first = next(iter(block), None)
            if first is not None and first.tag == "attributes":
                items = first
            for nv in items:
                if nv.tag != "nvpair":
                    continue
                name = nv.get("name")
                value = nv.get("value")
                if name is None or value is None:
                    ref = self._expand_idref(nv) if nv.get("id-ref") is not None else None
                    if ref is not None:
                        name = name if name is not None else ref.get("name")
                        value = value if value is not None else ref.get("value")
                if name is None or value is None:
                    continue
                if value.lower() == "#default":
                    into.pop(name, None)
                elif name not in into or overwrite:
                    into[name] = value

    # ---- configuration ------------------------------------------------------------------------------------

    def _unpack_config(self) -> None:
        opts: Dict[str, str] = {}
        crm_config = self._first(self.root, "crm_config")
        self._unpack_sets(crm_config, "cluster_property_set", opts, first_id="cib-bootstrap-options")

        def flag(name: str, default: bool) -> bool:
            b = values.str_to_boolean(opts.get(name))
            return default if b is None else b

        self.stonith_enabled = flag("stonith-enabled", True)
        self.maintenance_mode = flag("maintenance-mode", False)
        self.startup_fencing = self.stonith_enabled and flag("startup-fencing", True)
        self.stop_orphan_resources = flag("stop-orphan-resources", True)
        self.have_quorum = values.is_true(self.root.get("have-quorum"))
        policy = (opts.get("no-quorum-policy") or "stop").lower()
        if policy not in ("stop", "freeze", "ignore", "demote", "suicide"):
            policy = "stop"
        if policy == "suicide":
            if self.stonith_enabled:
                panic = values.scan_ll(self.root.get("no-quorum-panic")) or 0
                policy = "suicide" if (panic or self.have_quorum) else "stop"
            else:
                policy = "stop"
        self.no_quorum_policy = policy
        self.legacy_failcounts = values.version_tuple(self.root.get("crm_feature_set")) < (3, 0, 13)
        self.enable_unfencing = False
        for holder in (self._first(self.root, "resources"), self.rsc_defaults):
            if holder is None:
                continue
            for ma in holder.iter("meta_attributes"):
                for nv in ma.findall("nvpair"):
                    if nv.get("name") in ("provides", "requires") and nv.get("value") == "unfencing":
                        self.enable_unfencing = True

    # ---- nodes ------------------------------------------------------------------------------------------------

    def find_node(self, uname: Optional[str]) -> Optional[_PNode]:
        if uname is None:
            return None
        return self._by_uname.get(uname.lower())

    def find_node_any(self, node_id: Optional[str], uname: Optional[str]) -> Optional[_PNode]:
        if node_id is not None:
            n = self._by_id.get(node_id.lower())
            if n is not None:
                return n
        return self.find_node(uname)

    def create_node(self, node_id: str, uname: Optional[str], node_type: Optional[str]) -> _PNode:
        t = (node_type or "member").lower()
        if t not in ("member", "remote"):
            t = "ping"
        node = _PNode(node_id, uname, t)
        self.nodes.append(node)
        if uname is not None:
            self._by_uname.setdefault(uname.lower(), node)
        self._by_id.setdefault(node_id.lower(), node)
        return node

    def _handle_startup_fencing(self, node: _PNode) -> None:
        if node.type == "remote" and node.remote_rsc is None:
            return
        node.unclean = self.startup_fencing

    def unpack_nodes(self) -> None:
        nodes_el = self._first(self.root, "nodes")
        if nodes_el is None:
            return
        for el in nodes_el:
            if el.tag != "node":
                continue
            node_id = el.get("id")
            if node_id is None:
                continue
            node = self.create_node(node_id, el.get("uname"), el.get("type"))
            self._handle_startup_fencing(node)
            self._unpack_sets(el, "instance_attributes", node.attrs, overwrite=False)

    # ---- resources --------------------------------------------------------------------------------------------

    @staticmethod
    def _contains_remote_node(el: ElementTree.Element, cls=None, provider=None, agent=None) -> bool:
        cls = el.get("class") if cls is None else cls
        provider = el.get("provider") if provider is None else provider
        agent = el.get("type") if agent is None else agent
        return (
            (agent or "").lower() == "remote"
            and (cls or "").lower() == "ocf"
            and (provider or "").lower() == "pacemaker"
        )

    def unpack_remote_nodes(self, resources: ElementTree.Element) -> List[ElementTree.Element]:
        """Create remote and guest nodes; return the implicit guest connection primitives to unpack later."""
        implicit: List[ElementTree.Element] = []
        for el in list(resources):
            if self._contains_remote_node(el):
                rid = el.get("id")
                if rid and self.find_node(rid) is None:
                    self.create_node(rid, rid, "remote")
                continue
            if el.tag == "primitive":
                self._expand_remote_rsc_meta(el, implicit)
            elif el.tag == "group":
                for child in el:
                    self._expand_remote_rsc_meta(child, implicit)
        return implicit

    def _expand_remote_rsc_meta(self, el: ElementTree.Element, implicit: List[ElementTree.Element]) -> None:
        remote_name = server = port = allow_migrate = is_managed = None
        connect_timeout: Optional[str] = "60s"
        for block in el:
            if block.tag.lower() != "meta_attributes":
                continue
            for nv in block:
                name = (nv.get("name") or "").lower()
                value = nv.get("value")
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
        xml = _remote_xml(remote_name, el.get("id"), allow_migrate, is_managed, connect_timeout, server, port)
        implicit.append(xml)
        if self.find_node(remote_name) is None:
            self.create_node(remote_name, remote_name, "remote")

    def _get_meta(self, rsc: _Rsc, xml: ElementTree.Element, extra_sets: Sequence[ElementTree.Element] = ()) -> None:
        meta: Dict[str, str] = {}
        for k, v in xml.attrib.items():
            if v.lower() != "#default" and k not in meta:
                meta[k] = v
        holder = _merged(xml, extra_sets)
        self._unpack_sets(holder, "meta_attributes", meta)
        if rsc.parent is not None:
            parent_orig: Dict[str, str] = {}
            p: Optional[_Rsc] = rsc.parent
            while p is not None:
                if p.xml is not None:
                    self._unpack_sets(p.xml, "meta_attributes", parent_orig)
                p = p.parent
            for k, v in parent_orig.items():
                if v.lower() != "#default" and k not in meta:
                    meta[k] = v
        self._unpack_sets(self.rsc_defaults, "meta_attributes", meta)
        if rsc.parent is not None:
            for k, v in rsc.parent.meta.items():
                if k not in meta:
                    meta[k] = v
        rsc.meta = meta

    def _unpack_resource(self, xml: ElementTree.Element, parent: Optional[_Rsc]) -> Optional[_Rsc]:
        """``pe__unpack_resource``: build one resource (recursively) and register it."""
        rid = xml.get("id")
        if not rid:
            return None
        tag = xml.tag
        variant = {"primitive": "primitive", "group": "group", "clone": "clone", "master": "clone",
                   "bundle": "bundle"}.get(tag)
        if variant is None:
            return None
        extra_sets: List[ElementTree.Element] = []
        cls, provider, agent = xml.get("class"), xml.get("provider"), xml.get("type")
        ops: List[ElementTree.Element] = []
        if tag == "primitive" and xml.get("template"):
            tmpl = self.templates.get(xml.get("template") or "")
            if tmpl is None:
                return None
            cls = cls if cls is not None else tmpl.get("class")
            provider = provider if provider is not None else tmpl.get("provider")
            agent = agent if agent is not None else tmpl.get("type")
            extra_sets = list(tmpl)
            for o in tmpl.findall("operations"):
                ops.extend(o.findall("op"))
        rsc = _Rsc(rid, variant, parent)
        rsc.xml = xml
        rsc.cls, rsc.provider, rsc.agent = cls, provider, agent
        operations = xml.find("operations")
        if operations is not None:
            operations = self._expand_idref(operations)
        own_ops = operations.findall("op") if operations is not None else []
        rsc.ops = own_ops + ops

        self._get_meta(rsc, xml, extra_sets)
        if tag == "primitive":
            self._unpack_sets(_merged(xml, extra_sets), "instance_attributes", rsc.params)

        meta = rsc.meta
        if self._contains_remote_node(xml, cls, provider, agent):
            rsc.is_remote_node = True
        top = rsc.uber_parent()
        if top.variant == "clone":
            rsc.unique = values.is_true(meta.get("globally-unique"))
            rsc.promotable = values.is_true(meta.get("promotable")) or (top.xml is not None and top.xml.tag == "master")
        else:
            rsc.unique = True
        self._apply_meta(rsc)
        if rsc.is_remote_node and meta.get("container") is None:
            ri = rsc.params.get("reconnect_interval")
            if ri:
                rsc.remote_reconnect_ms = values.parse_interval_ms(ri)
                rsc.failure_timeout = rsc.remote_reconnect_ms // 1000

        if variant == "primitive":
            if top.variant == "clone":
                self.clone_prims.setdefault(rid, rsc)
            else:
                self.prims.setdefault(rid, rsc)
        else:
            self.collectives.setdefault(rid, rsc)

        if variant == "group":
            for child in xml:
                if child.tag == "primitive":
                    c = self._unpack_resource(child, rsc)
                    if c is not None:
                        rsc.children.append(c)
        elif variant == "clone":
            cm = meta.get("clone-max")
            rsc.clone_max = max(1, len(self.nodes)) if cm is None else values.scan_min_int(cm, 0)
            for child in xml:
                if child.tag in ("primitive", "group"):
                    c = self._unpack_resource(child, rsc)
                    if c is not None:
                        rsc.children.append(c)
                    break
        elif variant == "bundle":
            if not self._unpack_bundle(rsc, xml):
                self.collectives.pop(rid, None)
                return None
        return rsc

    def _apply_meta(self, rsc: _Rsc) -> None:
        """What ``rsc.meta`` decides here (class, variant and ``is_remote_node`` already set): managed,
        ``requires``, ``multiple-active`` and ``failure-timeout``."""
        meta = rsc.meta
        rsc.managed = not self.maintenance_mode
        managed = meta.get("is-managed")
        if managed is not None and managed.lower() != "default":
            rsc.managed = values.is_true(managed)
        if values.is_true(meta.get("maintenance")) or self.maintenance_mode:
            rsc.managed = False
        rsc.needs_fencing = self._needs_fencing(rsc, meta.get("requires"))
        recovery = (meta.get("multiple-active") or "stop_start").lower()
        rsc.recovery_type = recovery if recovery in ("stop_only", "block", "stop_unexpected") else "stop_start"
        ft = meta.get("failure-timeout")
        if ft is not None:
            rsc.failure_timeout = values.parse_interval_ms(ft) // 1000

    def _needs_fencing(self, rsc: _Rsc, requires: Optional[str]) -> bool:
        """``unpack_requires``: does the resource's "requires" come down to fencing?"""
        fence_device = (rsc.cls or "").lower() == "stonith"
        value = (requires or "").lower()
        if value not in ("nothing", "quorum", "fencing", "unfencing"):
            if fence_device or (rsc.variant == "primitive" and rsc.is_remote_node):
                value = "quorum"
            elif self.enable_unfencing:
                value = "unfencing"
            elif self.stonith_enabled:
                value = "fencing"
            else:
                value = "quorum"
        if value == "fencing":
            return True
        if value == "unfencing":
            return not fence_device and self.stonith_enabled
        return False

    def _unpack_bundle(self, rsc: _Rsc, xml: ElementTree.Element) -> bool:
        agent_el = None
        agent = None
        for name in ("docker", "rkt", "podman"):
            agent_el = xml.find(name)
            if agent_el is not None:
                agent = name
                break
        if agent_el is None or agent is None:
            return False
        promoted_max = values.scan_min_int(agent_el.get("promoted-max", agent_el.get("masters")), 0)
        replicas_s = agent_el.get("replicas")
        if replicas_s is None and promoted_max > 0:
            nreplicas = promoted_max
        else:
            nreplicas = values.scan_min_int(replicas_s, 1)
        per_host = values.scan_min_int(agent_el.get("replicas-per-host"), 1)
        if per_host == 1:
            rsc.unique = False
        net = xml.find("network")
        ip_start = net.get("ip-range-start") if net is not None else None
        control_port = net.get("control-port") if net is not None else None
        valid_network = bool(ip_start) or bool(control_port)
        prim_xml = xml.find("primitive")
        if prim_xml is not None and not valid_network:
            return False  # Pacemaker refuses the whole bundle

        bundle = _Bundle(rsc)
        bundle.control_port = control_port
        rsc.bundle = bundle
        child_clone: Optional[_Rsc] = None
        if prim_xml is not None:
            clone_xml = ElementTree.Element("clone", {"id": f"{rsc.id}-{'master' if promoted_max else 'clone'}"})
            ms = ElementTree.SubElement(clone_xml, "meta_attributes", {"id": f"{rsc.id}-clone-meta"})
            for k, v in (
                ("ordered", "true"),
                ("clone-max", str(nreplicas)),
                ("clone-node-max", str(per_host)),
                ("globally-unique", "true" if per_host > 1 else "false"),
            ):
                ElementTree.SubElement(ms, "nvpair", {"name": k, "value": v})
            if promoted_max:
                ElementTree.SubElement(ms, "nvpair", {"name": "promotable", "value": "true"})
                ElementTree.SubElement(ms, "nvpair", {"name": "promoted-max", "value": str(promoted_max)})
            clone_xml.append(prim_xml)
            child_clone = self._unpack_resource(clone_xml, rsc)

        ip_last: Optional[str] = None
        for i in range(nreplicas):
            rep = _Replica(i)
            if ip_start:
                rep.ip = _next_ip(ip_last) if ip_last else ip_start
                ip_last = rep.ip
            bundle.replicas.append(rep)

        for rep in bundle.replicas:
            cid = f"{rsc.id}-{agent}-{rep.offset}".replace(":", ".").replace("#", ".")
            cxml = ElementTree.Element("primitive", {"id": cid, "class": "ocf", "provider": "heartbeat",
                                                     "type": agent})
            ops = ElementTree.SubElement(cxml, "operations")
            ElementTree.SubElement(ops, "op", {"id": f"{cid}-monitor-60s", "name": "monitor", "interval": "60s"})
            container = self._unpack_resource(cxml, rsc)
            if container is None:
                return False
            container.bundle = bundle
            rsc.children.append(container)
            if rep.ip:
                iid = f"{rsc.id}-ip-{rep.ip}".replace(":", ".").replace("#", ".")
                ixml = ElementTree.Element("primitive", {"id": iid, "class": "ocf", "provider": "heartbeat",
                                                         "type": "IPaddr2"})
                ops = ElementTree.SubElement(ixml, "operations")
                ElementTree.SubElement(ops, "op", {"id": f"{iid}-monitor-60s", "name": "monitor",
                                                   "interval": "60s"})
                ip_rsc = self._unpack_resource(ixml, rsc)
                if ip_rsc is not None:
                    rsc.children.append(ip_rsc)
            if child_clone is not None:
                rid = f"{rsc.id}-{rep.offset}"
                if rid in self.prims or rid in self.collectives or rid in self.clone_prims:
                    rid = f"pcmk-internal-{child_clone.children[0].id if child_clone.children else rsc.id}" \
                          f"-remote-{rep.offset}"
                rxml = _remote_xml(rid, container.id, None, None, None, rep.ip or "#uname",
                                   control_port or str(DEFAULT_REMOTE_PORT))
                node = self.find_node(rid)
                if node is None:
                    node = self.create_node(rid, rid, "remote")
                remote = self._unpack_resource(rxml, rsc)
                if remote is None:
                    return False
                remote.bundle = bundle
                remote.container = container
                node.remote_rsc = remote
                rep.remote = remote
                rsc.children.append(remote)
        if child_clone is not None:
            rsc.children.append(child_clone)
        return True

    def unpack_resources(self) -> None:
        resources = self._first(self.root, "resources")
        if resources is None:
            return
        for el in resources:
            if el.tag == "template" and el.get("id"):
                self.templates.setdefault(el.get("id") or "", el)
        implicit = self.unpack_remote_nodes(resources)
        top: List[_Rsc] = []
        for el in list(resources) + implicit:
            if el.tag not in _RSC_TAGS or not el.get("id"):
                continue
            r = self._unpack_resource(el, None)
            if r is not None:
                top.append(r)
        for r in top:
            self._setup_container(r)
            self._link_rsc2remotenode(r)

    def _find_resource(self, rid: Optional[str]) -> Optional[_Rsc]:
        if rid is None:
            return None
        return self.prims.get(rid) or self.collectives.get(rid)

    def _setup_container(self, rsc: _Rsc) -> None:
        if rsc.children:
            for c in rsc.children:
                self._setup_container(c)
            return
        cid = rsc.meta.get("container")
        if cid and cid.lower() != rsc.id.lower() and rsc.container is None:
            container = self._find_resource(cid)
            if container is not None:
                rsc.container = container

    def _link_rsc2remotenode(self, rsc: _Rsc) -> None:
        if not rsc.is_remote_node:
            return
        node = self.find_node(rsc.id)
        if node is None:
            return
        node.remote_rsc = rsc
        if rsc.container is None:
            self._handle_startup_fencing(node)

    # ---- status -----------------------------------------------------------------------------------------------

    def unpack_status(self) -> None:
        status = self.root.find("status")
        if status is None:
            status = self.root.find(".//status")
        states = [s for s in status if s.tag == "node_state"] if status is not None else []
        self._states = states
        for state in states:
            self._unpack_node_state(state)
        while self._unpack_node_history(states, fence=False):
            pass
        self._unpack_node_history(states, fence=self.stonith_enabled)
        for container in self._stop_needed:  # containers of failed bundle connections
            self._stop_action(container, container.running_on[0] if container.running_on else None)
        for node in self.nodes:
            if node.is_guest_or_remote() and not node.unpacked:
                self._determine_remote_online_status(node)

    def _lrm_resource(self, node_name: Optional[str], rsc_id: str) -> Optional[ElementTree.Element]:
        if node_name is None:
            return None
        if self._lrm_index is None:
            idx: Dict[Tuple[str, str], ElementTree.Element] = {}
            for state in self._states:
                uname = state.get("uname")
                if uname is None:
                    continue
                for lrm in state.iter("lrm_resource"):
                    i = lrm.get("id")
                    if i is not None:
                        idx.setdefault((uname, i), lrm)
            self._lrm_index = idx
        return self._lrm_index.get((node_name, rsc_id))

    def _find_lrm_op(self, rsc_id: str, task: str, node_name: Optional[str], source: Optional[str],
                     target_rc: int) -> Optional[ElementTree.Element]:
        lrm = self._lrm_resource(node_name, rsc_id)
        if lrm is None:
            return None
        found = None
        for op in lrm.iter("lrm_rsc_op"):
            if op.get("operation") != task:
                continue
            if source is not None and task == "migrate_to" and op.get("migrate_target") != source:
                continue
            if source is not None and task == "migrate_from" and op.get("migrate_source") != source:
                continue
            found = op
            break
        if found is not None and target_rc >= 0:
            rc = values.element_int(found, "rc-code", OCF_UNKNOWN_ERROR)
            st = values.element_int(found, "op-status", EXEC_ERROR)
            if rc != target_rc or st != EXEC_DONE:
                return None
        return found

    def _unpack_transient(self, state: ElementTree.Element, node: _PNode) -> None:
        attrs = state.find("transient_attributes")
        if attrs is not None:
            self._unpack_sets(attrs, "instance_attributes", node.attrs, overwrite=True)

    def _unpack_node_state(self, state: ElementTree.Element) -> None:
        node_id = state.get("id")
        uname = state.get("uname")
        if node_id is None or uname is None:
            return
        node = self.find_node_any(node_id, uname)
        if node is None:
            return
        if node.is_guest_or_remote():
            node.remote_was_fenced = max(0, values.scan_ll(state.get("node_fenced")) or 0)
            return
        self._unpack_transient(state, node)
        if values.is_true(node.attrs.get("standby")):
            node.standby = True
        if values.is_true(node.attrs.get("maintenance")):
            node.maintenance = True
        node.unclean = False
        self._determine_online_status(state, node)
        if not self.have_quorum and node.online and self.no_quorum_policy == "suicide":
            self.fence_node(node)

    def _in_cluster(self, value: Optional[str]) -> bool:
        b = values.str_to_boolean(value)
        if b is not None or not self.membership_timestamps:
            return bool(b)
        n = values.scan_ll(value)
        return n is not None and n > 0

    def _crmd_online(self, value: Optional[str]) -> bool:
        if value is not None and value.lower() == "online":
            return True
        if not self.membership_timestamps or value is None:
            return False
        n = values.scan_ll(value)
        return n is not None and n > 0

    def _shutdown_requested(self, node: _PNode) -> bool:
        value = node.attrs.get("shutdown")
        return value is not None and value != "0"

    def _determine_online_status(self, state: ElementTree.Element, node: _PNode) -> None:
        exp_state = state.get("expected")
        node.shutdown = False
        node.expected_up = False
        if self._shutdown_requested(node):
            node.shutdown = True
        elif (exp_state or "").lower() == "member":
            node.expected_up = True
        if node.type == "ping":
            node.unclean = False
            online = False
        elif not self.stonith_enabled:
            online = self._online_no_fencing(state, node)
        else:
            online = self._online_fencing(state, node)
        if online:
            node.online = True

    def _online_no_fencing(self, state: ElementTree.Element, node: _PNode) -> bool:
        join = (state.get("join") or "").lower()
        if not self._in_cluster(state.get("in_ccm")):
            return False
        if self._crmd_online(state.get("crmd")):
            return join == "member"
        if not node.expected_up:
            return False
        self.fence_node(node)
        return False

    def _online_fencing(self, state: ElementTree.Element, node: _PNode) -> bool:
        join = state.get("join")
        join_l = (join or "").lower()
        in_ccm = state.get("in_ccm")
        in_cluster = self._in_cluster(in_ccm)
        crmd_online = self._crmd_online(state.get("crmd"))
        exp_state = (state.get("expected") or "down").lower()
        terminate = node.attrs.get("terminate")
        do_terminate = values.is_true(terminate) or bool(
            terminate and terminate[0] != "0" and terminate[0].isdigit()
        )
        online = in_cluster
        if node.shutdown:
            return crmd_online
        if in_ccm is None:
            self.fence_node(node)
        elif join_l == "banned":  # CRMD_JOINSTATE_NACK
            self.fence_node(node)
        elif not do_terminate and exp_state == "down":
            if in_cluster or crmd_online:
                node.standby = True
        elif do_terminate and join_l == "down" and not in_cluster and not crmd_online:
            online = False
        elif not in_cluster:
            self.fence_node(node)
        elif not crmd_online:
            self.fence_node(node)
        elif do_terminate:
            self.fence_node(node)
        elif join_l == "member":
            pass
        elif join_l in ("pending", "down"):
            node.standby = True
        else:
            self.fence_node(node)
        return online

    def fence_node(self, node: _PNode) -> None:
        """``pe_fence_node`` as far as node flags go."""
        if node.is_guest():
            assert node.remote_rsc is not None and node.remote_rsc.container is not None
            container = node.remote_rsc.container
            if not container.failed and container.managed:
                node.remote_requires_reset = True
                container.failed = True
        elif (node.is_guest_or_remote() and node.remote_rsc is not None and node.remote_rsc.container is None
              and node.remote_rsc.orphan_container_filler):
            node.remote_rsc.failed = True
        elif node.is_remote():
            rsc = node.remote_rsc
            if rsc is not None and not rsc.managed:
                pass
            elif not node.remote_requires_reset:
                node.remote_requires_reset = True
            node.unclean = True
        elif node.unclean:
            pass
        else:
            node.unclean = True

    def _unpack_node_history(self, states: List[ElementTree.Element], fence: bool) -> bool:
        again = False
        for state in states:
            node_id = state.get("id")
            uname = state.get("uname")
            if node_id is None or uname is None:
                continue
            node = self.find_node_any(node_id, uname)
            if node is None or node.unpacked:
                continue
            if fence:
                pass
            elif node.is_guest():
                rsc = node.remote_rsc
                assert rsc is not None and rsc.container is not None
                if rsc.role != ROLE_STARTED or rsc.container.role != ROLE_STARTED:
                    continue
            elif node.is_remote():
                rsc = node.remote_rsc
                if rsc is None or rsc.role != ROLE_STARTED:
                    continue
            elif not self.stonith_enabled and not node.online:
                continue
            if node.is_guest_or_remote():
                self._determine_remote_online_status(node)
                self._unpack_handle_remote_attrs(node, state)
            node.unpacked = True
            self._unpack_node_lrm(node, state)
            again = True
        return again

    def _determine_remote_online_status(self, node: _PNode) -> None:
        rsc = node.remote_rsc
        if rsc is None:
            node.online = False
            return
        container = rsc.container
        host = rsc.running_on[0] if (container is not None and len(rsc.running_on) == 1) else None
        if rsc.role == ROLE_STARTED:
            node.online = True
        if container is not None and container.failed:
            node.online = False
            node.remote_requires_reset = True
        elif rsc.failed:
            node.online = False
        elif rsc.role == ROLE_STOPPED or (container is not None and container.role == ROLE_STOPPED):
            node.online = False
            node.remote_requires_reset = False
        elif host is not None and not host.online and host.unclean:
            node.online = False
            node.remote_requires_reset = True

    def _unpack_handle_remote_attrs(self, node: _PNode, state: ElementTree.Element) -> None:
        rsc = node.remote_rsc
        if not node.remote_requires_reset:
            node.unclean = False
        self._unpack_transient(state, node)
        if self._shutdown_requested(node):
            node.shutdown = True
        if values.is_true(node.attrs.get("standby")):
            node.standby = True
        if values.is_true(node.attrs.get("maintenance")) or (rsc is not None and not rsc.managed):
            node.maintenance = True

    # ---- resource history -------------------------------------------------------------------------------------

    def _unpack_node_lrm(self, node: _PNode, state: ElementTree.Element) -> None:
        lrm = state.find("lrm")
        if lrm is None:
            return
        resources = lrm.find("lrm_resources")
        if resources is None:
            return
        found_filler = False
        for entry in resources:
            if entry.tag != "lrm_resource":
                continue
            rsc = self._unpack_lrm_resource(node, entry)
            if rsc is not None and rsc.orphan_container_filler:
                found_filler = True
        if found_filler:
            for entry in resources:
                if entry.tag != "lrm_resource":
                    continue
                cid, rid = entry.get("container"), entry.get("id")
                if cid is None or rid is None:
                    continue
                container = self._find_resource(cid)
                rsc = self._find_resource(rid)
                if container is None or rsc is None or not rsc.orphan_container_filler or rsc.container is not None:
                    continue
                rsc.container = container

    def _instance(self, config: _Rsc, lrm_id: str) -> _Rsc:
        inst = _Rsc(lrm_id, "primitive", config.parent)
        for attr in ("xml", "meta", "params", "ops", "cls", "provider", "agent", "managed", "unique",
                     "promotable", "is_remote_node", "container", "remote_reconnect_ms", "failure_timeout",
                     "recovery_type", "bundle", "needs_fencing"):
            setattr(inst, attr, getattr(config, attr))
        inst.clone_name = lrm_id
        inst.config = config
        config.instances.append(inst)
        return inst

    def _find_history_rsc(self, node: _PNode, rsc_id: str) -> Optional[_Rsc]:
        """``unpack_find_resource``: the resource a history entry belongs to, or None for an orphan."""
        rsc = self.prims.get(rsc_id)
        if rsc is not None:
            return rsc
        if rsc_id in self.collectives:
            return None  # no longer a primitive: orphan
        config = self.clone_prims.get(rsc_id) or self.clone_prims.get(_clone_strip(rsc_id))
        if config is None:
            return None
        clone = config.uber_parent()
        if config.unique:
            m = re.match(r"^(.*):([0-9]+)$", rsc_id)
            if not m or m.group(1) != config.id or int(m.group(2)) >= max(clone.clone_max, 0):
                return None
            return self._instance(config, rsc_id)
        if config.is_bundled():
            bundle = clone.parent.bundle if clone.parent is not None else None
            rr = node.remote_rsc
            if bundle is None or rr is None or rr.bundle is not bundle:
                return None
            return self._instance(config, rsc_id)
        return self._instance(config, rsc_id)

    def _create_orphan(self, entry: ElementTree.Element) -> _Rsc:
        rid = entry.get("id") or ""
        rsc = _Rsc(rid, "primitive", None)
        rsc.cls, rsc.provider, rsc.agent = entry.get("class"), entry.get("provider"), entry.get("type")
        rsc.xml = entry
        meta: Dict[str, str] = {}
        for k, v in entry.attrib.items():
            meta.setdefault(k, v)
        self._unpack_sets(self.rsc_defaults, "meta_attributes", meta)
        rsc.meta = meta
        if self._contains_remote_node(entry):
            rsc.is_remote_node = True
            rnode = self.find_node(rid)
            if rnode is None:
                rnode = self.create_node(rid, rid, "remote")
            rnode.remote_rsc = rsc
            self._handle_startup_fencing(rnode)
            rnode.shutdown = True
        self._apply_meta(rsc)
        if entry.get("container") is not None:
            rsc.orphan_container_filler = True
        rsc.orphan = True
        if not self.stop_orphan_resources:
            rsc.managed = False
        self.prims[rid] = rsc
        return rsc

    def _unpack_lrm_resource(self, node: _PNode, entry: ElementTree.Element) -> Optional[_Rsc]:
        rsc_id = entry.get("id")
        if rsc_id is None:
            return None
        ops = [op for op in entry if op.tag == "lrm_rsc_op"]
        if not ops:
            return None
        rsc = self._find_history_rsc(node, rsc_id)
        if rsc is None:
            rsc = self._create_orphan(entry)
        saved_role = rsc.role
        rsc.role = ROLE_UNKNOWN
        ops.reverse()
        ops.sort(key=functools.cmp_to_key(_newer_op_cmp))
        st = _OpState()
        for op in ops:
            self._unpack_rsc_op(rsc, node, op, st)
        self._process_rsc_state(rsc, node, st.on_fail)
        if saved_role > rsc.role:
            rsc.role = saved_role
        return rsc

    @staticmethod
    def _set_active(rsc: _Rsc) -> None:
        rsc.role = ROLE_UNPROMOTED if rsc.uber_parent().promotable else ROLE_STARTED

    def _find_op_entry(self, rsc: _Rsc, key: str) -> Optional[ElementTree.Element]:
        names = {rsc.id}
        if rsc.clone_name:
            names.add(rsc.clone_name)
        if rsc.config is not None:
            names.add(rsc.config.id)
        key_l = key.lower()

        def search(k: str) -> Optional[ElementTree.Element]:
            for op in rsc.ops:
                name = op.get("name")
                interval = values.parse_interval_ms(op.get("interval"))
                for n in names:
                    if f"{n}_{name}_{interval}".lower() == k:
                        return op
            return None

        found = search(key_l)
        if found is not None:
            return found
        if "migrate_to" in key or "migrate_from" in key:
            return search(f"{rsc.id}_migrate_0".lower())
        if "_notify_" in key:
            return search(f"{rsc.id}_notify_0".lower())
        return None

    def _is_remote_conn(self, rsc: _Rsc) -> bool:
        if not rsc.is_remote_node:
            return False
        node = self.find_node(rsc.id)
        return node is not None and node.is_remote()

    def _action_on_fail(self, rsc: _Rsc, key: str, task: str) -> int:
        """``unpack_operation`` failure policy for one history entry."""
        interval_ms = _key_interval(key)
        op = self._find_op_entry(rsc, key)
        meta: Dict[str, str] = {}
        self._unpack_sets(self.op_defaults, "meta_attributes", meta)
        if op is not None:
            self._unpack_sets(op, "meta_attributes", meta, overwrite=True)
            for k, v in op.attrib.items():
                meta[k] = v
        value = meta.get("on-fail")
        if task == "stop" and value is not None and value.lower() in ("standby", "demote", "stop"):
            value = None
        elif task == "demote" and value is None:
            for o in rsc.ops:
                of = o.get("on-fail")
                if not of:
                    continue
                if values.str_to_boolean(o.get("enabled")) is False:
                    continue
                if (o.get("name") or "").lower() != "monitor" or (o.get("role") or "") not in ("Promoted", "Master"):
                    continue
                if values.parse_interval_ms(o.get("interval")) == 0 or of.lower() == "demote":
                    continue
                value = of
                break
        elif task == "delete":
            value = "ignore"
        elif value is not None and value.lower() == "demote":
            name = (op.get("name") if op is not None else None) or ""
            role = (op.get("role") if op is not None else None) or ""
            iv = values.parse_interval_ms(op.get("interval") if op is not None else None)
            if not (name.lower() == "promote" or (name.lower() == "monitor" and role in ("Promoted", "Master")
                                                  and iv > 0)):
                value = None

        on_fail: Optional[int] = None
        if value is not None:
            v = value.lower()
            if v == "block":
                on_fail = FAIL_BLOCK
            elif v == "fence":
                on_fail = FAIL_FENCE if self.stonith_enabled else FAIL_STOP
            elif v == "standby":
                on_fail = FAIL_STANDBY
            elif v in ("ignore", "nothing"):
                on_fail = FAIL_IGNORE
            elif v == "migrate":
                on_fail = FAIL_MIGRATE
            elif v == "stop":
                on_fail = FAIL_STOP
            elif v == "restart":
                on_fail = FAIL_RECOVER
            elif v == "restart-container":
                on_fail = FAIL_RESTART_CONTAINER if rsc.container is not None else None
            elif v == "demote":
                on_fail = FAIL_DEMOTE
        if on_fail is None and rsc.container is not None:
            return FAIL_RESTART_CONTAINER
        if ((on_fail is None or not rsc.managed) and self._is_remote_conn(rsc)
                and not (task == "monitor" and interval_ms == 0) and task != "start"):
            return FAIL_STOP if not rsc.managed else FAIL_RESET_REMOTE
        if on_fail is None and task == "stop":
            return FAIL_FENCE if self.stonith_enabled else FAIL_BLOCK
        if on_fail is None:
            return FAIL_RECOVER
        return on_fail

    def _unexpired_failcount(self, node: _PNode, rsc: _Rsc) -> int:
        """``pe_get_failcount`` with ``pe_fc_effective``: the fail count of ``rsc`` on ``node``, or 0 once
        ``failure-timeout`` has passed since its last failure."""
        name = rsc.clone_name or rsc.id
        if not rsc.unique:
            name = _clone_strip(name)
        inst = "" if rsc.unique else "(:[0-9]+)?"
        op_pat = "" if self.legacy_failcounts else "#.+_[0-9]+"
        fc_re = re.compile(f"^fail-count-{re.escape(name)}{inst}{op_pat}$")
        lf_re = re.compile(f"^last-failure-{re.escape(name)}{inst}{op_pat}$")
        count = 0
        last = 0
        for k, v in node.attrs.items():
            if fc_re.match(k):
                count = values.add_scores(count, values.char2score(v))
            elif lf_re.match(k):
                n = values.scan_ll(v)
                if n is not None:
                    last = max(last, n)
        if count > 0 and last > 0 and rsc.failure_timeout and self.now > last + rsc.failure_timeout:
            return 0
        return count

    def _check_operation_expiry(self, rsc: _Rsc, node: _PNode, rc: int, op: ElementTree.Element) -> bool:
        expired = False
        interval_ms = values.element_int(op, "interval", 0)
        task = op.get("operation")
        last_run = values.scan_ll(op.get("last-rc-change"))
        if rsc.failure_timeout > 0 and last_run is not None:
            if self.now >= last_run + rsc.failure_timeout and not self._ignore_failure_timeout(rsc, task, interval_ms):
                # not while a fail count still counts (Pacemaker: total fail count set and unexpired one not 0;
                # the unexpired count is either the total or 0)
                expired = self._unexpired_failcount(node, rsc) == 0
        if expired and interval_ms == 0 and task == "monitor" and rc in (
            OCF_OK, OCF_NOT_RUNNING, OCF_RUNNING_PROMOTED, OCF_DEGRADED, OCF_DEGRADED_PROMOTED
        ):
            expired = False
        return expired

    def _ignore_failure_timeout(self, rsc: _Rsc, task: Optional[str], interval_ms: int) -> bool:
        if rsc.remote_reconnect_ms and self.stonith_enabled and interval_ms != 0 and task == "monitor":
            rnode = self.find_node(rsc.id)
            if rnode is not None and not rnode.remote_was_fenced:
                return True
        return False

    def _remap_operation(self, op: ElementTree.Element, rsc: _Rsc, node: _PNode, st: "_OpState",
                         target_rc: int, rc: int, status: int, maskable: bool) -> Tuple[int, int]:
        task = op.get("operation")
        if task == "monitor":
            if rc == OCF_DEGRADED:
                rc = OCF_OK
            elif rc == OCF_DEGRADED_PROMOTED:
                rc = OCF_RUNNING_PROMOTED
        if maskable:
            status = EXEC_DONE
            rc = OCF_NOT_RUNNING
        if status not in (EXEC_DONE, EXEC_ERROR):
            return rc, status
        status = EXEC_DONE
        is_probe = _is_probe(op)
        if target_rc < 0:
            status = EXEC_ERROR
        elif target_rc != rc:
            status = EXEC_ERROR
        if rc == OCF_OK:
            if is_probe and target_rc == OCF_NOT_RUNNING:
                status = EXEC_DONE
        elif rc == OCF_NOT_RUNNING:
            if is_probe or target_rc == rc or not rsc.managed:
                status = EXEC_DONE
                rsc.role = ROLE_STOPPED
                st.on_fail = FAIL_IGNORE
        elif rc == OCF_RUNNING_PROMOTED:
            if is_probe and rc != target_rc:
                status = EXEC_DONE
            rsc.role = ROLE_PROMOTED
        elif rc in (OCF_DEGRADED_PROMOTED, OCF_FAILED_PROMOTED):
            rsc.role = ROLE_PROMOTED
            status = EXEC_ERROR
        elif rc == OCF_NOT_CONFIGURED:
            status = EXEC_ERROR_FATAL
        elif rc == OCF_UNIMPLEMENT_FEATURE:
            if values.element_int(op, "interval", 0) == 0:
                self._check_recoverable(rsc, node, task)
                status = EXEC_ERROR_HARD
            else:
                status = EXEC_NOT_SUPPORTED
        elif rc in (OCF_NOT_INSTALLED, OCF_INVALID_PARAM, OCF_INSUFFICIENT_PRIV):
            self._check_recoverable(rsc, node, task)
            status = EXEC_ERROR_HARD
        else:
            if status == EXEC_DONE:
                status = EXEC_ERROR
        return rc, status

    def _can_fence(self, node: _PNode) -> bool:
        """``pe_can_fence``."""
        if node.is_guest():
            return True
        if not self.stonith_enabled:
            return False
        if self.have_quorum:
            return True
        if self.no_quorum_policy == "ignore":
            return True
        return False

    def _check_recoverable(self, rsc: _Rsc, node: _PNode, task: Optional[str]) -> None:
        if task != "stop":
            return
        if self._can_fence(node):
            return
        rsc.managed = False

    def _unpack_rsc_op(self, rsc: _Rsc, node: _PNode, op: ElementTree.Element, st: "_OpState") -> None:
        target_rc = _target_rc(op)
        task_key = op.get("operation_key") or op.get("id") or ""
        task = op.get("operation")
        rc = values.element_int(op, "rc-code", 0)
        status = values.element_int(op, "op-status", EXEC_UNKNOWN)
        interval_ms = values.element_int(op, "interval", 0)
        if task is None:
            return
        if status < EXEC_PENDING or status > EXEC_MAX:
            return
        if task in ("notify", "meta-data"):
            return

        expired = status != EXEC_NOT_INSTALLED and self._check_operation_expiry(rsc, node, rc, op)
        old_rc, old_target_rc = rc, target_rc
        maskable = not rsc.is_bundled() and _mask_probe_failure(op)
        rc, status = self._remap_operation(op, rsc, node, st, target_rc, rc, status, maskable)

        if expired and maskable and old_rc != old_target_rc:
            if rsc.role <= ROLE_STOPPED:
                rsc.role = ROLE_UNKNOWN
            return
        if expired and rc != target_rc:
            if interval_ms == 0:
                return
            if node.online and not node.unclean:
                return
        if maskable:
            self._update_resource_state(rsc, node, op, task, target_rc, st, masked=True)
            return

        if status == EXEC_CANCELLED:
            return
        if status == EXEC_PENDING:
            if task == "start":
                self._set_active(rsc)
            elif task == "promote":
                rsc.role = ROLE_PROMOTED
            elif task == "migrate_to" and node.unclean:
                self._stop_action(rsc, self.find_node(op.get("migrate_target")))
            return
        if status == EXEC_DONE:
            self._update_resource_state(rsc, node, op, task, rc, st)
            return
        if status == EXEC_NOT_INSTALLED:
            strategy = self._action_on_fail(rsc, task_key, task)
            if strategy == FAIL_IGNORE:
                st.on_fail = FAIL_MIGRATE
            self._unpack_rsc_op_failure(rsc, node, rc, op, st, strategy, task)
            return
        if status == EXEC_NOT_CONNECTED:
            if node.is_guest_or_remote() and node.remote_rsc is not None and node.remote_rsc.managed:
                node.remote_rsc.failed = True

        strategy = self._action_on_fail(rsc, task_key, task)
        if strategy == FAIL_IGNORE or (strategy == FAIL_RESTART_CONTAINER and task == "stop"):
            self._update_resource_state(rsc, node, op, task, target_rc, st)
            if strategy == FAIL_RESTART_CONTAINER and _cmp_on_fail(st.on_fail, FAIL_RECOVER) <= 0:
                st.on_fail = strategy
        else:
            self._unpack_rsc_op_failure(rsc, node, rc, op, st, strategy, task)

    def _unpack_rsc_op_failure(self, rsc: _Rsc, node: _PNode, rc: int, op: ElementTree.Element,
                               st: "_OpState", action_on_fail: int, task: str) -> None:
        """``action_on_fail``: the operation's failure policy (``_action_on_fail``), which the caller has."""
        st.last_failure = op
        if _cmp_on_fail(st.on_fail, action_on_fail) < 0:
            st.on_fail = action_on_fail
        if task in ("migrate_to", "migrate_from"):
            self._migration_failure(rsc, node, op, task)
        elif task == "promote":
            rsc.role = ROLE_PROMOTED
        elif task == "demote":
            if action_on_fail == FAIL_BLOCK:
                rsc.role = ROLE_PROMOTED
            elif rc == OCF_NOT_RUNNING:
                rsc.role = ROLE_STOPPED
            else:
                rsc.role = ROLE_UNPROMOTED
        if _is_probe(op) and rc == OCF_NOT_INSTALLED:
            rsc.role = ROLE_STOPPED
        elif rsc.role < ROLE_STARTED:
            self._set_active(rsc)

    def _update_resource_state(self, rsc: _Rsc, node: _PNode, op: ElementTree.Element, task: str, rc: int,
                               st: "_OpState", masked: bool = False) -> None:
        """``masked``: ``op`` is a probe failure that counts as "not running" (the caller has checked)."""
        clear = False
        if rc == OCF_NOT_INSTALLED or masked:
            rsc.role = ROLE_STOPPED
        elif rc == OCF_NOT_RUNNING:
            clear = True
        elif task == "monitor":
            if st.last_failure is not None:
                if (op.get("operation_key") or op.get("id") or "").lower() == (
                    st.last_failure.get("operation_key") or st.last_failure.get("id") or ""
                ).lower():
                    clear = True
            if rsc.role < ROLE_STARTED:
                self._set_active(rsc)
        elif task == "start":
            rsc.role = ROLE_STARTED
            clear = True
        elif task == "stop":
            rsc.role = ROLE_STOPPED
            clear = True
        elif task == "promote":
            rsc.role = ROLE_PROMOTED
            clear = True
        elif task == "demote":
            if st.on_fail == FAIL_DEMOTE:
                clear = True
            rsc.role = ROLE_UNPROMOTED
        elif task == "migrate_from":
            rsc.role = ROLE_STARTED
            clear = True
        elif task == "migrate_to":
            self._migrate_to_success(rsc, node, op)
        elif rsc.role < ROLE_STARTED:
            self._set_active(rsc)
        if clear:
            if st.on_fail in (FAIL_STOP, FAIL_FENCE, FAIL_MIGRATE, FAIL_STANDBY):
                pass
            elif st.on_fail in (FAIL_BLOCK, FAIL_IGNORE, FAIL_DEMOTE, FAIL_RECOVER, FAIL_RESTART_CONTAINER):
                st.on_fail = FAIL_IGNORE
            elif st.on_fail == FAIL_RESET_REMOTE:
                if rsc.remote_reconnect_ms == 0:
                    st.on_fail = FAIL_IGNORE

    # ---- migrations ---------------------------------------------------------------------------------------

    def _non_monitor_after(self, rsc_id: str, node_name: Optional[str], xml_op: ElementTree.Element,
                           same_node: bool) -> bool:
        lrm = self._lrm_resource(node_name, rsc_id)
        if lrm is None:
            return False
        for op in lrm.iter("lrm_rsc_op"):
            if op is xml_op:
                continue
            if op.get("operation") in ("start", "stop", "migrate_to", "migrate_from") and \
                    _is_newer_op(op, xml_op, same_node) > 0:
                return True
        return False

    def _monitor_not_running_after(self, rsc_id: str, node_name: Optional[str], xml_op: ElementTree.Element,
                                   same_node: bool) -> bool:
        mon = self._find_lrm_op(rsc_id, "monitor", node_name, None, OCF_NOT_RUNNING)
        return mon is not None and _is_newer_op(mon, xml_op, same_node) > 0

    def _newer_state_after_migrate(self, rsc_id: str, node_name: Optional[str],
                                   migrate_to: Optional[ElementTree.Element],
                                   migrate_from: Optional[ElementTree.Element]) -> bool:
        xml_op = migrate_from if migrate_from is not None else migrate_to
        if xml_op is None:
            return False
        source = xml_op.get("migrate_source")
        target = xml_op.get("migrate_target")
        same_node = False
        if node_name is not None and target is not None and node_name.lower() == target.lower():
            if migrate_from is not None:
                xml_op = migrate_from
                same_node = True
            else:
                xml_op = migrate_to
        elif node_name is not None and source is not None and node_name.lower() == source.lower():
            if migrate_to is not None:
                xml_op = migrate_to
                same_node = True
            else:
                xml_op = migrate_from
        assert xml_op is not None
        return (self._non_monitor_after(rsc_id, node_name, xml_op, same_node)
                or self._monitor_not_running_after(rsc_id, node_name, xml_op, same_node))

    def _unknown_on_node(self, rsc_id: str, node_name: Optional[str]) -> bool:
        lrm = self._lrm_resource(node_name, rsc_id)
        return lrm is None or lrm.find("lrm_rsc_op") is None

    def _migrate_to_success(self, rsc: _Rsc, node: _PNode, xml_op: ElementTree.Element) -> None:
        source = xml_op.get("migrate_source")
        target = xml_op.get("migrate_target")
        if not source or not target or source != node.uname:
            return
        source_newer_op = self._non_monitor_after(rsc.id, source, xml_op, True)
        migrate_from = self._find_lrm_op(rsc.id, "migrate_from", target, source, -1)
        if source_newer_op and migrate_from is not None:
            return
        target_newer_state = self._newer_state_after_migrate(rsc.id, target, xml_op, migrate_from)
        if source_newer_op and target_newer_state:
            return
        rsc.role = ROLE_STARTED
        target_node = self.find_node(target)
        source_node = self.find_node(source)
        from_rc = from_status = 0
        if migrate_from is not None:
            from_rc = values.element_int(migrate_from, "rc-code", 0)
            from_status = values.element_int(migrate_from, "op-status", 0)
        if migrate_from is not None and from_rc == OCF_OK and from_status == EXEC_DONE:
            rsc.role = ROLE_STOPPED
        elif migrate_from is not None and from_status != EXEC_PENDING:
            if not target_newer_state and target_node is not None and target_node.online:
                self._add_running(rsc, target_node)
            else:
                rsc.failed = True
        else:
            if not target_newer_state and target_node is not None and target_node.online:
                self._add_running(rsc, target_node)
                if source_node is not None and source_node.online:
                    rsc.partial_migration_target = target_node
                    rsc.partial_migration_source = source_node
            elif not source_newer_op:
                rsc.failed = True

    def _migration_failure(self, rsc: _Rsc, node: _PNode, xml_op: ElementTree.Element, task: str) -> None:
        """``unpack_migrate_to_failure`` (``xml_op`` failed on the source) and ``unpack_migrate_from_failure``
        (on the target): the resource is active here, and on the other side too unless that has newer state."""
        source = xml_op.get("migrate_source")
        target = xml_op.get("migrate_target")
        if not source or not target or (source if task == "migrate_to" else target) != node.uname:
            return
        rsc.role = ROLE_STARTED
        if task == "migrate_to":
            other = target
            migrate_to, migrate_from = xml_op, self._find_lrm_op(rsc.id, "migrate_from", target, source, OCF_OK)
        else:
            other = source
            migrate_to, migrate_from = self._find_lrm_op(rsc.id, "migrate_to", source, target, OCF_OK), xml_op
        if not self._unknown_on_node(rsc.id, other) and not self._newer_state_after_migrate(
            rsc.id, other, migrate_to, migrate_from
        ):
            other_node = self.find_node(other)
            if other_node is not None and other_node.online:
                self._add_running(rsc, other_node)

    # ---- resource state ---------------------------------------------------------------------------------------

    def _stop_action(self, rsc: _Rsc, node: Optional[_PNode]) -> None:
        """Scheduling a stop (``stop_action`` -> ``update_resource_action_runnable``) of a managed resource on
        an offline node fences that node ("stop is unrunnable")."""
        if node is None:
            return
        if not node.online and (not node.is_guest() or node.remote_requires_reset):
            if rsc.managed and not node.unclean:
                self.fence_node(node)

    def _add_running(self, rsc: _Rsc, node: _PNode) -> None:
        """``native_add_running`` for a primitive."""
        if any(n is node for n in rsc.running_on):
            return
        rsc.running_on.append(node)
        if node.maintenance:
            rsc.managed = False
        if not rsc.managed:
            return
        if rsc.needs_fencing:
            active = len(rsc.running_on)
        else:  # pe__find_active_requires(): only clean nodes count
            active = sum(1 for n in rsc.running_on if n.online and not n.unclean)
        if active > 1 and rsc.recovery_type == "block":
            rsc.managed = False
            parent = rsc.parent
            if parent is not None and parent.variant in ("group", "bundle") and parent.recovery_type == "block":
                for child in parent.children:
                    child.managed = False

    def _process_rsc_state(self, rsc: _Rsc, node: _PNode, on_fail: int) -> None:
        if rsc.role > ROLE_STOPPED and not node.online and not node.maintenance and rsc.managed:
            should_fence = False
            if node.is_guest():
                rsc.failed = True
                should_fence = True
            elif self.stonith_enabled:
                should_fence = True
            if should_fence:
                self.fence_node(node)
        if node.unclean:
            on_fail = FAIL_IGNORE
        if on_fail == FAIL_DEMOTE:
            rsc.failed = True
        elif on_fail == FAIL_FENCE:
            self.fence_node(node)
        elif on_fail == FAIL_STANDBY:
            node.standby = True
        elif on_fail == FAIL_BLOCK:
            rsc.managed = False
        elif on_fail == FAIL_RECOVER:
            if rsc.role not in (ROLE_STOPPED, ROLE_UNKNOWN):
                rsc.failed = True
                self._stop_action(rsc, node)
        elif on_fail == FAIL_RESTART_CONTAINER:
            rsc.failed = True
            if rsc.container is not None and rsc.is_bundled():
                self._stop_needed.append(rsc.container)
            elif rsc.container is not None:
                self._stop_action(rsc.container, node)
            elif rsc.role not in (ROLE_STOPPED, ROLE_UNKNOWN):
                self._stop_action(rsc, node)
        elif on_fail == FAIL_RESET_REMOTE:
            rsc.failed = True
            if self.stonith_enabled and rsc.is_remote_node:
                tmp = self.find_node(rsc.id)
                if tmp is not None and tmp.is_remote() and tmp.remote_was_fenced == 0:
                    self.fence_node(tmp)
            if rsc.role > ROLE_STOPPED:
                self._stop_action(rsc, node)
        if rsc.role not in (ROLE_STOPPED, ROLE_UNKNOWN):
            self._add_running(rsc, node)
            if on_fail != FAIL_IGNORE:  # demote and block: failed; everything else: failed and stop
                rsc.failed = True
        if (rsc.role == ROLE_STOPPED and rsc.partial_migration_source is node
                and rsc.partial_migration_target is not None and rsc.running_on):
            rsc.role = ROLE_STARTED

    # ---- results ----------------------------------------------------------------------------------------------

    def unpack(self) -> "_Cluster":
        self.unpack_nodes()
        self.unpack_resources()
        self.unpack_status()
        self.unpack_tickets()
        return self

    # ---- tickets (crm_mon unpacks constraints; a lost "deadman" ticket fences nodes) ----------------------

    def unpack_tickets(self) -> None:
        """``pcmk__unpack_rsc_ticket``: only the part that changes node states (``loss-policy=fence``)."""
        constraints = self._first(self.root, "constraints")
        if constraints is None or not self.stonith_enabled:
            return
        granted: Dict[str, bool] = {}
        status = self.root.find("status")
        tickets = status.find("tickets") if status is not None else None
        if tickets is not None:
            for ts in tickets:
                if ts.tag == "ticket_state" and ts.get("id"):
                    granted[ts.get("id") or ""] = values.is_true(ts.get("granted"))
        for cons in constraints:
            if cons.tag != "rsc_ticket" or not cons.get("id") or not cons.get("ticket"):
                continue
            if granted.get(cons.get("ticket") or "", False):
                continue
            if (cons.get("loss-policy") or "").lower() != "fence":
                continue
            sets = [self._expand_idref(x) for x in cons if x.tag == "resource_set"]
            if sets:
                for rset in sets:
                    if rset is None:
                        break
                    for ref in rset.findall("resource_ref"):
                        self._ticket_lost(self._constraint_rsc(ref.get("id")), rset.get("role"))
            else:
                self._ticket_lost(self._constraint_rsc(cons.get("rsc")), cons.get("rsc-role"))

    def _constraint_rsc(self, rid: Optional[str]) -> Optional[_Rsc]:
        found = self._find_resource(rid)
        if found is not None or rid is None:
            return found
        config = self.clone_prims.get(rid)
        if config is not None and config.instances:
            return config.uber_parent()
        return None

    def _ticket_lost(self, rsc: Optional[_Rsc], role_name: Optional[str]) -> None:
        if rsc is None:
            return
        role = {"stopped": ROLE_STOPPED, "unpromoted": ROLE_UNPROMOTED, "slave": ROLE_UNPROMOTED,
                "promoted": ROLE_PROMOTED, "master": ROLE_PROMOTED}.get((role_name or "started").lower(),
                                                                         ROLE_UNKNOWN)
        for leaf in self._leaves(rsc):
            if leaf.running_on and (role == ROLE_UNKNOWN or role == leaf.role):
                for node in list(leaf.running_on):
                    self.fence_node(node)

    def _leaves(self, rsc: _Rsc) -> Iterable[_Rsc]:
        if rsc.variant == "primitive":
            if rsc.uber_parent().variant == "clone" and rsc.config is None:
                yield from rsc.instances  # a configured primitive inside a clone: its instances
            else:
                yield rsc
            return
        for child in rsc.children:
            yield from self._leaves(child)

    def node_kind(self, node: _PNode) -> Optional[str]:
        if node.type == "member":
            return "cluster"
        if node.type != "remote":
            return None
        rr = node.remote_rsc
        if rr is not None and rr.container is not None:
            return "bundle" if rr.is_bundled() else "guest"
        return "remote"

    def location_of(self, node_name: str, kind: str) -> Tuple[Optional[str], Optional[str], Optional[int]]:
        """(resource, address, port) for a node of the given kind, from the configuration."""
        node = self.find_node(node_name)
        rr = node.remote_rsc if node is not None else None
        if kind == "remote":
            if rr is None:
                return None, None, None
            if rr.orphan:
                return rr.id, None, None
            server = rr.params.get("server") or rr.params.get("addr") or rr.id
            return rr.id, server, _port(rr.params.get("port"))
        if kind == "guest":
            if rr is None or rr.container is None:
                return None, None, None
            addr = rr.params.get("addr") or node_name
            return rr.container.id, addr, _port(rr.params.get("port"))
        if kind == "bundle":
            if rr is None or rr.bundle is None:
                return None, None, None
            bundle = rr.bundle
            rep = next((r for r in bundle.replicas if r.remote is rr), None)
            return bundle.rsc.id, (rep.ip if rep is not None else None), _port(bundle.control_port)
        return None, None, None

    def host_of(self, node: _PNode, kind: str) -> Optional[str]:
        rr = node.remote_rsc
        if rr is None:
            return None
        target = rr if kind == "remote" else rr.container
        if target is None or not target.running_on or target.role in (ROLE_STOPPED, ROLE_UNKNOWN):
            return None
        return target.running_on[0].name

    def result(self) -> List[Node]:
        out: List[Node] = []
        for node in self.nodes:
            kind = self.node_kind(node)
            if kind is None:
                continue
            if kind == "cluster":
                out.append(Node(node.name, kind, node.online, node.standby, node.maintenance, node.unclean))
                continue
            resource, address, port = self.location_of(node.name, kind)
            host = self.host_of(node, kind)
            if kind == "bundle" and address is None:
                address = host  # no ip-range-start: the connection goes to the container's host ("#uname")
            out.append(Node(node.name, kind, node.online, node.standby, node.maintenance, node.unclean,
                            resource, address, port, host))
        return sort_nodes(out)


class _OpState:
    __slots__ = ("on_fail", "last_failure")

    def __init__(self) -> None:
        self.on_fail = FAIL_IGNORE
        self.last_failure: Optional[ElementTree.Element] = None


def _merged(xml: ElementTree.Element, extra: Sequence[ElementTree.Element]) -> ElementTree.Element:
    """An element whose children are ``extra`` (a template's) followed by ``xml``'s own."""
    if not extra:
        return xml
    holder = ElementTree.Element(xml.tag, xml.attrib)
    holder.extend(list(extra))
    holder.extend(list(xml))
    return holder


def _remote_xml(uname: str, container_id: Optional[str], allow_migrate: Optional[str], is_managed: Optional[str],
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


def _port(value: Optional[str]) -> Optional[int]:
    if value is None or value.strip() == "":
        return DEFAULT_REMOTE_PORT
    v = value.strip()
    if v.isdigit() and 0 < int(v) < 65536:
        return int(v)
    return None


def _is_probe(op: ElementTree.Element) -> bool:
    return op.get("operation") == "monitor" and max(0, values.scan_ll(op.get("interval")) or 0) == 0


def _mask_probe_failure(op: ElementTree.Element) -> bool:
    if not _is_probe(op):
        return False
    status = values.element_int(op, "op-status", EXEC_UNKNOWN)
    rc = values.element_int(op, "rc-code", OCF_OK)
    return rc in (OCF_NOT_INSTALLED, OCF_INVALID_PARAM) or status == EXEC_NOT_INSTALLED


def _target_rc(op: ElementTree.Element) -> int:
    key = op.get("transition-key")
    if key is None:
        return -1
    m = re.match(r"^\s*(-?\d+):(-?\d+):(-?\d+):", key)
    if not m:
        return -1
    return int(m.group(3))


def _key_interval(key: str) -> int:
    m = re.search(r"_([0-9]+)$", key)
    return int(m.group(1)) if m else 0


def _decode_magic(magic: Optional[str]) -> Optional[Tuple[str, int]]:
    if magic is None:
        return None
    m = re.match(r"^\s*-?\d+:-?\d+;(-?\d+):(-?\d+):(-?\d+):(\S{1,36})", magic)
    if not m:
        return None
    return m.group(4), int(m.group(2))


def _is_newer_op(a: ElementTree.Element, b: ElementTree.Element, same_node_default: bool) -> int:
    """``pe__is_newer_op``: <0 when ``a`` is older than ``b``, >0 when newer, 0 when undecided."""
    a_node, b_node = a.get("on_node"), b.get("on_node")
    if a_node is None or b_node is None:
        same_node = same_node_default
    else:
        same_node = a_node.lower() == b_node.lower()
    if same_node and a.get("id") == b.get("id"):
        return 0
    a_call = values.element_int(a, "call-id", -1)
    b_call = values.element_int(b, "call-id", -1)
    if a_call == -1 and b_call == -1:
        return 0
    if same_node and 0 <= a_call < b_call:
        return -1
    if same_node and b_call >= 0 and a_call > b_call:
        return 1
    if a_call >= 0 and b_call >= 0 and (not same_node or a_call == b_call):
        la = values.scan_ll(a.get("last-rc-change"))
        lb = values.scan_ll(b.get("last-rc-change"))
        la = -1 if la is None else la
        lb = -1 if lb is None else lb
        if la >= 0 and la < lb:
            return -1
        if lb >= 0 and la > lb:
            return 1
        return 0
    da, db = _decode_magic(a.get("transition-magic")), _decode_magic(b.get("transition-magic"))
    if da is None or db is None:
        return 0
    (a_uuid, a_id), (b_uuid, b_id) = da, db
    if a_uuid.lower() != b_uuid.lower() or a_id == b_id:
        if b_call == -1:
            return -1
        if a_call == -1:
            return 1
    elif (a_id >= 0 and a_id < b_id) or b_id == -1:
        return -1
    elif (b_id >= 0 and a_id > b_id) or a_id == -1:
        return 1
    return 0


def _newer_op_cmp(a: ElementTree.Element, b: ElementTree.Element) -> int:
    return _is_newer_op(a, b, True)


# --------------------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------------------


def _load(doc: CibInput, what: str) -> ElementTree.Element:
    if isinstance(doc, ElementTree.Element):
        return doc
    if isinstance(doc, os.PathLike):
        path = os.fspath(doc)
        try:
            with open(path, "rb") as fh:
                data = fh.read(xmlsafe.MAX_BYTES + 1)
        except OSError as exc:
            raise RemotectlError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
        return xmlsafe.parse(data, f"{what} {path}")
    if isinstance(doc, str) and not doc.lstrip(" \t\r\n\ufeff").startswith("<"):
        return _load(pathlib.Path(doc), what)  # not XML text (that starts with "<"): a file name
    if isinstance(doc, (bytes, bytearray, str)):
        return xmlsafe.parse(doc, what)
    raise TypeError(f"expected XML bytes/str, a path or an Element, not {type(doc).__name__}")


def nodes_from_cib(cib: CibInput, *, now: Optional[float] = None,
                   membership_timestamps: Optional[bool] = None) -> List[Node]:
    """The offline model: every node with its state, computed from a CIB alone.

    ``cib`` is the CIB as XML text (bytes or str), a path (``pathlib.Path`` or other ``os.PathLike``) or an
    already parsed ``<cib>`` element. ``now`` (epoch seconds) is the time failure timeouts are measured against
    (default: the current time, as crm_mon does). ``membership_timestamps``: see the module docstring.
    Raises :class:`RemotectlError` for unreadable or malformed input.
    """
    root = _load(cib, "CIB")
    return _Cluster(root, now=now, membership_timestamps=membership_timestamps).unpack().result()


def nodes_from_crm_mon(crm_mon_xml: CibInput, cib: Optional[CibInput] = None) -> List[Node]:
    """Nodes as a live cluster reports them: states from ``crm_mon --output-as=xml``, the rest from the CIB.

    ``crm_mon_xml`` is crm_mon's XML output (text, path or element). ``cib`` (optional, same forms) supplies
    what crm_mon does not print: remote servers/ports, guest ``remote-addr``/``remote-port`` and bundle replica
    addresses and ``control-port``. Without it those fields are ``None`` except what crm_mon's own resources
    section shows (where connections and containers run).
    """
    from remotectl.pacemaker.status import read_status

    cluster_status = read_status(_load(crm_mon_xml, "crm_mon output"))
    locate = None
    if cib is not None:
        cib_root = _load(cib, "CIB")
        if cib_root.tag == "configuration":  # cibadmin -Q --scope configuration is enough for addresses
            wrapper = ElementTree.Element("cib")
            wrapper.append(cib_root)
            cib_root = wrapper
        cluster = _Cluster(cib_root)
        cluster.unpack_nodes()
        cluster.unpack_resources()
        locate = cluster.location_of
    return nodes_live(cluster_status, locate)


Locator = Callable[[str, str], Tuple[Optional[str], Optional[str], Optional[int]]]


def nodes_live(cluster_status, locate: Optional[Locator] = None) -> List[Node]:
    """The contract records of a live cluster: one join of crm_mon's status (:mod:`remotectl.pacemaker.status`)
    and the CIB's configured connections. ``locate(name, type)`` gives (resource, address, port) from the CIB."""
    from remotectl.pacemaker.status import contract_nodes

    out: List[Node] = []
    for state in contract_nodes(cluster_status):
        flags = (state.online, state.standby, state.maintenance, state.unclean)
        if state.type == "cluster":
            out.append(Node(state.name, state.type, *flags))
            continue
        resource, address, port = locate(state.name, state.type) if locate else (None, None, None)
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
        out.append(Node(state.name, state.type, *flags, resource, address, port, host))
    return sort_nodes(out)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m remotectl.pacemaker.nodes CIB.xml``: the offline model's JSON (for benchmarks and debugging)."""
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m remotectl.pacemaker.nodes CIB.xml", file=sys.stderr)
        return 2
    try:
        nodes = nodes_from_cib(pathlib.Path(args[0]))
    except RemotectlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    json.dump({"nodes": [n.to_dict() for n in nodes]}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
