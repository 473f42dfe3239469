"""The status half of ``cluster_status()`` (lib/pengine/unpack.c ``unpack_status`` and what it calls):
``node_state`` entries, online status of cluster and remote nodes, transient attributes, and each node's resource
history (``unpack_lrm_resource``, ``unpack_rsc_op``, result remapping, failures, ``process_rsc_state``)."""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional, Tuple

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.complex import apply_meta
from remotectl.pacemaker.simulate.effects import add_running, fence_node, stop_action
from remotectl.pacemaker.simulate.enums import ExecStatus, OcfRc, OnFail, Role, cmp_on_fail
from remotectl.pacemaker.simulate.failcounts import check_operation_expiry
from remotectl.pacemaker.simulate.migration import unpack_migrate_to_success, unpack_migration_failure
from remotectl.pacemaker.simulate.objects import OpState, PeNode, PeResource, clone_strip
from remotectl.pacemaker.simulate.operations import (
    action_on_fail, is_probe, mask_probe_failure, newer_op_cmp, target_rc_from_xml,
)
from remotectl.pacemaker.simulate.remote import contains_remote_node
from remotectl.pacemaker.simulate.rules import unpack_dataset_nvpairs
from remotectl.pacemaker.simulate.unpack import handle_startup_fencing
from remotectl.pacemaker.simulate.working_set import WorkingSet


def unpack_status(ws: WorkingSet) -> None:
    """``unpack_status`` (unpack.c): node states, then node histories in Pacemaker's order (cluster nodes and
    connections that are up first, the rest with fencing), then the remote nodes not unpacked yet."""
    status = ws.root.find("status")
    if status is None:
        status = ws.root.find(".//status")
    states = [s for s in status if s.tag == "node_state"] if status is not None else []
    ws.node_states = states
    for state in states:
        unpack_node_state(ws, state)
    while unpack_node_history(ws, states, fence=False):
        pass
    unpack_node_history(ws, states, fence=ws.stonith_enabled)
    for container in ws.stop_needed:  # containers of failed bundle connections
        stop_action(ws, container, container.running_on[0] if container.running_on else None)
    for node in ws.nodes:
        if node.is_guest_or_remote() and not node.unpacked:
            determine_remote_online_status(node)


def unpack_transient_attributes(ws: WorkingSet, state: ElementTree.Element, node: PeNode) -> None:
    """``unpack_transient_attributes`` (unpack.c): they override permanent ones."""
    attrs = state.find("transient_attributes")
    if attrs is not None:
        unpack_dataset_nvpairs(ws, attrs, "instance_attributes", node.attrs, overwrite=True)


def unpack_node_state(ws: WorkingSet, state: ElementTree.Element) -> None:
    """``unpack_node_state`` (unpack.c): a cluster node's attributes and online status; a remote node's
    ``node_fenced``."""
    node_id = state.get("id")
    uname = state.get("uname")
    if node_id is None or (uname is None and ws.version < (2, 1, 7)):
        return  # 2.1.7+ reads an entry without uname (a node joining) by its id
    node = ws.find_node_any(node_id, uname)
    if node is None:
        return
    if node.is_guest_or_remote():
        node.remote_was_fenced = max(0, values.scan_ll(state.get("node_fenced")) or 0)
        return
    unpack_transient_attributes(ws, state, node)
    if values.is_true(node.attrs.get("standby")):
        node.standby = True
    if values.is_true(node.attrs.get("maintenance")):
        node.maintenance = True
    node.unclean = False
    determine_online_status(ws, state, node)
    if not ws.have_quorum and node.online and ws.no_quorum_policy == "fence":
        fence_node(node)


def in_ccm_is_member(ws: WorkingSet, value: Optional[str]) -> bool:
    """``in_ccm`` as ``determine_online_status_*`` read it: a boolean, or a positive epoch with
    membership timestamps."""
    b = values.str_to_boolean(value)
    if b is not None or not ws.membership_timestamps:
        return bool(b)
    n = values.scan_ll(value)
    return n is not None and n > 0


def crmd_is_online(ws: WorkingSet, value: Optional[str]) -> bool:
    """``crmd`` as ``determine_online_status_*`` read it: ``online``, or a positive epoch with membership
    timestamps."""
    if value is not None and value.lower() == "online":
        return True
    if not ws.membership_timestamps or value is None:
        return False
    n = values.scan_ll(value)
    return n is not None and n > 0


def pending_too_long(ws: WorkingSet, state: ElementTree.Element) -> bool:
    """``pending_too_long`` (2.1.7+ unpack.c): a member whose controller has not joined for longer than
    ``node-pending-timeout``."""
    if ws.node_pending_ms <= 0:
        return False
    in_ccm, crmd = state.get("in_ccm"), state.get("crmd")
    member = values.str_to_boolean(in_ccm)
    if member is not None:
        when_member = ws.now if member else 0
    else:
        when_member = max(0, values.scan_ll(in_ccm) or 0) if ws.membership_timestamps else 0
    if when_member <= 0 or crmd_is_online(ws, crmd):
        return False
    timeout_s = max(1, (ws.node_pending_ms + 500) // 1000)  # pcmk__timeout_ms2s
    return ws.now >= when_member + timeout_s


def shutdown_requested(node: PeNode) -> bool:
    """``pe__shutdown_requested`` (utils.c)."""
    value = node.attrs.get("shutdown")
    return value is not None and value != "0"


def determine_online_status(ws: WorkingSet, state: ElementTree.Element, node: PeNode) -> None:
    """``determine_online_status`` (unpack.c)."""
    exp_state = state.get("expected")
    node.shutdown = False
    node.expected_up = False
    if shutdown_requested(node):
        node.shutdown = True
    elif (exp_state or "").lower() == "member":
        node.expected_up = True
    if node.type == "ping":
        node.unclean = False
        online = False
    elif not ws.stonith_enabled:
        online = determine_online_status_no_fencing(ws, state, node)
    else:
        online = determine_online_status_fencing(ws, state, node)
    if online:
        node.online = True


def determine_online_status_no_fencing(ws: WorkingSet, state: ElementTree.Element, node: PeNode) -> bool:
    """``determine_online_status_no_fencing`` (unpack.c)."""
    join = (state.get("join") or "").lower()
    if not in_ccm_is_member(ws, state.get("in_ccm")):
        return False
    if crmd_is_online(ws, state.get("crmd")):
        return join == "member"
    if not node.expected_up:
        return False
    fence_node(node)
    return False


def determine_online_status_fencing(ws: WorkingSet, state: ElementTree.Element, node: PeNode) -> bool:
    """``determine_online_status_fencing`` (unpack.c)."""
    join = state.get("join")
    join_l = (join or "").lower()
    in_ccm = state.get("in_ccm")
    in_cluster = in_ccm_is_member(ws, in_ccm)
    crmd_online = crmd_is_online(ws, state.get("crmd"))
    exp_state = (state.get("expected") or "down").lower()
    terminate = node.attrs.get("terminate")
    do_terminate = values.is_true(terminate) or bool(
        terminate and terminate[0] != "0" and terminate[0].isdigit()
    )
    online = in_cluster
    if node.shutdown:
        return crmd_online
    if in_ccm is None:
        fence_node(node)
    elif join_l == "banned":  # CRMD_JOINSTATE_NACK
        fence_node(node)
    elif not do_terminate and exp_state == "down":
        if pending_too_long(ws, state):
            fence_node(node)
        elif in_cluster or crmd_online:
            node.standby = True
    elif do_terminate and join_l == "down" and not in_cluster and not crmd_online:
        online = False
    elif not in_cluster:
        fence_node(node)
    elif not crmd_online:
        fence_node(node)
    elif do_terminate:
        fence_node(node)
    elif join_l == "member":
        pass
    elif join_l in ("pending", "down"):
        node.standby = True
    else:
        fence_node(node)
    return online


def unpack_node_history(ws: WorkingSet, states: List[ElementTree.Element], fence: bool) -> bool:
    """``unpack_node_history`` (unpack.c), one pass: True when it unpacked a node's history (then
    another pass may find more connections up)."""
    again = False
    for state in states:
        node_id = state.get("id")
        uname = state.get("uname")
        if node_id is None or uname is None:
            continue
        node = ws.find_node_any(node_id, uname)
        if node is None or node.unpacked:
            continue
        if fence:
            pass
        elif node.is_guest():
            rsc = node.remote_rsc
            assert rsc is not None and rsc.container is not None
            if rsc.role != Role.STARTED or rsc.container.role != Role.STARTED:
                continue
        elif node.is_remote():
            rsc = node.remote_rsc
            if rsc is None or rsc.role != Role.STARTED:
                continue
        elif not ws.stonith_enabled and not node.online:
            continue
        if node.is_guest_or_remote():
            determine_remote_online_status(node)
            unpack_handle_remote_attrs(ws, node, state)
        node.unpacked = True
        unpack_node_lrm(ws, node, state)
        again = True
    return again


def determine_remote_online_status(node: PeNode) -> None:
    """``determine_remote_online_status`` (unpack.c)."""
    rsc = node.remote_rsc
    if rsc is None:
        node.online = False
        return
    container = rsc.container
    host = rsc.running_on[0] if (container is not None and len(rsc.running_on) == 1) else None
    if rsc.role == Role.STARTED:
        node.online = True
    if container is not None and container.failed:
        node.online = False
        node.remote_requires_reset = True
    elif rsc.failed:
        node.online = False
    elif rsc.role == Role.STOPPED or (container is not None and container.role == Role.STOPPED):
        node.online = False
        node.remote_requires_reset = False
    elif host is not None and not host.online and host.unclean:
        node.online = False
        node.remote_requires_reset = True


def unpack_handle_remote_attrs(ws: WorkingSet, node: PeNode, state: ElementTree.Element) -> None:
    """``unpack_handle_remote_attrs`` (unpack.c)."""
    rsc = node.remote_rsc
    if not node.remote_requires_reset:
        node.unclean = False
    unpack_transient_attributes(ws, state, node)
    if shutdown_requested(node):
        node.shutdown = True
    if values.is_true(node.attrs.get("standby")):
        node.standby = True
    if values.is_true(node.attrs.get("maintenance")) or (rsc is not None and not rsc.managed):
        node.maintenance = True


def unpack_node_lrm(ws: WorkingSet, node: PeNode, state: ElementTree.Element) -> None:
    """``unpack_node_lrm`` (unpack.c): each resource's history on ``node``, then the containers of orphaned
    container fillers."""
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
        rsc = unpack_lrm_resource(ws, node, entry)
        if rsc is not None and rsc.orphan_container_filler:
            found_filler = True
    if found_filler:
        for entry in resources:
            if entry.tag != "lrm_resource":
                continue
            cid, rid = entry.get("container"), entry.get("id")
            if cid is None or rid is None:
                continue
            container = ws.find_resource(cid)
            rsc = ws.find_resource(rid)
            if container is None or rsc is None or not rsc.orphan_container_filler or rsc.container is not None:
                continue
            rsc.container = container


def clone_instance(config: PeResource, lrm_id: str) -> PeResource:
    """A clone instance named ``lrm_id`` found in a history: a copy of its configured primitive
    (``find_anonymous_clone``/``create_child_clone``, clone.c)."""
    inst = PeResource(lrm_id, "primitive", config.parent)
    for attr in ("xml", "meta", "params", "ops", "cls", "provider", "agent", "managed", "unique",
                 "promotable", "is_remote_node", "container", "remote_reconnect_ms", "failure_timeout",
                 "recovery_type", "bundle", "needs_fencing"):
        setattr(inst, attr, getattr(config, attr))
    inst.clone_name = lrm_id
    inst.config = config
    config.instances.append(inst)
    return inst


def unpack_find_resource(ws: WorkingSet, node: PeNode, rsc_id: str) -> Optional[PeResource]:
    """``unpack_find_resource``: the resource a history entry belongs to, or None for an orphan."""
    rsc = ws.prims.get(rsc_id)
    if rsc is not None:
        return rsc
    if rsc_id in ws.collectives:
        return None  # no longer a primitive: orphan
    config = ws.clone_prims.get(rsc_id) or ws.clone_prims.get(clone_strip(rsc_id))
    if config is None:
        return None
    clone = config.uber_parent()
    if config.unique:
        m = re.match(r"^(.*):([0-9]+)$", rsc_id)
        if not m or m.group(1) != config.id or int(m.group(2)) >= max(clone.clone_max, 0):
            return None
        return clone_instance(config, rsc_id)
    if config.is_bundled():
        bundle = clone.parent.bundle if clone.parent is not None else None
        conn = node.remote_rsc
        if bundle is None or conn is None or conn.bundle is not bundle:
            return None
        return clone_instance(config, rsc_id)
    return clone_instance(config, rsc_id)


def process_orphan_resource(ws: WorkingSet, entry: ElementTree.Element) -> PeResource:
    """``process_orphan_resource``/``create_fake_resource`` (unpack.c): the history of a resource
    no longer configured."""
    rid = entry.get("id") or ""
    rsc = PeResource(rid, "primitive", None)
    rsc.cls, rsc.provider, rsc.agent = entry.get("class"), entry.get("provider"), entry.get("type")
    rsc.xml = entry
    meta: Dict[str, str] = {}
    for k, v in entry.attrib.items():
        meta.setdefault(k, v)
    unpack_dataset_nvpairs(ws, ws.rsc_defaults, "meta_attributes", meta)
    rsc.meta = meta
    if contains_remote_node(entry):
        rsc.is_remote_node = True
        rnode = ws.find_node(rid)
        if rnode is None:
            rnode = ws.create_node(rid, rid, "remote")
        rnode.remote_rsc = rsc
        handle_startup_fencing(ws, rnode)
        rnode.shutdown = True
    apply_meta(ws, rsc)
    if entry.get("container") is not None:
        rsc.orphan_container_filler = True
    rsc.orphan = True
    if not ws.stop_orphan_resources:
        rsc.managed = False
    ws.prims[rid] = rsc
    return rsc


def unpack_lrm_resource(ws: WorkingSet, node: PeNode, entry: ElementTree.Element) -> Optional[PeResource]:
    """``unpack_lrm_resource`` (unpack.c): one resource's history on ``node``, oldest entry first."""
    rsc_id = entry.get("id")
    if rsc_id is None:
        return None
    ops = [op for op in entry if op.tag == "lrm_rsc_op"]
    if not ops:
        return None
    rsc = unpack_find_resource(ws, node, rsc_id)
    if rsc is None:
        rsc = process_orphan_resource(ws, entry)
    saved_role = rsc.role
    rsc.role = Role.UNKNOWN
    ops.reverse()
    ops.sort(key=functools.cmp_to_key(newer_op_cmp))
    op_state = OpState()
    for op in ops:
        unpack_rsc_op(ws, rsc, node, op, op_state)
    process_rsc_state(ws, rsc, node, op_state.on_fail)
    if saved_role > rsc.role:
        rsc.role = saved_role
    return rsc


def set_active(rsc: PeResource) -> None:
    """``set_active`` (unpack.c)."""
    rsc.role = Role.UNPROMOTED if rsc.uber_parent().promotable else Role.STARTED


def remap_operation(ws: WorkingSet, op: ElementTree.Element, rsc: PeResource, node: PeNode, op_state: OpState,
                     target_rc: int, rc: int, status: int, maskable: bool) -> Tuple[int, int]:
    """``remap_operation`` (unpack.c): ``(rc, status)`` as the scheduler reads them; may set the role."""
    task = op.get("operation")
    if task == "monitor":
        if rc == OcfRc.DEGRADED:
            rc = OcfRc.OK
        elif rc == OcfRc.DEGRADED_PROMOTED:
            rc = OcfRc.RUNNING_PROMOTED
    if maskable:
        status = ExecStatus.DONE
        rc = OcfRc.NOT_RUNNING
    if status not in (ExecStatus.DONE, ExecStatus.ERROR):
        return rc, status
    status = ExecStatus.DONE
    probe = is_probe(op)
    if target_rc < 0:
        status = ExecStatus.ERROR
    elif target_rc != rc:
        status = ExecStatus.ERROR
    if rc == OcfRc.OK:
        if probe and target_rc == OcfRc.NOT_RUNNING:
            status = ExecStatus.DONE
    elif rc == OcfRc.NOT_RUNNING:
        if probe or target_rc == rc or not rsc.managed:
            status = ExecStatus.DONE
            rsc.role = Role.STOPPED
            op_state.on_fail = OnFail.IGNORE
    elif rc == OcfRc.RUNNING_PROMOTED:
        if probe and rc != target_rc:
            status = ExecStatus.DONE
        rsc.role = Role.PROMOTED
    elif rc in (OcfRc.DEGRADED_PROMOTED, OcfRc.FAILED_PROMOTED):
        rsc.role = Role.PROMOTED
        status = ExecStatus.ERROR
    elif rc == OcfRc.NOT_CONFIGURED:
        status = ExecStatus.ERROR_FATAL
    elif rc == OcfRc.UNIMPLEMENT_FEATURE:
        if values.element_int(op, "interval", 0) == 0:
            check_recoverable(ws, rsc, node, task)
            status = ExecStatus.ERROR_HARD
        else:
            status = ExecStatus.NOT_SUPPORTED
    elif rc in (OcfRc.NOT_INSTALLED, OcfRc.INVALID_PARAM, OcfRc.INSUFFICIENT_PRIV):
        check_recoverable(ws, rsc, node, task)
        status = ExecStatus.ERROR_HARD
    else:
        if status == ExecStatus.DONE:
            status = ExecStatus.ERROR
    return rc, status


def pe_can_fence(ws: WorkingSet, node: PeNode) -> bool:
    """``pe_can_fence``."""
    if node.is_guest():
        return True
    if not ws.stonith_enabled:
        return False
    if ws.have_quorum:
        return True
    if ws.no_quorum_policy == "ignore":
        return True
    return False


def check_recoverable(ws: WorkingSet, rsc: PeResource, node: PeNode, task: Optional[str]) -> None:
    """``check_recoverable`` (unpack.c): a failed stop that cannot be fenced blocks the resource."""
    if task != "stop":
        return
    if pe_can_fence(ws, node):
        return
    rsc.managed = False


def unpack_rsc_op(ws: WorkingSet, rsc: PeResource, node: PeNode, op: ElementTree.Element, op_state: OpState) -> None:
    """``unpack_rsc_op`` (unpack.c): one history entry."""
    target_rc = target_rc_from_xml(op)
    task_key = op.get("operation_key") or op.get("id") or ""
    task = op.get("operation")
    rc = values.element_int(op, "rc-code", 0)
    status = values.element_int(op, "op-status", ExecStatus.UNKNOWN)
    interval_ms = values.element_int(op, "interval", 0)
    if task is None:
        return
    if status < ExecStatus.PENDING or status > ExecStatus.MAX:
        return
    if task in ("notify", "meta-data"):
        return

    expired = status != ExecStatus.NOT_INSTALLED and check_operation_expiry(ws, rsc, node, rc, op)
    old_rc, old_target_rc = rc, target_rc
    maskable = not rsc.is_bundled() and mask_probe_failure(op)
    rc, status = remap_operation(ws, op, rsc, node, op_state, target_rc, rc, status, maskable)

    if expired and maskable and old_rc != old_target_rc:
        if rsc.role <= Role.STOPPED:
            rsc.role = Role.UNKNOWN
        return
    if expired and rc != target_rc:
        if interval_ms == 0:
            return
        if node.online and not node.unclean:
            return
    if maskable:
        update_resource_state(ws, rsc, node, op, task, target_rc, op_state, masked=True)
        return

    if status == ExecStatus.CANCELLED:
        return
    if status == ExecStatus.PENDING:
        if task == "start":
            set_active(rsc)
        elif task == "promote":
            rsc.role = Role.PROMOTED
        elif task == "migrate_to" and node.unclean:
            stop_action(ws, rsc, ws.find_node(op.get("migrate_target")))
        return
    if status == ExecStatus.DONE:
        update_resource_state(ws, rsc, node, op, task, rc, op_state)
        return
    if status == ExecStatus.NOT_INSTALLED:
        strategy = action_on_fail(ws, rsc, task_key, task)
        if strategy == OnFail.IGNORE:
            op_state.on_fail = OnFail.MIGRATE
        unpack_rsc_op_failure(ws, rsc, node, rc, op, op_state, strategy, task)
        return
    if status == ExecStatus.NOT_CONNECTED:
        if node.is_guest_or_remote() and node.remote_rsc is not None and node.remote_rsc.managed:
            node.remote_rsc.failed = True

    strategy = action_on_fail(ws, rsc, task_key, task)
    if strategy == OnFail.IGNORE or (strategy == OnFail.RESTART_CONTAINER and task == "stop"):
        update_resource_state(ws, rsc, node, op, task, target_rc, op_state)
        if strategy == OnFail.RESTART_CONTAINER and cmp_on_fail(op_state.on_fail, OnFail.RECOVER) <= 0:
            op_state.on_fail = strategy
    else:
        unpack_rsc_op_failure(ws, rsc, node, rc, op, op_state, strategy, task)


def unpack_rsc_op_failure(ws: WorkingSet, rsc: PeResource, node: PeNode, rc: int, op: ElementTree.Element,
                           op_state: OpState, action_on_fail: int, task: str) -> None:
    """``unpack_rsc_op_failure`` (unpack.c); ``action_on_fail`` is the operation's failure policy
    (:func:`.operations.action_on_fail`), which the caller has."""
    op_state.last_failure = op
    if cmp_on_fail(op_state.on_fail, action_on_fail) < 0:
        op_state.on_fail = action_on_fail
    if task in ("migrate_to", "migrate_from"):
        unpack_migration_failure(ws, rsc, node, op, task)
    elif task == "promote":
        rsc.role = Role.PROMOTED
    elif task == "demote":
        if action_on_fail == OnFail.BLOCK:
            rsc.role = Role.PROMOTED
        elif rc == OcfRc.NOT_RUNNING:
            rsc.role = Role.STOPPED
        else:
            rsc.role = Role.UNPROMOTED
    if is_probe(op) and rc == OcfRc.NOT_INSTALLED:
        rsc.role = Role.STOPPED
    elif rsc.role < Role.STARTED:
        set_active(rsc)


def update_resource_state(ws: WorkingSet, rsc: PeResource, node: PeNode, op: ElementTree.Element, task: str, rc: int,
                           op_state: OpState, masked: bool = False) -> None:
    """``update_resource_state`` (unpack.c). ``masked``: ``op`` is a probe failure that counts as "not running"
    (the caller has checked)."""
    clear = False
    if rc == OcfRc.NOT_INSTALLED or masked:
        rsc.role = Role.STOPPED
    elif rc == OcfRc.NOT_RUNNING:
        clear = True
    elif task == "monitor":
        if op_state.last_failure is not None:
            if (op.get("operation_key") or op.get("id") or "").lower() == (
                op_state.last_failure.get("operation_key") or op_state.last_failure.get("id") or ""
            ).lower():
                clear = True
        if rsc.role < Role.STARTED:
            set_active(rsc)
    elif task == "start":
        rsc.role = Role.STARTED
        clear = True
    elif task == "stop":
        rsc.role = Role.STOPPED
        clear = True
    elif task == "promote":
        rsc.role = Role.PROMOTED
        clear = True
    elif task == "demote":
        if op_state.on_fail == OnFail.DEMOTE:
            clear = True
        rsc.role = Role.UNPROMOTED
    elif task == "migrate_from":
        rsc.role = Role.STARTED
        clear = True
    elif task == "migrate_to":
        unpack_migrate_to_success(ws, rsc, node, op)
    elif rsc.role < Role.STARTED:
        set_active(rsc)
    if clear:
        if op_state.on_fail in (OnFail.STOP, OnFail.FENCE, OnFail.MIGRATE, OnFail.STANDBY):
            pass
        elif op_state.on_fail in (OnFail.BLOCK, OnFail.IGNORE, OnFail.DEMOTE, OnFail.RECOVER, OnFail.RESTART_CONTAINER):
            op_state.on_fail = OnFail.IGNORE
        elif op_state.on_fail == OnFail.RESET_REMOTE:
            if rsc.remote_reconnect_ms == 0:
                op_state.on_fail = OnFail.IGNORE


def process_rsc_state(ws: WorkingSet, rsc: PeResource, node: PeNode, on_fail: int) -> None:
    """``process_rsc_state`` (unpack.c): what the history's worst failure means for the resource and node."""
    if rsc.role > Role.STOPPED and not node.online and not node.maintenance and rsc.managed:
        should_fence = False
        if node.is_guest():
            rsc.failed = True
            should_fence = True
        elif ws.stonith_enabled:
            should_fence = True
        if should_fence:
            fence_node(node)
    if node.unclean:
        on_fail = OnFail.IGNORE
    if on_fail == OnFail.DEMOTE:
        rsc.failed = True
    elif on_fail == OnFail.FENCE:
        fence_node(node)
    elif on_fail == OnFail.STANDBY:
        node.standby = True
    elif on_fail == OnFail.BLOCK:
        rsc.managed = False
    elif on_fail == OnFail.RECOVER:
        if rsc.role not in (Role.STOPPED, Role.UNKNOWN):
            rsc.failed = True
            stop_action(ws, rsc, node)
    elif on_fail == OnFail.RESTART_CONTAINER:
        rsc.failed = True
        if rsc.container is not None and rsc.is_bundled():
            ws.stop_needed.append(rsc.container)
        elif rsc.container is not None:
            stop_action(ws, rsc.container, node)
        elif rsc.role not in (Role.STOPPED, Role.UNKNOWN):
            stop_action(ws, rsc, node)
    elif on_fail == OnFail.RESET_REMOTE:
        rsc.failed = True
        if ws.stonith_enabled and rsc.is_remote_node:
            tmp = ws.find_node(rsc.id)
            if tmp is not None and tmp.is_remote() and tmp.remote_was_fenced == 0:
                fence_node(tmp)
        if rsc.role > Role.STOPPED:
            stop_action(ws, rsc, node)
    if rsc.role not in (Role.STOPPED, Role.UNKNOWN):
        add_running(rsc, node)
        if on_fail != OnFail.IGNORE:  # demote and block: failed; everything else: failed and stop
            rsc.failed = True
    if (rsc.role == Role.STOPPED and rsc.partial_migration_source is node
            and rsc.partial_migration_target is not None and rsc.running_on):
        rsc.role = Role.STARTED
