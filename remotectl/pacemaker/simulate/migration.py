"""Live migration in a resource history (lib/pengine/unpack.c ``unpack_migrate_to_success``,
``unpack_migrate_to_failure``, ``unpack_migrate_from_failure``, ``newer_state_after_migrate``)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Optional

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.effects import add_running
from remotectl.pacemaker.simulate.enums import ExecStatus, OcfRc, Role
from remotectl.pacemaker.simulate.objects import PeNode, PeResource
from remotectl.pacemaker.simulate.operations import find_lrm_op, is_newer_op
from remotectl.pacemaker.simulate.working_set import WorkingSet


def non_monitor_after(ws: WorkingSet, rsc_id: str, node_name: Optional[str], xml_op: ElementTree.Element,
                       same_node: bool) -> bool:
    """``non_monitor_after`` (unpack.c)."""
    lrm = ws.lrm_resource(node_name, rsc_id)
    if lrm is None:
        return False
    for op in lrm.iter("lrm_rsc_op"):
        if op is xml_op:
            continue
        if op.get("operation") in ("start", "stop", "migrate_to", "migrate_from") and \
                is_newer_op(op, xml_op, same_node) > 0:
            return True
    return False


def monitor_not_running_after(ws: WorkingSet, rsc_id: str, node_name: Optional[str], xml_op: ElementTree.Element,
                               same_node: bool) -> bool:
    """``monitor_not_running_after`` (unpack.c)."""
    mon = find_lrm_op(ws, rsc_id, "monitor", node_name, None, OcfRc.NOT_RUNNING)
    return mon is not None and is_newer_op(mon, xml_op, same_node) > 0


def newer_state_after_migrate(ws: WorkingSet, rsc_id: str, node_name: Optional[str],
                               migrate_to: Optional[ElementTree.Element],
                               migrate_from: Optional[ElementTree.Element]) -> bool:
    """``newer_state_after_migrate`` (unpack.c)."""
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
    return (non_monitor_after(ws, rsc_id, node_name, xml_op, same_node)
            or monitor_not_running_after(ws, rsc_id, node_name, xml_op, same_node))


def unknown_on_node(ws: WorkingSet, rsc_id: str, node_name: Optional[str]) -> bool:
    """``unknown_on_node`` (unpack.c): no history of the resource on that node."""
    lrm = ws.lrm_resource(node_name, rsc_id)
    return lrm is None or lrm.find("lrm_rsc_op") is None


def unpack_migrate_to_success(ws: WorkingSet, rsc: PeResource, node: PeNode, xml_op: ElementTree.Element) -> None:
    """``unpack_migrate_to_success`` (unpack.c)."""
    source = xml_op.get("migrate_source")
    target = xml_op.get("migrate_target")
    if not source or not target or source != node.uname:
        return
    source_newer_op = non_monitor_after(ws, rsc.id, source, xml_op, True)
    migrate_from = find_lrm_op(ws, rsc.id, "migrate_from", target, source, -1)
    if source_newer_op and migrate_from is not None:
        return
    target_newer_state = newer_state_after_migrate(ws, rsc.id, target, xml_op, migrate_from)
    if source_newer_op and target_newer_state:
        return
    rsc.role = Role.STARTED
    target_node = ws.find_node(target)
    source_node = ws.find_node(source)
    from_rc = from_status = 0
    if migrate_from is not None:
        from_rc = values.element_int(migrate_from, "rc-code", 0)
        from_status = values.element_int(migrate_from, "op-status", 0)
    if migrate_from is not None and from_rc == OcfRc.OK and from_status == ExecStatus.DONE:
        rsc.role = Role.STOPPED
    elif migrate_from is not None and from_status != ExecStatus.PENDING:
        if not target_newer_state and target_node is not None and target_node.online:
            add_running(rsc, target_node)
        else:
            rsc.failed = True
    else:
        if not target_newer_state and target_node is not None and target_node.online:
            add_running(rsc, target_node)
            if source_node is not None and source_node.online:
                rsc.partial_migration_target = target_node
                rsc.partial_migration_source = source_node
        elif not source_newer_op:
            rsc.failed = True


def unpack_migration_failure(ws: WorkingSet, rsc: PeResource, node: PeNode, xml_op: ElementTree.Element,
                             task: str) -> None:
    """``unpack_migrate_to_failure`` (``xml_op`` failed on the source) and ``unpack_migrate_from_failure``
    (on the target): the resource is active here, and on the other side too unless that has newer state."""
    source = xml_op.get("migrate_source")
    target = xml_op.get("migrate_target")
    if not source or not target or (source if task == "migrate_to" else target) != node.uname:
        return
    rsc.role = Role.STARTED
    if task == "migrate_to":
        other = target
        migrate_to, migrate_from = xml_op, find_lrm_op(ws, rsc.id, "migrate_from", target, source, OcfRc.OK)
    else:
        other = source
        migrate_to, migrate_from = find_lrm_op(ws, rsc.id, "migrate_to", source, target, OcfRc.OK), xml_op
    if not unknown_on_node(ws, rsc.id, other) and not newer_state_after_migrate(ws, 
        rsc.id, other, migrate_to, migrate_from
    ):
        other_node = ws.find_node(other)
        if other_node is not None and other_node.online:
            add_running(rsc, other_node)
