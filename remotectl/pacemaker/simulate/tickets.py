"""Ticket constraints, as far as node states go (lib/pacemaker/pcmk_sched_tickets.c ``pcmk__unpack_rsc_ticket``):
crm_mon unpacks constraints for its ticket section, and a lost ticket with ``loss-policy=fence`` fences the nodes
running the resources that depend on it."""

from __future__ import annotations

from typing import Dict, Iterable, Optional

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.effects import fence_node
from remotectl.pacemaker.simulate.enums import Role
from remotectl.pacemaker.simulate.objects import PeResource
from remotectl.pacemaker.simulate.working_set import WorkingSet


def unpack_tickets(ws: WorkingSet) -> None:
    """``pcmk__unpack_rsc_ticket``: only the part that changes node states (``loss-policy=fence``)."""
    constraints = ws.section("constraints")
    if constraints is None or not ws.stonith_enabled:
        return
    granted: Dict[str, bool] = {}
    status = ws.root.find("status")
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
        sets = [ws.expand_idref(x) for x in cons if x.tag == "resource_set"]
        if sets:
            for rset in sets:
                if rset is None:
                    break
                for ref in rset.findall("resource_ref"):
                    ticket_lost(ws, constraint_resource(ws, ref.get("id")), rset.get("role"))
        else:
            ticket_lost(ws, constraint_resource(ws, cons.get("rsc")), cons.get("rsc-role"))


def constraint_resource(ws: WorkingSet, rid: Optional[str]) -> Optional[PeResource]:
    """The resource a ticket constraint names (``pcmk__find_constraint_resource``)."""
    found = ws.find_resource(rid)
    if found is not None or rid is None:
        return found
    config = ws.clone_prims.get(rid)
    if config is not None and config.instances:
        return config.uber_parent()
    return None


def ticket_lost(ws: WorkingSet, rsc: Optional[PeResource], role_name: Optional[str]) -> None:
    """``rsc_ticket_lost`` with ``loss-policy=fence``: fence the nodes the resource is active on in that
    role."""
    if rsc is None:
        return
    role = {"stopped": Role.STOPPED, "unpromoted": Role.UNPROMOTED, "slave": Role.UNPROMOTED,
            "promoted": Role.PROMOTED, "master": Role.PROMOTED}.get((role_name or "started").lower(),
                                                                     Role.UNKNOWN)
    for leaf in leaves(ws, rsc):
        if leaf.running_on and (role == Role.UNKNOWN or role == leaf.role):
            for node in list(leaf.running_on):
                fence_node(node)


def leaves(ws: WorkingSet, rsc: PeResource) -> Iterable[PeResource]:
    """The primitives under ``rsc`` (a configured clone primitive: its instances)."""
    if rsc.variant == "primitive":
        if rsc.uber_parent().variant == "clone" and rsc.config is None:
            yield from rsc.instances  # a configured primitive inside a clone: its instances
        else:
            yield rsc
        return
    for child in rsc.children:
        yield from leaves(ws, child)
