"""One history entry and its operation: the configured ``<op>`` it belongs to and its on-fail policy
(``unpack_operation``, lib/pengine/utils.c), probes, transition keys and magic (lib/common/operations.c), and the
order of history entries (``pe__is_newer_op``, lib/pengine/unpack.c)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, Optional, Tuple

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.enums import ExecStatus, OcfRc, OnFail
from remotectl.pacemaker.simulate.objects import PeResource
from remotectl.pacemaker.simulate.rules import unpack_dataset_nvpairs
from remotectl.pacemaker.simulate.working_set import WorkingSet


def find_lrm_op(ws: WorkingSet, rsc_id: str, task: str, node_name: Optional[str], source: Optional[str],
                 target_rc: int) -> Optional[ElementTree.Element]:
    """``find_lrm_op`` (unpack.c): the history entry of ``task``; with ``target_rc`` >= 0 only a completed
    one with that result."""
    lrm = ws.lrm_resource(node_name, rsc_id)
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
        rc = values.element_int(found, "rc-code", OcfRc.UNKNOWN_ERROR)
        status = values.element_int(found, "op-status", ExecStatus.ERROR)
        if rc != target_rc or status != ExecStatus.DONE:
            return None
    return found


def find_op_entry(rsc: PeResource, key: str) -> Optional[ElementTree.Element]:
    """``find_rsc_op_entry`` (utils.c): the configured ``<op>`` a history key belongs to."""
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


def is_remote_connection(ws: WorkingSet, rsc: PeResource) -> bool:
    """``pe__resource_is_remote_conn`` (remote.c): the connection of a remote (not guest) node."""
    if not rsc.is_remote_node:
        return False
    node = ws.find_node(rsc.id)
    return node is not None and node.is_remote()


_ON_FAIL_NAMES = {
    "block": OnFail.BLOCK, "standby": OnFail.STANDBY, "ignore": OnFail.IGNORE, "nothing": OnFail.IGNORE,
    "migrate": OnFail.MIGRATE, "stop": OnFail.STOP, "restart": OnFail.RECOVER, "demote": OnFail.DEMOTE,
}


def action_on_fail(ws: WorkingSet, rsc: PeResource, key: str, task: str) -> int:
    """``unpack_operation``'s failure policy (utils.c) for the history entry with operation key ``key``: the
    configured ``on-fail``, else Pacemaker's default for the resource and task."""
    interval_ms = key_interval(key)
    value = _configured_on_fail(ws, rsc, key, task)
    on_fail: Optional[int] = None
    if value is not None:
        v = value.lower()
        if v == "fence":
            on_fail = OnFail.FENCE if ws.stonith_enabled else OnFail.STOP
        elif v == "restart-container":
            on_fail = OnFail.RESTART_CONTAINER if rsc.container is not None else None
        else:
            on_fail = _ON_FAIL_NAMES.get(v)
    if on_fail is None and rsc.container is not None:
        return OnFail.RESTART_CONTAINER
    if ((on_fail is None or not rsc.managed) and is_remote_connection(ws, rsc)
            and not (task == "monitor" and interval_ms == 0) and task != "start"):
        return OnFail.STOP if not rsc.managed else OnFail.RESET_REMOTE
    if on_fail is None and task == "stop":
        return OnFail.FENCE if ws.stonith_enabled else OnFail.BLOCK
    if on_fail is None:
        return OnFail.RECOVER
    return on_fail


def _configured_on_fail(ws: WorkingSet, rsc: PeResource, key: str, task: str) -> Optional[str]:
    """The ``on-fail`` that applies to the operation (its ``<op>``, its meta attributes, ``op_defaults``), after
    the per-task rules of ``unpack_operation``: a stop cannot be ``standby``/``demote``/``stop``, a demote inherits
    a promoted monitor's, a delete is ignored, ``demote`` only counts for promotes and promoted monitors."""
    op = find_op_entry(rsc, key)
    meta: Dict[str, str] = {}
    unpack_dataset_nvpairs(ws, ws.op_defaults, "meta_attributes", meta)
    if op is not None:
        unpack_dataset_nvpairs(ws, op, "meta_attributes", meta, overwrite=True)
        for k, v in op.attrib.items():
            meta[k] = v
    value = meta.get("on-fail")
    if task == "stop" and value is not None and value.lower() in ("standby", "demote", "stop"):
        value = None
    elif task == "demote" and value is None:
        for o in rsc.ops:
            op_on_fail = o.get("on-fail")
            if not op_on_fail:
                continue
            if values.str_to_boolean(o.get("enabled")) is False:
                continue
            if (o.get("name") or "").lower() != "monitor" or (o.get("role") or "") not in ("Promoted", "Master"):
                continue
            if values.parse_interval_ms(o.get("interval")) == 0 or op_on_fail.lower() == "demote":
                continue
            value = op_on_fail
            break
    elif task == "delete":
        value = "ignore"
    elif value is not None and value.lower() == "demote":
        name = (op.get("name") if op is not None else None) or ""
        role = (op.get("role") if op is not None else None) or ""
        op_interval_ms = values.parse_interval_ms(op.get("interval") if op is not None else None)
        if not (name.lower() == "promote" or (name.lower() == "monitor" and role in ("Promoted", "Master")
                                              and op_interval_ms > 0)):
            value = None
    return value


def is_probe(op: ElementTree.Element) -> bool:
    """``pcmk_xe_is_probe`` (lib/common/operations.c)."""
    return op.get("operation") == "monitor" and max(0, values.scan_ll(op.get("interval")) or 0) == 0


def mask_probe_failure(op: ElementTree.Element) -> bool:
    """``pcmk_xe_mask_probe_failure`` (lib/common/operations.c)."""
    if not is_probe(op):
        return False
    status = values.element_int(op, "op-status", ExecStatus.UNKNOWN)
    rc = values.element_int(op, "rc-code", OcfRc.OK)
    return rc in (OcfRc.NOT_INSTALLED, OcfRc.INVALID_PARAM) or status == ExecStatus.NOT_INSTALLED


def target_rc_from_xml(op: ElementTree.Element) -> int:
    """``pe__target_rc_from_xml`` (unpack.c): the expected result from the transition key, -1 without."""
    key = op.get("transition-key")
    if key is None:
        return -1
    m = re.match(r"^\s*(-?\d+):(-?\d+):(-?\d+):", key)
    if not m:
        return -1
    return int(m.group(3))


def key_interval(key: str) -> int:
    """The interval (ms) ending an operation key ``RSC_TASK_INTERVAL`` (``parse_op_key``)."""
    m = re.search(r"_([0-9]+)$", key)
    return int(m.group(1)) if m else 0


def decode_transition_magic(magic: Optional[str]) -> Optional[Tuple[str, int]]:
    """``decode_transition_magic`` (lib/common/operations.c): (transition UUID, action id)."""
    if magic is None:
        return None
    m = re.match(r"^\s*-?\d+:-?\d+;(-?\d+):(-?\d+):(-?\d+):(\S{1,36})", magic)
    if not m:
        return None
    return m.group(4), int(m.group(2))


def is_newer_op(a: ElementTree.Element, b: ElementTree.Element, same_node_default: bool) -> int:
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
    da, db = decode_transition_magic(a.get("transition-magic")), decode_transition_magic(b.get("transition-magic"))
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


def newer_op_cmp(a: ElementTree.Element, b: ElementTree.Element) -> int:
    """``sort_op_by_callid`` (unpack.c)."""
    return is_newer_op(a, b, True)
