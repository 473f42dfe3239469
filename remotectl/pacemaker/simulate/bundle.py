"""The bundle variant (lib/pengine/bundle.c ``pe__unpack_bundle``): Pacemaker synthesises the clone, container,
IP and connection primitives as XML and unpacks them like configured ones; so does this port."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Optional

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.complex import unpack_resource
from remotectl.pacemaker.simulate.objects import Bundle, PeResource, Replica
from remotectl.pacemaker.simulate.remote import DEFAULT_REMOTE_PORT, create_remote_xml
from remotectl.pacemaker.simulate.working_set import WorkingSet


def next_ip(last: str) -> Optional[str]:
    """Bundle ``next_ip()``: IPv4 only; after x.y.z.254 comes x.y.(z+1).1; nothing after x.y.254.254."""
    m = re.match(r"^\s*(\d+)\.(\d+)\.(\d+)\.(\d+)", last)
    if not m:
        return None
    o1, o2, o3, o4 = (int(g) for g in m.groups())
    if o3 > 253:
        return None
    if o4 > 253:
        o3 += 1
        o4 = 1
    else:
        o4 += 1
    return f"{o1}.{o2}.{o3}.{o4}"


def unpack_bundle(ws: WorkingSet, rsc: PeResource, xml: ElementTree.Element) -> bool:
    """``pe__unpack_bundle`` (bundle.c): the bundle's implicit resources and replica nodes; False when
    Pacemaker refuses the bundle."""
    agent_el = None
    agent = None
    for name in ("docker", "rkt", "podman") if ws.version < (3,) else ("docker", "podman"):  # 3.0 dropped rkt
        agent_el = xml.find(name)
        if agent_el is not None:
            agent = name
            break
    if agent_el is None or agent is None:
        return False
    promoted_max = values.scan_min_int(agent_el.get("promoted-max", agent_el.get("masters")), 0)
    replicas_s = agent_el.get("replicas")
    if replicas_s is None and promoted_max > 0:
        nreplicas = promoted_max
    else:
        nreplicas = values.scan_min_int(replicas_s, 1)
    per_host = values.scan_min_int(agent_el.get("replicas-per-host"), 1)
    if per_host == 1:
        rsc.unique = False
    net = xml.find("network")
    ip_start = net.get("ip-range-start") if net is not None else None
    control_port = net.get("control-port") if net is not None else None
    valid_network = bool(ip_start) or bool(control_port)
    prim_xml = xml.find("primitive")
    if prim_xml is not None and not valid_network:
        return False  # Pacemaker refuses the whole bundle

    bundle = Bundle(rsc)
    bundle.control_port = control_port
    rsc.bundle = bundle
    child_clone: Optional[PeResource] = None
    if prim_xml is not None:
        clone_xml = _child_clone_xml(rsc.id, prim_xml, nreplicas, per_host, promoted_max)
        child_clone = unpack_resource(ws, clone_xml, rsc)

    ip_last: Optional[str] = None
    for i in range(nreplicas):
        rep = Replica(i)
        if ip_start:
            rep.ip = next_ip(ip_last) if ip_last else ip_start
            ip_last = rep.ip
        bundle.replicas.append(rep)

    for rep in bundle.replicas:
        container = unpack_resource(ws, _implicit_primitive(f"{rsc.id}-{agent}-{rep.offset}", agent), rsc)
        if container is None:
            return False
        container.bundle = bundle
        rsc.children.append(container)
        if rep.ip:  # create_ip_resource
            ip_rsc = unpack_resource(ws, _implicit_primitive(f"{rsc.id}-ip-{rep.ip}", "IPaddr2"), rsc)
            if ip_rsc is not None:
                rsc.children.append(ip_rsc)
        if child_clone is not None and not _create_remote_resource(ws, rsc, rep, container, child_clone):
            return False
    if child_clone is not None:
        rsc.children.append(child_clone)
    return True


def _child_clone_xml(bundle_id: str, prim_xml: ElementTree.Element, nreplicas: int, per_host: int,
                     promoted_max: int) -> ElementTree.Element:
    """The clone (or promotable clone) bundle.c wraps the bundle's primitive in, one instance per replica."""
    clone_xml = ElementTree.Element("clone", {"id": f"{bundle_id}-{'master' if promoted_max else 'clone'}"})
    meta = ElementTree.SubElement(clone_xml, "meta_attributes", {"id": f"{bundle_id}-clone-meta"})
    for k, v in (
        ("ordered", "true"),
        ("clone-max", str(nreplicas)),
        ("clone-node-max", str(per_host)),
        ("globally-unique", "true" if per_host > 1 else "false"),
    ):
        ElementTree.SubElement(meta, "nvpair", {"name": k, "value": v})
    if promoted_max:
        ElementTree.SubElement(meta, "nvpair", {"name": "promotable", "value": "true"})
        ElementTree.SubElement(meta, "nvpair", {"name": "promoted-max", "value": str(promoted_max)})
    clone_xml.append(prim_xml)
    return clone_xml


def _implicit_primitive(rid: str, agent: str) -> ElementTree.Element:
    """An ``ocf:heartbeat:AGENT`` primitive with a 60s monitor, as ``create_container_resource`` and
    ``create_ip_resource`` synthesise them (the id sanitised as ``crm_xml_sanitize_id`` does)."""
    rid = rid.replace(":", ".").replace("#", ".")
    xml = ElementTree.Element("primitive", {"id": rid, "class": "ocf", "provider": "heartbeat", "type": agent})
    ops = ElementTree.SubElement(xml, "operations")
    ElementTree.SubElement(ops, "op", {"id": f"{rid}-monitor-60s", "name": "monitor", "interval": "60s"})
    return xml


def _create_remote_resource(ws: WorkingSet, rsc: PeResource, rep: Replica, container: PeResource,
                            child_clone: PeResource) -> bool:
    """``create_remote_resource`` (bundle.c): replica ``rep``'s connection and its node ``B-i`` (renamed when
    that id is taken); False when it cannot be unpacked."""
    assert rsc.bundle is not None
    rid = f"{rsc.id}-{rep.offset}"
    if rid in ws.prims or rid in ws.collectives or rid in ws.clone_prims:
        rid = f"pcmk-internal-{child_clone.children[0].id if child_clone.children else rsc.id}-remote-{rep.offset}"
    rxml = create_remote_xml(rid, container.id, None, None, None, rep.ip or "#uname",
                             rsc.bundle.control_port or str(DEFAULT_REMOTE_PORT))
    node = ws.find_node(rid)
    if node is None:
        node = ws.create_node(rid, rid, "remote")
    remote = unpack_resource(ws, rxml, rsc)
    if remote is None:
        return False
    remote.bundle = rsc.bundle
    remote.container = container
    node.remote_rsc = remote
    rep.remote = remote
    rsc.children.append(remote)
    return True
