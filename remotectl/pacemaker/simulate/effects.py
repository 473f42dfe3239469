"""What unpacking a history does to other objects: fencing a node (``pe_fence_node``, lib/pengine/unpack.c),
adding a node a primitive runs on (``native_add_running``, lib/pengine/native.c), and the fencing a stop on an
offline node implies (``stop_action``/``update_resource_action_runnable``, lib/pacemaker)."""

from __future__ import annotations

from typing import Optional

from remotectl.pacemaker.simulate.objects import PeNode, PeResource
from remotectl.pacemaker.simulate.working_set import WorkingSet


def fence_node(node: PeNode) -> None:
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


def stop_action(ws: WorkingSet, rsc: PeResource, node: Optional[PeNode]) -> None:
    """Scheduling a stop (``stop_action`` -> ``update_resource_action_runnable``) of a managed resource on
    an offline node fences that node ("stop is unrunnable")."""
    if node is None:
        return
    if not node.online and (not node.is_guest() or node.remote_requires_reset):
        if rsc.managed and not node.unclean:
            fence_node(node)


def add_running(rsc: PeResource, node: PeNode) -> None:
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
