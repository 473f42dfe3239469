"""The working set: one CIB being unpacked, as Pacemaker's ``pe_working_set_t`` (include/crm/pengine/pe_types.h)
holds it, with the lookups lib/pengine/status.c and unpack.c do on it. Every unpacking function takes it first,
as the C functions take ``pe_working_set_t *data_set``."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional, Tuple

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate import schema  # noqa: F401 (a sibling module, not the package)
from remotectl.pacemaker.simulate.objects import PeNode, PeResource
from remotectl.reports import RemotectlError


class WorkingSet:
    """A ``<cib>`` element and what has been unpacked from it so far."""

    def __init__(self, root: ElementTree.Element, *, now: Optional[float] = None,
                 membership_timestamps: Optional[bool] = None,
                 pacemaker_version: Optional[Tuple[int, ...]] = None) -> None:
        if root.tag != "cib":
            raise RemotectlError(f"not a CIB: the root element is <{root.tag}>, not <cib>")
        self.version = pacemaker_version if pacemaker_version is not None else schema.pacemaker_version(root)
        root = schema.upgrade(root, self.version)
        self.root = root
        self.now = int(time.time() if now is None else now)
        if membership_timestamps is None:
            membership_timestamps = values.version_tuple(root.get("crm_feature_set")) >= (3, 18)
        self.membership_timestamps = membership_timestamps
        self.rsc_defaults = self.section("rsc_defaults")
        self.op_defaults = self.section("op_defaults")

        # cluster options (unpack_config; these are Pacemaker's defaults until then)
        self.stonith_enabled = True
        self.maintenance_mode = False
        self.startup_fencing = True
        self.stop_orphan_resources = True
        self.have_quorum = False
        self.no_quorum_policy = "stop"
        self.legacy_failcounts = False
        self.node_pending_ms = 0  # node-pending-timeout (2.1.7+)
        self.enable_unfencing = False

        self.nodes: List[PeNode] = []
        self.prims: Dict[str, PeResource] = {}  # unique primitives (incl. implicit and orphans) by id
        self.collectives: Dict[str, PeResource] = {}  # groups, clones, bundles by id
        self.clone_prims: Dict[str, PeResource] = {}  # primitives inside clones, by their configured id
        self.templates: Dict[str, ElementTree.Element] = {}
        self.node_states: List[ElementTree.Element] = []  # status/node_state, once unpack_status starts
        self.stop_needed: List[PeResource] = []  # containers of failed bundle connections
        self._by_uname: Dict[str, PeNode] = {}
        self._by_id: Dict[str, PeNode] = {}
        self._ids: Optional[Dict[str, ElementTree.Element]] = None
        self._lrm_index: Optional[Dict[Tuple[str, str], ElementTree.Element]] = None

    def section(self, tag: str) -> Optional[ElementTree.Element]:
        """``configuration/TAG``, else the first ``TAG`` anywhere (as Pacemaker's ``get_xpath_object``)."""
        conf = self.root.find("configuration")
        if conf is not None:
            el = conf.find(tag)
            if el is not None:
                return el
        return self.root.find(".//" + tag)

    def expand_idref(self, el: ElementTree.Element) -> Optional[ElementTree.Element]:
        """``expand_idref``: the element an ``id-ref`` points to (None if dangling), else ``el`` itself."""
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

    # ---- nodes (lib/pengine/status.c) ---------------------------------------------------------------------

    def find_node(self, uname: Optional[str]) -> Optional[PeNode]:
        """``pe_find_node``: by name, case-insensitively; the first one created wins."""
        if uname is None:
            return None
        return self._by_uname.get(uname.lower())

    def find_node_any(self, node_id: Optional[str], uname: Optional[str]) -> Optional[PeNode]:
        """``pe_find_node_any``: by id, else by name."""
        if node_id is not None:
            n = self._by_id.get(node_id.lower())
            if n is not None:
                return n
        return self.find_node(uname)

    def create_node(self, node_id: str, uname: Optional[str], node_type: Optional[str]) -> Optional[PeNode]:
        """``pe_create_node``: an absent type is ``member``; an unknown one is taken as (deprecated) ``ping`` by 2.1,
        refused (None) by 3.0."""
        t = (node_type or "member").lower()
        if t not in ("member", "remote"):
            if self.version >= (3,):
                return None
            t = "ping"
        node = PeNode(node_id, uname, t)
        self.nodes.append(node)
        if uname is not None:
            self._by_uname.setdefault(uname.lower(), node)
        self._by_id.setdefault(node_id.lower(), node)
        return node

    # ---- resources ----------------------------------------------------------------------------------------

    def find_resource(self, rid: Optional[str]) -> Optional[PeResource]:
        """``pe_find_resource`` for unique ids (primitives outside clones, groups, clones, bundles)."""
        if rid is None:
            return None
        return self.prims.get(rid) or self.collectives.get(rid)

    def lrm_resource(self, node_name: Optional[str], rsc_id: str) -> Optional[ElementTree.Element]:
        """The ``lrm_resource`` of ``rsc_id`` in ``node_name``'s history (``find_lrm_resource``), indexed once."""
        if node_name is None:
            return None
        if self._lrm_index is None:
            idx: Dict[Tuple[str, str], ElementTree.Element] = {}
            for state in self.node_states:
                uname = state.get("uname")
                if uname is None:
                    continue
                for lrm in state.iter("lrm_resource"):
                    i = lrm.get("id")
                    if i is not None:
                        idx.setdefault((uname, i), lrm)
            self._lrm_index = idx
        return self._lrm_index.get((node_name, rsc_id))
