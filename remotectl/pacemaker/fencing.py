"""Fencing knowledge (pure): the fence history from ``stonith_admin --history --output-as=xml`` and how a node of
each type is fenced (node states come from :mod:`remotectl.pacemaker.status`).

How Pacemaker fences each node type (2.1.5 ``lib/pengine/unpack.c`` ``pe_fence_node`` and
``determine_remote_online_status``):

* cluster and remote nodes: a fencing device does it (``stonith_admin --reboot|--fence NODE``);
* guest and bundle nodes have no fencing device: "A guest node is fenced by marking its container as failed",
  which makes the scheduler recover (stop, then start) the container and treat every resource on the guest as
  stopped. ``crm_resource --fail --resource CONTAINER --node HOST`` asks the controller to record exactly such a
  failure of the container on the node that runs it, so the scheduler takes the same path. Nothing of this is
  recorded in the fencer's history; the container keeps a failed operation in its history until it is cleaned up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

from remotectl.jsonable import json_field
from remotectl.pacemaker import tools, values, xmlsafe
from remotectl.pacemaker.status import NodeStatus
from remotectl.reports import RemotectlError

Element = ElementTree.Element
FENCE_ACTIONS = ("reboot", "off")


# --- fence history ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FenceEvent:
    target: Optional[str]
    action: Optional[str]
    status: Optional[str]  # success | failed | pending
    origin: Optional[str]
    delegate: Optional[str]
    client: Optional[str]
    completed: Optional[str]  # local time as the fencer prints it; absent while pending
    exit_reason: Optional[str]
    extended_status: Optional[str] = None


def parse_history(xml_text: Union[str, bytes]) -> List[FenceEvent]:
    """Every ``fence_event`` of ``stonith_admin --history NODE|* --verbose --output-as=xml``, in the tool's order
    (pending first, then newest first). Raises RemotectlError when the document reports a failure."""
    root = xmlsafe.parse(xml_text, "stonith_admin --history output")
    if root.tag != "pacemaker-result":
        raise RemotectlError(f"stonith_admin --history output: unexpected root element <{root.tag}>")
    status = values.result_status(root)
    if status.code not in (None, 0):
        message = status.describe()
        detail = f": {message}" if message else ""
        raise RemotectlError(f"stonith_admin --history failed ({tools.exit_meaning(status.code)}){detail}")
    events = []
    for event in root.iter("fence_event"):
        events.append(
            FenceEvent(
                target=event.get("target"),
                action=event.get("action"),
                status=event.get("status"),
                origin=event.get("origin"),
                delegate=event.get("delegate"),
                client=event.get("client"),
                completed=event.get("completed"),
                exit_reason=event.get("exit-reason"),
                extended_status=event.get("extended-status"),
            )
        )
    return events


# --- planning a fence ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FencePlan:
    node: str
    type: str  # a status.NodeStatus type, or unknown for a node crm_mon does not show
    action: str  # reboot | off
    method: str  # stonith (a fencing device) | container-recovery (guest and bundle nodes)
    argv: Tuple[str, ...] = json_field(omit=True)
    container: Optional[str] = None
    host: Optional[str] = None
    explanation: str = json_field(omit=True, default="")


def plan_fence(node: str, action: str, state: Optional[NodeStatus]) -> FencePlan:
    """How to fence node the way Pacemaker itself would. ``state`` is None for a node crm_mon does not show (the
    caller decides whether to allow that); such a node can only be handed to the fencer."""
    if action not in FENCE_ACTIONS:
        raise RemotectlError(f"unknown fence action {action!r} (choose from {', '.join(FENCE_ACTIONS)})")
    if state is None or state.type not in ("guest", "bundle"):
        node_type = state.type if state else "unknown"
        verb = "power it off" if action == "off" else "reboot it"
        return FencePlan(
            node=node,
            type=node_type,
            action=action,
            method="stonith",
            argv=tuple(tools.stonith_fence(node, action)),
            explanation=f"the fencer will {verb} with a fencing device that can fence {node} (stonith_admin)",
        )
    kind = "guest" if state.type == "guest" else "bundle"
    container = state.container
    if action == "off":
        raise RemotectlError(
            f"{node} is a {kind} node: Pacemaker fences it by recovering (restarting) its container {container}, "
            f"so there is no 'off'; to keep it down, stop the container instead "
            f"(crm_resource --resource {container} --meta --set-parameter target-role --parameter-value Stopped)"
        )
    if not state.container_hosts:
        raise RemotectlError(
            f"{node} is a {kind} node whose container {container} is not running: there is nothing to fence "
            f"(Pacemaker fences {kind} nodes by recovering their container)"
        )
    if state.container_managed is False:
        raise RemotectlError(
            f"{node} is a {kind} node whose container {container} is unmanaged: Pacemaker does not fence such a "
            f"node (it would not recover an unmanaged container); manage {container} first"
        )
    host = state.container_hosts[0]
    return FencePlan(
        node=node,
        type=state.type,
        action=action,
        method="container-recovery",
        argv=tuple(tools.resource_fail(container, host)),
        container=container,
        host=host,
        explanation=(
            f"{node} is a {kind} node, which no fencing device can fence: Pacemaker fences it by recovering its "
            f"container {container}. remotectl does the same: it marks {container} as failed on {host} "
            f"(crm_resource --fail), so the cluster stops and restarts {container} and treats {node}'s resources "
            f"as stopped"
        ),
    )
