"""One resource from its XML (lib/pengine/complex.c): ``pe__unpack_resource``, ``get_meta_attributes``,
``unpack_requires``, with the group and clone variants' unpacking (group.c, clone.c) inline."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional, Sequence

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.objects import PeResource
from remotectl.pacemaker.simulate.remote import contains_remote_node
from remotectl.pacemaker.simulate.rules import unpack_dataset_nvpairs
from remotectl.pacemaker.simulate.working_set import WorkingSet


def get_meta_attributes(ws: WorkingSet, rsc: PeResource, xml: ElementTree.Element,
                        extra_sets: Sequence[ElementTree.Element] = ()) -> None:
    """``get_meta_attributes`` (complex.c): the resource's meta attributes, its parents' and ``rsc_defaults``."""
    meta: Dict[str, str] = {}
    for k, v in xml.attrib.items():
        if v.lower() != "#default" and k not in meta:
            meta[k] = v
    holder = merged(xml, extra_sets)
    unpack_dataset_nvpairs(ws, holder, "meta_attributes", meta)
    if rsc.parent is not None:
        parent_orig: Dict[str, str] = {}
        p: Optional[PeResource] = rsc.parent
        while p is not None:
            if p.xml is not None:
                unpack_dataset_nvpairs(ws, p.xml, "meta_attributes", parent_orig)
            p = p.parent
        for k, v in parent_orig.items():
            if v.lower() != "#default" and k not in meta:
                meta[k] = v
    unpack_dataset_nvpairs(ws, ws.rsc_defaults, "meta_attributes", meta)
    if rsc.parent is not None:
        for k, v in rsc.parent.meta.items():
            if k not in meta:
                meta[k] = v
    rsc.meta = meta


def unpack_resource(ws: WorkingSet, xml: ElementTree.Element, parent: Optional[PeResource]) -> Optional[PeResource]:
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
        tmpl = ws.templates.get(xml.get("template") or "")
        if tmpl is None:
            return None
        cls = cls if cls is not None else tmpl.get("class")
        provider = provider if provider is not None else tmpl.get("provider")
        agent = agent if agent is not None else tmpl.get("type")
        extra_sets = list(tmpl)
        for o in tmpl.findall("operations"):
            ops.extend(o.findall("op"))
    rsc = PeResource(rid, variant, parent)
    rsc.xml = xml
    rsc.cls, rsc.provider, rsc.agent = cls, provider, agent
    operations = xml.find("operations")
    if operations is not None:
        operations = ws.expand_idref(operations)
    own_ops = operations.findall("op") if operations is not None else []
    rsc.ops = own_ops + ops

    get_meta_attributes(ws, rsc, xml, extra_sets)
    if tag == "primitive":
        unpack_dataset_nvpairs(ws, merged(xml, extra_sets), "instance_attributes", rsc.params)

    meta = rsc.meta
    if contains_remote_node(xml, cls, provider, agent):
        rsc.is_remote_node = True
    top = rsc.uber_parent()
    if top.variant == "clone":
        rsc.unique = values.is_true(meta.get("globally-unique"))
        rsc.promotable = values.is_true(meta.get("promotable")) or (top.xml is not None and top.xml.tag == "master")
    else:
        rsc.unique = True
    apply_meta(ws, rsc)
    if rsc.is_remote_node and meta.get("container") is None:
        reconnect_interval = rsc.params.get("reconnect_interval")
        if reconnect_interval:
            rsc.remote_reconnect_ms = values.parse_interval_ms(reconnect_interval)
            rsc.failure_timeout = rsc.remote_reconnect_ms // 1000

    if variant == "primitive":
        if top.variant == "clone":
            ws.clone_prims.setdefault(rid, rsc)
        else:
            ws.prims.setdefault(rid, rsc)
    else:
        ws.collectives.setdefault(rid, rsc)

    if variant == "group":
        for child in xml:
            if child.tag == "primitive":
                c = unpack_resource(ws, child, rsc)
                if c is not None:
                    rsc.children.append(c)
    elif variant == "clone":
        clone_max_text = meta.get("clone-max")
        rsc.clone_max = max(1, len(ws.nodes)) if clone_max_text is None else values.scan_min_int(clone_max_text, 0)
        for child in xml:
            if child.tag in ("primitive", "group"):
                c = unpack_resource(ws, child, rsc)
                if c is not None:
                    rsc.children.append(c)
                break
    elif variant == "bundle":
        # bundle.c unpacks its synthesised primitives through pe__unpack_resource again: imported here, because
        # the two modules call each other as complex.c and bundle.c do
        from remotectl.pacemaker.simulate.bundle import unpack_bundle

        if not unpack_bundle(ws, rsc, xml):
            ws.collectives.pop(rid, None)
            return None
    return rsc


def apply_meta(ws: WorkingSet, rsc: PeResource) -> None:
    """What ``rsc.meta`` decides here (class, variant and ``is_remote_node`` already set): managed,
    ``requires``, ``multiple-active`` and ``failure-timeout``."""
    meta = rsc.meta
    rsc.managed = not ws.maintenance_mode
    managed = meta.get("is-managed")
    if managed is not None and managed.lower() != "default":
        rsc.managed = values.is_true(managed)
    if values.is_true(meta.get("maintenance")) or ws.maintenance_mode:
        rsc.managed = False
    rsc.needs_fencing = unpack_requires(ws, rsc, meta.get("requires"))
    recovery = (meta.get("multiple-active") or "stop_start").lower()
    rsc.recovery_type = recovery if recovery in ("stop_only", "block", "stop_unexpected") else "stop_start"
    failure_timeout = meta.get("failure-timeout")
    if failure_timeout is not None:
        rsc.failure_timeout = values.parse_interval_ms(failure_timeout) // 1000


def unpack_requires(ws: WorkingSet, rsc: PeResource, requires: Optional[str]) -> bool:
    """``unpack_requires``: does the resource's "requires" come down to fencing?"""
    fence_device = (rsc.cls or "").lower() == "stonith"
    value = (requires or "").lower()
    if value not in ("nothing", "quorum", "fencing", "unfencing"):
        if fence_device or (rsc.variant == "primitive" and rsc.is_remote_node):
            value = "quorum"
        elif ws.enable_unfencing:
            value = "unfencing"
        elif ws.stonith_enabled:
            value = "fencing"
        else:
            value = "quorum"
    if value == "fencing":
        return True
    if value == "unfencing":
        return not fence_device and ws.stonith_enabled
    return False


def merged(xml: ElementTree.Element, extra: Sequence[ElementTree.Element]) -> ElementTree.Element:
    """An element whose children are ``extra`` (a template's) followed by ``xml``'s own."""
    if not extra:
        return xml
    holder = ElementTree.Element(xml.tag, xml.attrib)
    holder.extend(list(extra))
    holder.extend(list(xml))
    return holder
