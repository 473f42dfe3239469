#!/usr/bin/env python3
"""Generate Pacemaker CIBs with cluster, remote, guest and bundle nodes, as Pacemaker 2.1.x writes them.

Used three ways:

* ``python bench/gen_cib.py --remotes 1000 > /tmp/cib-1000.xml``: a big CIB for ``bench/nodes_offline.py``;
* ``python bench/gen_cib.py --write-fixtures tests/data/cib``: (re)writes the named scenarios in
  :data:`SCENARIOS` (the committed fixtures come from here; check them with
  ``CIB_file=F crm_mon --output-as=xml -1``);
* from tests: ``build(ClusterSpec(...))`` returns the XML text.

The status section mimics what the controller records: ``node_state`` entries (``in_ccm``/``crmd`` as
booleans, or as epoch timestamps with feature set 3.18.0), transient attributes, and the resource history of
each connection, container and bundle part in the ``lrm`` of the cluster node that runs it, with transition
keys and magic as Pacemaker writes them. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

UUID = "6b19349a-0000-4000-8000-00000000c1b5"
EPOCH = 1732540000  # a fixed time so generated files are reproducible
FEATURE_SET = "3.16.1"  # Pacemaker 2.1.5
FEATURE_SET_TIMESTAMPS = "3.18.0"  # Pacemaker 2.1.7+: in_ccm/crmd are timestamps


@dataclass
class ClusterNode:
    name: str
    state: str = "online"  # online | offline (left cleanly) | lost (left unexpectedly) | unseen (no node_state)
    standby: bool = False  # permanent standby attribute


@dataclass
class Remote:
    name: str
    host: str = "node1"  # cluster node running the connection
    state: str = "online"  # online | stopped | failed (monitor failed) | never (no history, no node_state)
    server: Optional[str] = None
    port: Optional[int] = None
    standby: Optional[str] = None  # None | "permanent" | "transient"
    maintenance: bool = False  # node attribute maintenance=true (permanent)
    unmanaged: bool = False  # connection resource is-managed=false
    reconnect_interval: Optional[str] = None
    group: Optional[str] = None  # put the connection in this group (Pacemaker then makes no node for it)


@dataclass
class Guest:
    name: str  # the guest node (remote-node)
    container: str  # the resource hosting it
    host: str = "node1"
    running: bool = True
    addr: Optional[str] = None
    port: Optional[int] = None
    clone: Optional[str] = None  # put the container in this clone (Pacemaker then ignores remote-node)


@dataclass
class Bundle:
    id: str
    replicas: int = 2
    hosts: Sequence[str] = ("node1", "node2")  # host of replica i = hosts[i % len(hosts)]
    ip_range_start: Optional[str] = "192.168.122.131"
    control_port: Optional[int] = None
    running: bool = True
    agent: str = "podman"
    network: bool = True  # write <network> (without ip-range-start or control-port Pacemaker refuses the bundle)


@dataclass
class ClusterSpec:
    cluster_nodes: List[ClusterNode] = field(default_factory=lambda: [ClusterNode("node1"), ClusterNode("node2")])
    remotes: List[Remote] = field(default_factory=list)
    guests: List[Guest] = field(default_factory=list)
    bundles: List[Bundle] = field(default_factory=list)
    stonith_enabled: bool = True
    maintenance_mode: bool = False
    timestamps: bool = False  # in_ccm/crmd as epoch timestamps (feature set 3.18.0)
    dummies: int = 1  # plain ocf:pacemaker:Dummy resources started on the first cluster node


class _History:
    """Builds lrm_rsc_op entries with increasing call ids per node."""

    def __init__(self) -> None:
        self.call_ids: Dict[str, int] = {}
        self.transition = 1
        self.action = 1

    def op(self, lrm_rsc: ET.Element, node: str, rsc: str, task: str, *, interval_ms: int = 0, rc: int = 0,
           status: int = 0, target_rc: int = 0) -> ET.Element:
        """Record one result the way the controller does: a non-recurring result replaces ``<rsc>_last_0``,
        a recurring one is ``<rsc>_<task>_<interval>``, and a failure is also kept as ``<rsc>_last_failure_0``."""
        call_id = self.call_ids.get(node, 0) + 1
        self.call_ids[node] = call_id
        self.action += 1
        key = f"{self.action}:{self.transition}:{target_rc}:{UUID}"
        op_key = f"{rsc}_{task}_{interval_ms}"
        op_id = op_key if interval_ms else f"{rsc}_last_0"
        attrs = {
            "id": op_id,
            "operation_key": op_key,
            "operation": task,
            "crm-debug-origin": "do_update_resource",
            "crm_feature_set": FEATURE_SET,
            "transition-key": key,
            "transition-magic": f"{status}:{rc};{key}",
            "exit-reason": "",
            "on_node": node,
            "call-id": str(call_id),
            "rc-code": str(rc),
            "op-status": str(status),
            "interval": str(interval_ms),
            "last-rc-change": str(EPOCH + call_id),
            "exec-time": "10",
            "queue-time": "0",
            "op-digest": "f2317cad3d54cec5d7d7aa7d0bf35cf8",
        }
        if not interval_ms:
            attrs["last-run"] = attrs["last-rc-change"]
        for old in lrm_rsc.findall("lrm_rsc_op"):
            if old.get("id") == op_id:
                lrm_rsc.remove(old)
        if task == "stop" and rc == 0 and status == 0:
            for old in lrm_rsc.findall("lrm_rsc_op"):  # a stop cancels the recurring monitors
                if old.get("interval") not in (None, "0"):
                    lrm_rsc.remove(old)
        entry = ET.SubElement(lrm_rsc, "lrm_rsc_op", attrs)
        if rc != target_rc or status != 0:
            failure = dict(attrs, id=f"{rsc}_last_failure_0")
            for old in lrm_rsc.findall("lrm_rsc_op"):
                if old.get("id") == failure["id"]:
                    lrm_rsc.remove(old)
            ET.SubElement(lrm_rsc, "lrm_rsc_op", failure)
        return entry


def _nv(parent: ET.Element, set_id: str, name: str, value: str) -> None:
    ET.SubElement(parent, "nvpair", {"id": f"{set_id}-{name}", "name": name, "value": value})


def _ops(prim: ET.Element, rid: str, monitor: str = "10s", extra: Sequence[Tuple[str, str]] = ()) -> None:
    ops = ET.SubElement(prim, "operations")
    ET.SubElement(ops, "op", {"id": f"{rid}-monitor-interval-{monitor}", "name": "monitor", "interval": monitor,
                              "timeout": "20s"})
    for name, timeout in extra:
        ET.SubElement(ops, "op", {"id": f"{rid}-{name}-interval-0s", "name": name, "interval": "0s",
                                  "timeout": timeout})


def _monitor_ms(spec: str) -> int:
    return int(spec.rstrip("s")) * 1000


def build(spec: ClusterSpec) -> str:
    """The CIB for ``spec`` as XML text."""
    feature_set = FEATURE_SET_TIMESTAMPS if spec.timestamps else FEATURE_SET
    cluster = spec.cluster_nodes
    ids = {n.name: str(i + 1) for i, n in enumerate(cluster)}
    dc = next((n.name for n in cluster if n.state == "online"), None)
    cib_attrs = {
        "crm_feature_set": feature_set,
        "validate-with": "pacemaker-3.9",
        "epoch": "42",
        "num_updates": "7",
        "admin_epoch": "0",
        "cib-last-written": "Mon Nov 25 13:06:40 2024",
        "update-origin": cluster[0].name if cluster else "node1",
        "update-client": "cibadmin",
        "update-user": "root",
        "have-quorum": "1",
    }
    if dc:
        cib_attrs["dc-uuid"] = ids[dc]
    cib = ET.Element("cib", cib_attrs)
    conf = ET.SubElement(cib, "configuration")
    crm_config = ET.SubElement(conf, "crm_config")
    props = ET.SubElement(crm_config, "cluster_property_set", {"id": "cib-bootstrap-options"})
    sid = "cib-bootstrap-options"
    _nv(props, sid, "have-watchdog", "false")
    _nv(props, sid, "dc-version", "2.1.5-a3f44794f94")
    _nv(props, sid, "cluster-infrastructure", "corosync")
    _nv(props, sid, "cluster-name", "test")
    _nv(props, sid, "dc-deadtime", "5s")
    _nv(props, sid, "stonith-enabled", "true" if spec.stonith_enabled else "false")
    if spec.maintenance_mode:
        _nv(props, sid, "maintenance-mode", "true")

    nodes = ET.SubElement(conf, "nodes")
    for n in cluster:
        node = ET.SubElement(nodes, "node", {"id": ids[n.name], "uname": n.name})
        if n.standby:
            ia = ET.SubElement(node, "instance_attributes", {"id": f"nodes-{ids[n.name]}"})
            _nv(ia, f"nodes-{ids[n.name]}", "standby", "on")
    for r in spec.remotes:
        attrs = []
        if r.standby == "permanent":
            attrs.append(("standby", "on"))
        if r.maintenance:
            attrs.append(("maintenance", "true"))
        if attrs:
            node = ET.SubElement(nodes, "node", {"id": r.name, "type": "remote", "uname": r.name})
            ia = ET.SubElement(node, "instance_attributes", {"id": f"nodes-{r.name}"})
            for k, v in attrs:
                _nv(ia, f"nodes-{r.name}", k, v)

    resources = ET.SubElement(conf, "resources")
    if spec.stonith_enabled:
        fence = ET.SubElement(resources, "primitive", {"class": "stonith", "id": "fence-dummy", "type": "fence_dummy"})
        ia = ET.SubElement(fence, "instance_attributes", {"id": "fence-dummy-instance_attributes"})
        hosts = " ".join([n.name for n in cluster] + [r.name for r in spec.remotes])
        _nv(ia, "fence-dummy-instance_attributes", "pcmk_host_list", hosts)
        _ops(fence, "fence-dummy", "60s")
    groups: Dict[str, ET.Element] = {}
    for r in spec.remotes:
        parent = resources
        if r.group is not None:
            if r.group not in groups:
                groups[r.group] = ET.SubElement(resources, "group", {"id": r.group})
            parent = groups[r.group]
        prim = ET.SubElement(parent, "primitive", {"class": "ocf", "id": r.name, "provider": "pacemaker",
                                                   "type": "remote"})
        params = []
        if r.server is not None:
            params.append(("server", r.server))
        if r.port is not None:
            params.append(("port", str(r.port)))
        if r.reconnect_interval is not None:
            params.append(("reconnect_interval", r.reconnect_interval))
        if params:
            ia = ET.SubElement(prim, "instance_attributes", {"id": f"{r.name}-instance_attributes"})
            for k, v in params:
                _nv(ia, f"{r.name}-instance_attributes", k, v)
        if r.unmanaged:
            ma = ET.SubElement(prim, "meta_attributes", {"id": f"{r.name}-meta_attributes"})
            _nv(ma, f"{r.name}-meta_attributes", "is-managed", "false")
        _ops(prim, r.name, "10s", (("start", "60s"), ("stop", "60s")))
    for g in spec.guests:
        parent = resources if g.clone is None else ET.SubElement(resources, "clone", {"id": g.clone})
        prim = ET.SubElement(parent, "primitive", {"class": "ocf", "id": g.container, "provider": "pacemaker",
                                                   "type": "Dummy"})
        ma = ET.SubElement(prim, "meta_attributes", {"id": f"{g.container}-meta_attributes"})
        _nv(ma, f"{g.container}-meta_attributes", "remote-node", g.name)
        if g.addr is not None:
            _nv(ma, f"{g.container}-meta_attributes", "remote-addr", g.addr)
        if g.port is not None:
            _nv(ma, f"{g.container}-meta_attributes", "remote-port", str(g.port))
        _ops(prim, g.container, "10s")
    for b in spec.bundles:
        bundle = ET.SubElement(resources, "bundle", {"id": b.id})
        ET.SubElement(bundle, b.agent, {"image": "localhost/pcmktest:http", "replicas": str(b.replicas)})
        net: Dict[str, str] = {}
        if b.ip_range_start:
            net["ip-range-start"] = b.ip_range_start
            net["host-interface"] = "eth0"
            net["host-netmask"] = "24"
        if b.control_port is not None:
            net["control-port"] = str(b.control_port)
        if b.network:
            ET.SubElement(bundle, "network", net)
        inner = ET.SubElement(bundle, "primitive", {"class": "ocf", "id": f"{b.id}-httpd", "provider": "heartbeat",
                                                    "type": "apache"})
        _ops(inner, f"{b.id}-httpd", "15s")
    for i in range(spec.dummies):
        prim = ET.SubElement(resources, "primitive", {"class": "ocf", "id": f"dummy{i + 1}", "provider": "pacemaker",
                                                      "type": "Dummy"})
        _ops(prim, f"dummy{i + 1}", "10s")
    ET.SubElement(conf, "constraints")
    rscd = ET.SubElement(conf, "rsc_defaults")
    ma = ET.SubElement(rscd, "meta_attributes", {"id": "rsc_defaults-options"})
    _nv(ma, "rsc_defaults-options", "resource-stickiness", "1")

    # ---- status ----
    status = ET.SubElement(cib, "status")
    hist = _History()
    lrms: Dict[str, ET.Element] = {}

    def member_value(up: bool) -> Tuple[str, str]:
        if spec.timestamps:
            return (str(EPOCH - 3600) if up else "0"), (str(EPOCH - 3590) if up else "0")
        return ("true" if up else "false"), ("online" if up else "offline")

    for n in cluster:
        if n.state == "unseen":
            continue
        up = n.state == "online"
        in_ccm, crmd = member_value(up)
        join = "member" if up or n.state == "lost" else "down"
        expected = "member" if up or n.state == "lost" else "down"
        ns = ET.SubElement(status, "node_state", {"id": ids[n.name], "uname": n.name, "in_ccm": in_ccm,
                                                   "crmd": crmd, "crm-debug-origin": "do_update_resource",
                                                   "join": join, "expected": expected})
        ta = ET.SubElement(ns, "transient_attributes", {"id": ids[n.name]})
        ia = ET.SubElement(ta, "instance_attributes", {"id": f"status-{ids[n.name]}"})
        _nv(ia, f"status-{ids[n.name]}", "#feature-set", feature_set)
        lrm = ET.SubElement(ns, "lrm", {"id": ids[n.name]})
        lrms[n.name] = ET.SubElement(lrm, "lrm_resources")

    def lrm_rsc(node: str, rid: str, cls: str, provider: Optional[str], kind: str,
                container: Optional[str] = None) -> Optional[ET.Element]:
        parent = lrms.get(node)
        if parent is None:
            return None
        attrs = {"id": rid, "class": cls, "type": kind}
        if provider:
            attrs["provider"] = provider
        if container:
            attrs["container"] = container
        return ET.SubElement(parent, "lrm_resource", attrs)

    def started(node: str, rid: str, cls: str, provider: Optional[str], kind: str, monitor_ms: int,
                container: Optional[str] = None) -> None:
        e = lrm_rsc(node, rid, cls, provider, kind, container)
        if e is None:
            return
        hist.op(e, node, rid, "start")
        hist.op(e, node, rid, "monitor", interval_ms=monitor_ms)

    def probed_stopped(node: str, rid: str, cls: str, provider: Optional[str], kind: str) -> None:
        e = lrm_rsc(node, rid, cls, provider, kind)
        if e is None:
            return
        hist.op(e, node, rid, "monitor", rc=7, target_rc=7)

    first = dc or (cluster[0].name if cluster else "node1")
    if spec.stonith_enabled:
        started(first, "fence-dummy", "stonith", None, "fence_dummy", 60000)
    for i in range(spec.dummies):
        started(first, f"dummy{i + 1}", "ocf", "pacemaker", "Dummy", 10000)

    def remote_state(name: str, lrm_children: Sequence[Tuple[str, str, str, str, int]] = (),
                     transient: Sequence[Tuple[str, str]] = ()) -> None:
        in_ccm = str(EPOCH - 3000) if spec.timestamps else "true"
        ns = ET.SubElement(status, "node_state", {"id": name, "uname": name, "remote_node": "true",
                                                   "in_ccm": in_ccm, "crm-debug-origin": "remote_node_up",
                                                   "node_fenced": "0"})
        if transient:
            ta = ET.SubElement(ns, "transient_attributes", {"id": name})
            ia = ET.SubElement(ta, "instance_attributes", {"id": f"status-{name}"})
            for k, v in transient:
                _nv(ia, f"status-{name}", k, v)
        lrm = ET.SubElement(ns, "lrm", {"id": name})
        lres = ET.SubElement(lrm, "lrm_resources")
        for rid, cls, provider, kind, monitor_ms in lrm_children:
            e = ET.SubElement(lres, "lrm_resource", {"id": rid, "class": cls, "provider": provider, "type": kind})
            hist.op(e, name, rid, "start")
            hist.op(e, name, rid, "monitor", interval_ms=monitor_ms)

    for r in spec.remotes:
        transient = [("standby", "on")] if r.standby == "transient" else []
        if r.state == "never":
            continue
        if r.state == "online":
            started(r.host, r.name, "ocf", "pacemaker", "remote", 10000)
            remote_state(r.name, transient=transient)
        elif r.state == "stopped":
            e = lrm_rsc(r.host, r.name, "ocf", "pacemaker", "remote")
            if e is not None:
                hist.op(e, r.host, r.name, "start")
                hist.op(e, r.host, r.name, "monitor", interval_ms=10000)
                hist.op(e, r.host, r.name, "stop")
            remote_state(r.name, transient=transient)
        elif r.state == "failed":
            e = lrm_rsc(r.host, r.name, "ocf", "pacemaker", "remote")
            if e is not None:
                hist.op(e, r.host, r.name, "start")
                # the recurring monitor lost the connection: an error result where 0 was expected
                hist.op(e, r.host, r.name, "monitor", interval_ms=10000, rc=1, status=4)
            remote_state(r.name, transient=transient)
        else:
            raise ValueError(f"unknown remote state {r.state!r}")

    for g in spec.guests:
        if g.running:
            started(g.host, g.container, "ocf", "pacemaker", "Dummy", 10000)
            started(g.host, g.name, "ocf", "pacemaker", "remote", 30000, container=g.container)
            remote_state(g.name)
        else:
            probed_stopped(g.host, g.container, "ocf", "pacemaker", "Dummy")

    for b in spec.bundles:
        ip = b.ip_range_start
        for i in range(b.replicas):
            host = b.hosts[i % len(b.hosts)]
            container = f"{b.id}-{b.agent}-{i}"
            if b.running:
                if ip:
                    started(host, f"{b.id}-ip-{ip}", "ocf", "heartbeat", "IPaddr2", 60000)
                started(host, container, "ocf", "heartbeat", b.agent, 60000)
                started(host, f"{b.id}-{i}", "ocf", "pacemaker", "remote", 30000, container=container)
                remote_state(f"{b.id}-{i}", [(f"{b.id}-httpd", "ocf", "heartbeat", "apache", 15000)])
            else:
                probed_stopped(host, container, "ocf", "heartbeat", b.agent)
            if ip:
                last = int(ip.rsplit(".", 1)[1])
                ip = f"{ip.rsplit('.', 1)[0]}.{last + 1}"

    ET.indent(cib, space="  ")
    return ET.tostring(cib, encoding="unicode") + "\n"


def big(remotes: int, cluster_nodes: int = 3, timestamps: bool = False) -> ClusterSpec:
    """A cluster with ``remotes`` remote nodes spread over ``cluster_nodes`` hosts (benchmarks)."""
    nodes = [ClusterNode(f"node{i + 1}") for i in range(cluster_nodes)]
    rs = [
        Remote(f"remote{i + 1}", host=nodes[i % cluster_nodes].name, server=f"10.{(i >> 16) & 255}."
               f"{(i >> 8) & 255}.{i & 255}", standby="transient" if i % 97 == 0 else None)
        for i in range(remotes)
    ]
    return ClusterSpec(cluster_nodes=nodes, remotes=rs, timestamps=timestamps)


def _three() -> List[ClusterNode]:
    return [ClusterNode("node1"), ClusterNode("node2"), ClusterNode("node3")]


# The committed fixtures in tests/data/cib (file name -> spec). Regenerate with --write-fixtures.
SCENARIOS: Dict[str, ClusterSpec] = {
    "cluster-only.xml": ClusterSpec(cluster_nodes=_three(), dummies=2),
    "remote-online.xml": ClusterSpec(remotes=[
        Remote("remote1", server="192.168.122.21", port=3121),
        Remote("remote2", host="node2"),  # no server: defaults to the resource id, port 3121
        Remote("remote3", server="rem3.example.com", port=3131, host="node2"),
    ]),
    "remote-offline-stopped.xml": ClusterSpec(remotes=[
        Remote("remote1", server="192.168.122.21"),
        Remote("remote2", server="192.168.122.22", state="stopped"),
    ]),
    "remote-standby.xml": ClusterSpec(remotes=[
        Remote("remote1", server="192.168.122.21", standby="permanent"),
        Remote("remote2", server="192.168.122.22", standby="transient", host="node2"),
        Remote("remote3", server="192.168.122.23"),
    ]),
    "remote-maintenance.xml": ClusterSpec(remotes=[
        Remote("remote1", server="192.168.122.21", maintenance=True),
        Remote("remote2", server="192.168.122.22", unmanaged=True),
        Remote("remote3", server="192.168.122.23"),
    ]),
    "guest.xml": ClusterSpec(guests=[
        Guest("guest1", "vm-guest1", host="node1", addr="192.168.122.41"),
        Guest("guest2", "vm-guest2", host="node2", running=False, port=3122),
    ]),
    "guest-named-like-bundle-replica.xml": ClusterSpec(guests=[
        Guest("web-0", "web-podman-0", host="node1", addr="192.168.122.41"),
        Guest("guest2", "vm-guest2", host="node2", running=False, port=3122),
    ]),
    "bundle.xml": ClusterSpec(bundles=[Bundle("httpd-bundle", replicas=2, control_port=3121)]),
    "bundle-no-ip.xml": ClusterSpec(bundles=[
        Bundle("web-bundle", replicas=1, ip_range_start=None, control_port=3124, hosts=("node2",)),
    ]),
    "remote-unclean-failed-monitor.xml": ClusterSpec(remotes=[
        Remote("remote1", server="192.168.122.21", state="failed"),
        Remote("remote2", server="192.168.122.22"),
    ]),
    "remote-failed-monitor-no-fencing.xml": ClusterSpec(stonith_enabled=False, remotes=[
        Remote("remote1", server="192.168.122.21", state="failed"),
    ]),
    "remote-unseen.xml": ClusterSpec(remotes=[
        Remote("remote1", server="192.168.122.21"),
        Remote("remote2", server="192.168.122.22", state="never"),  # configured, never connected
    ]),
    "membership-booleans.xml": ClusterSpec(
        cluster_nodes=[ClusterNode("node1"), ClusterNode("node2"), ClusterNode("node3", state="offline")],
        remotes=[Remote("remote1", server="192.168.122.21")],
        guests=[Guest("guest1", "vm-guest1")],
    ),
    "membership-timestamps.xml": ClusterSpec(
        timestamps=True,
        cluster_nodes=[ClusterNode("node1"), ClusterNode("node2"), ClusterNode("node3", state="offline")],
        remotes=[Remote("remote1", server="192.168.122.21")],
        guests=[Guest("guest1", "vm-guest1")],
    ),
    "maintenance-mode.xml": ClusterSpec(
        maintenance_mode=True,
        remotes=[Remote("remote1", server="192.168.122.21"), Remote("remote2", state="stopped")],
        guests=[Guest("guest1", "vm-guest1")],
        bundles=[Bundle("httpd-bundle", replicas=1)],
    ),
    "cluster-node-offline.xml": ClusterSpec(
        cluster_nodes=[ClusterNode("node1"), ClusterNode("node2", state="offline"),
                       ClusterNode("node3", state="lost"), ClusterNode("node4", state="unseen"),
                       ClusterNode("node5", standby=True)],
        remotes=[Remote("remote1", server="192.168.122.21", host="node1"),
                 Remote("remote2", server="192.168.122.22", host="node3")],  # its host was lost
        guests=[Guest("guest1", "vm-guest1", host="node3")],  # so was this guest's host
    ),
    "mixed.xml": ClusterSpec(
        cluster_nodes=_three(),
        remotes=[Remote("remote1", server="192.168.122.21"), Remote("remote2", host="node3", standby="transient"),
                 Remote("remote10", server="192.168.122.30", host="node2", reconnect_interval="60s")],
        guests=[Guest("guest1", "vm-guest1", host="node2")],
        bundles=[Bundle("httpd-bundle", replicas=2, hosts=("node1", "node3"))],
    ),
    # what looks like remote/guest/bundle nodes but is none to Pacemaker: crm_mon lists node1 only
    "remote-placements-pacemaker-ignores.xml": ClusterSpec(
        cluster_nodes=[ClusterNode("node1")],
        remotes=[Remote("R", server="192.0.2.10", state="never", group="grp")],  # a connection in a group
        guests=[Guest("guestX", "vm", running=False, clone="vm-clone")],  # remote-node inside a clone
        bundles=[Bundle("B", replicas=2, hosts=("node1",), ip_range_start=None, network=False, running=False)],
    ),
}


def write_fixtures(directory: str) -> List[str]:
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, spec in SCENARIOS.items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(build(spec))
        written.append(path)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--remotes", type=int, default=1000, help="number of remote nodes (default 1000)")
    ap.add_argument("--cluster-nodes", type=int, default=3)
    ap.add_argument("--timestamps", action="store_true", help="in_ccm/crmd as timestamps (feature set 3.18.0)")
    ap.add_argument("--write-fixtures", metavar="DIR", help="write the named SCENARIOS into DIR instead")
    ap.add_argument("-o", "--output", help="output file (default stdout)")
    args = ap.parse_args(argv)
    if args.write_fixtures:
        for path in write_fixtures(args.write_fixtures):
            print(path)
        return 0
    text = build(big(args.remotes, args.cluster_nodes, args.timestamps))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
