"""The unpacker's records: Pacemaker's ``pe_node_t``, ``pe_resource_t``, the bundle variant data and the state of
one resource history walk (include/crm/pengine/pe_types.h, lib/pengine/bundle.c), with only the fields node
states depend on."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional

from remotectl.pacemaker.simulate.enums import OnFail, Role


class PeNode:
    """``pe_node_t`` with its ``details``."""

    __slots__ = (
        "id", "uname", "type", "online", "unclean", "standby", "maintenance", "shutdown", "expected_up", "unpacked",
        "remote_rsc", "remote_was_fenced", "remote_requires_reset", "attrs",
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
        self.remote_rsc: Optional[PeResource] = None
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


class PeResource:
    """``pe_resource_t``; a clone instance found in a history is a copy of its configured primitive."""

    __slots__ = (
        "id", "xml", "variant", "parent", "children", "meta", "params", "ops", "cls", "provider", "agent",
        "managed", "unique", "promotable", "is_remote_node", "container", "role",
        "failed", "running_on", "orphan", "orphan_container_filler", "remote_reconnect_ms",
        "failure_timeout", "recovery_type", "partial_migration_source", "partial_migration_target", "clone_name",
        "config", "bundle", "clone_max", "instances", "needs_fencing",
    )

    def __init__(self, rid: str, variant: str, parent: Optional[PeResource]) -> None:
        self.id = rid
        self.xml: Optional[ElementTree.Element] = None
        self.variant = variant  # primitive | group | clone | bundle
        self.parent = parent
        self.children: List[PeResource] = []
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
        self.container: Optional[PeResource] = None
        self.role = Role.STOPPED
        self.failed = False
        self.running_on: List[PeNode] = []
        self.orphan = False
        self.orphan_container_filler = False
        self.remote_reconnect_ms = 0
        self.failure_timeout = 0
        self.recovery_type = "stop_start"
        self.partial_migration_source: Optional[PeNode] = None
        self.partial_migration_target: Optional[PeNode] = None
        self.clone_name: Optional[str] = None
        self.config: Optional[PeResource] = None  # for a clone instance: its configured primitive
        self.bundle: Optional[Bundle] = None
        self.clone_max = 0
        self.instances: List[PeResource] = []  # for a primitive in a clone: its instances seen in the history
        self.needs_fencing = False  # "requires" resolves to fencing/unfencing

    def uber_parent(self) -> PeResource:
        r = self
        while r.parent is not None and r.parent.variant != "bundle":
            r = r.parent
        return r

    def is_bundled(self) -> bool:
        return self.uber_parent().parent is not None


class Replica:
    """``pe__bundle_replica_t``: the address and connection of bundle replica ``offset``."""

    __slots__ = ("offset", "ip", "remote")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.ip: Optional[str] = None
        self.remote: Optional[PeResource] = None


class Bundle:
    """``pe__bundle_variant_data_t``, as far as replica nodes go."""

    __slots__ = ("rsc", "control_port", "replicas")

    def __init__(self, rsc: PeResource) -> None:
        self.rsc = rsc
        self.control_port: Optional[str] = None
        self.replicas: List[Replica] = []


class OpState:
    """What ``unpack_lrm_resource`` carries from one history entry to the next: the worst on-fail so far and
    the last failed operation."""

    __slots__ = ("on_fail", "last_failure")

    def __init__(self) -> None:
        self.on_fail = OnFail.IGNORE
        self.last_failure: Optional[ElementTree.Element] = None


def clone_strip(rsc_id: str) -> str:
    """``clone_strip``: ``rsc:3`` -> ``rsc``."""
    m = re.match(r"^(.+?):[0-9]*$", rsc_id)
    if m and len(rsc_id) > 1:
        return m.group(1)
    return rsc_id
