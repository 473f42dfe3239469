"""The offline model: Pacemaker's scheduler library unpacking a CIB (lib/pengine; 2.1.5, with the 3.0.x differences
below), ported to Python as far as node states need, and split along Pacemaker's own files: :mod:`.unpack`
(unpack.c, the configuration half), :mod:`.complex`, :mod:`.bundle`, :mod:`.remote`, :mod:`.rules`, :mod:`.history` (unpack.c, the status half),
:mod:`.operations`, :mod:`.failcounts`, :mod:`.migration`, :mod:`.effects`, :mod:`.tickets`; the records in
:mod:`.objects`, the integer enums in :mod:`.enums`. Every function takes the :class:`WorkingSet` first, as the C
functions take ``pe_working_set_t *``, and its docstring names the C function it follows.

:func:`cluster_status` is the whole unpack (what ``remotectl.pacemaker.nodes.nodes_from_cib`` reports);
:func:`unpack_configuration` is its configuration half alone, which :mod:`remotectl.pacemaker.inventory` turns
into the configured nodes, so the node list and the inventory apply the same rules.

The port follows how Pacemaker 2.1.5's scheduler library unpacks a CIB (``lib/pengine/unpack.c``
``cluster_status()``: ``unpack_config``, ``unpack_nodes``, ``unpack_remote_nodes``, ``unpack_resources``,
``unpack_status``), restricted to what decides the node flags. Rules implemented:

Versions (:mod:`.schema`): the model follows one Pacemaker version, the one it is told, else the CIB's
``dc-version``, else the newest it knows (3.0.3). Where 2.1.5 and 3.0.x differ it follows that version:
  * 3.0.2+: ``fencing-enabled`` and the other renamed cluster options (``values.cluster_option``: the new name wins,
    the old one is read only when the new one is absent, an invalid value means the default);
  * 2.1.9+: ``no-quorum-policy=fence`` (``suicide`` is its old name);
  * 2.1.7+: a ``node_state`` without ``uname`` (a node joining) is read by its id, and ``node-pending-timeout``
    fences a member whose controller has not joined in time (measured against ``now``);
  * 2.1.8+: the guest meta attributes (``remote-node`` ...) match case-sensitively;
  * 3.0.0+: a ``<node>`` of unknown type ends the reading of ``<nodes>`` (2.1: a ping node), ``rkt`` bundles are
    not read, and a CIB older than ``pacemaker-4.0`` loses its ``nagios``/``upstart`` resources and ``rkt`` bundles
    (``upgrade-3.10-*.xsl``);
  * every version: a CIB older than ``pacemaker-3.0`` is upgraded as ``upgrade-2.10-1.xsl`` does it for nodes
    (``type="normal"`` is ``member``) and the options read here (underscore spellings); schemas before
    ``pacemaker-1.0`` are refused; one newer than ``pacemaker-4.0`` is read as it is, with a ``cib-schema-newer``
    report.

Configuration
  * Cluster options from ``crm_config`` ``cluster_property_set`` blocks (``cib-bootstrap-options`` first, then by
    score; invalid values fall back to the default): ``fencing-enabled``/``stonith-enabled`` (default true),
    ``startup-fencing`` (default true, only with fencing), ``maintenance-mode``,
    ``stop-removed-resources``/``stop-orphan-resources``, ``no-quorum-policy`` (``fence``/``suicide`` needs fencing
    and ``have-quorum``/``no-quorum-panic`` on the ``cib`` element), plus ``have-quorum`` and ``crm_feature_set``
    from the ``cib`` element.
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
    nodes without a ``node_state`` are unclean when startup fencing applies; ``no-quorum-policy=fence``.
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

Known divergences from crm_mon (documented in tests/integration/test_nodes_vs_crm_mon.py as well):
  * Attribute sets (``meta_attributes``, ``instance_attributes``, ``cluster_property_set``, ``op_defaults``,
    ``rsc_defaults``) that carry a ``<rule>`` are ignored (treated as not applying). Rules in constraints do not
    matter here.
  * ``shutdown-lock`` and ``on-fail=block``'s effect on failure timeouts are not modelled.
  * Clone instances are tracked per node history entry rather than by instance number, which only matters for
    globally-unique clones that are active on several nodes at once.
  * Of the in-memory schema upgrade only the steps above are followed (not, e.g., the ``requires`` operation
    attribute moved to meta attributes, ``isolation`` wrappers, or ``lifetime`` rules). Malformed XML that libxml2
    would recover from is refused.
  * Ping nodes (``<node type="ping">``, deprecated) are not listed.
  * Failure timeouts are measured against ``now`` (default: the current time), as crm_mon does; results for CIBs
    with ``failure-timeout``/``reconnect_interval`` can change with the clock, for crm_mon too.

Validation: the model agrees with crm_mon 2.1.5 on every CIB in Pacemaker 2.1.5's ``cts/scheduler/xml`` (799
files, 86 of them with remote, guest or bundle nodes), with crm_mon 3.0.3 on every input of 3.0.2's (854
files), on ``tests/data`` with both, and on
thousands of random mutations of 2.1.5's (fencing, maintenance, attributes, membership, operation results,
``on-fail``, deleted resources and states, bundle networks and replica counts).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Optional, Tuple

from remotectl.pacemaker.simulate.unpack import unpack_config, unpack_nodes, unpack_resources
from remotectl.pacemaker.simulate.working_set import WorkingSet

__all__ = ["WorkingSet", "cluster_status", "unpack_configuration"]


def unpack_configuration(root: ElementTree.Element, *, now: Optional[float] = None,
                         membership_timestamps: Optional[bool] = None,
                         pacemaker_version: Optional[Tuple[int, ...]] = None) -> WorkingSet:
    """The first half of ``cluster_status()`` (lib/pengine/status.c): cluster options, nodes (cluster, remote,
    guest, bundle) and resources; no status. ``root`` is a ``<cib>`` element; ``pacemaker_version`` the Pacemaker
    whose rules to follow (default: :func:`.schema.pacemaker_version`)."""
    ws = WorkingSet(root, now=now, membership_timestamps=membership_timestamps, pacemaker_version=pacemaker_version)
    unpack_config(ws)
    unpack_nodes(ws)
    unpack_resources(ws)
    return ws


def cluster_status(root: ElementTree.Element, *, now: Optional[float] = None,
                   membership_timestamps: Optional[bool] = None,
                   pacemaker_version: Optional[Tuple[int, ...]] = None) -> WorkingSet:
    """``cluster_status()``: the configuration, then the status section and the tickets that can fence nodes.
    The status half is imported here, so that the inventory (configuration only) never loads it."""
    from remotectl.pacemaker.simulate.history import unpack_status
    from remotectl.pacemaker.simulate.tickets import unpack_tickets

    ws = unpack_configuration(root, now=now, membership_timestamps=membership_timestamps,
                              pacemaker_version=pacemaker_version)
    unpack_status(ws)
    unpack_tickets(ws)
    return ws
