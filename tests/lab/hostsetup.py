"""Preparing the hosts lab before its containers boot: state directory, keys, SSH setup, the lab LAN and one
overlay root per host with its own identity and configuration (hosts.py uses it; see its docstring)."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional

try:
    from . import images
    from .hosts import CTL_IN_HOST, GUEST_AGENT, HOSTS, HOSTS_DIR, LAN_ADDRESS, LAN_NETNS, REMOTE_PORT, Host, _run
    from .labutil import LabError, _write_private
except ImportError:
    import images  # type: ignore[no-redef]
    from hosts import (CTL_IN_HOST, GUEST_AGENT, HOSTS, HOSTS_DIR, LAN_ADDRESS, LAN_NETNS,  # type: ignore
                       REMOTE_PORT, Host, _run)
    from labutil import LabError, _write_private  # type: ignore[no-redef]

CLUSTER_NAME = "remotectl-lab2"

# Remote, guest and cluster hosts: a firewall that lets everything in, with an empty table the faults use.
OPEN_FIREWALL = """#!/usr/sbin/nft -f
flush ruleset
table inet filter {
    chain input { type filter hook input priority filter; policy accept; }
    chain forward { type filter hook forward priority filter; policy accept; }
    chain output { type filter hook output priority filter; policy accept; }
}
"""
# Spare hosts: default deny, only SSH in (what `node add` must open for 3121).
DENY_FIREWALL = """#!/usr/sbin/nft -f
flush ruleset
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        iif lo accept
        ct state established,related accept
        tcp dport 22 accept
    }
    chain forward { type filter hook forward priority filter; policy drop; }
    chain output { type filter hook output priority filter; policy accept; }
}
"""
SSHD_CONFIG = """# written by remotectl's tests/lab (hosts lab)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
"""


def _ids(root: Path, user: str, group: str) -> tuple:
    uid = gid = None
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.split(":")[0] == user:
            uid = int(line.split(":")[2])
    for line in (root / "etc/group").read_text().splitlines():
        if line.split(":")[0] == group:
            gid = int(line.split(":")[2])
    if uid is None or gid is None:
        raise LabError(f"{user}/{group} missing in {root}")
    return uid, gid


def _enable(root: Path, unit: str, target: str = "multi-user.target") -> None:
    for lib in ("usr/lib/systemd/system", "lib/systemd/system"):
        if (root / lib / unit).exists():
            wants = root / "etc/systemd/system" / f"{target}.wants"
            wants.mkdir(parents=True, exist_ok=True)
            link = wants / unit
            if not link.is_symlink():
                link.symlink_to(f"/{lib}/{unit}")
            return
    raise LabError(f"unit {unit} not found in {root}")


def _reset_state_dir(lab) -> None:
    for entry in lab.state_dir.iterdir() if lab.state_dir.is_dir() else ():
        if entry.name != ".lock" and entry.name != "users":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for directory, mode in ((lab.ctl_dir, 0o755), (lab.log_dir, 0o755), (lab.ssh_dir, 0o700),
                            (lab.keys_dir, 0o700)):
        directory.mkdir(mode=mode, parents=True)


def _write_ssh(lab) -> Dict[str, Path]:
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    _run(keygen + ["-C", "remotectl-lab2-client", "-f", str(lab.identity)])
    known, config, host_keys = [], [], {}
    for host in HOSTS:
        key = lab.ssh_dir / f"host_{host.name}"
        _run(keygen + ["-C", f"root@{host.name}", "-f", str(key)])
        host_keys[host.name] = key
        public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        known.append(f"{host.address},{host.name} {public}")
        config.append(f"Host {host.name}\n    HostName {host.address}\n")
    config.append("Host *\n    User root\n"
                  f'    IdentityFile "{lab.identity}"\n    IdentitiesOnly yes\n'
                  f'    UserKnownHostsFile "{lab.known_hosts}"\n    GlobalKnownHostsFile /dev/null\n'
                  "    StrictHostKeyChecking yes\n    BatchMode yes\n    LogLevel ERROR\n    ConnectTimeout 10\n")
    lab.known_hosts.write_text("\n".join(known) + "\n")
    lab.ssh_config.write_text("\n".join(config))
    return host_keys


def _lan_up() -> None:
    _run(["ip", "netns", "add", LAN_NETNS])
    ns = ["ip", "-n", LAN_NETNS]
    _run(ns + ["link", "set", "lo", "up"])
    _run(["ip", "netns", "exec", LAN_NETNS, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1",
          "net.ipv4.conf.default.route_localnet=1"])
    _run(ns + ["link", "add", "br0", "type", "bridge"])
    _run(ns + ["link", "set", "br0", "up"])
    _run(ns + ["addr", "add", f"{LAN_ADDRESS}/24", "dev", "br0"])
    _run(ns + ["route", "add", "127.0.2.0/24", "dev", "br0", "table", "local", "src", LAN_ADDRESS])


def _host_net_up(host: Host) -> None:
    """netns rl2-HOST with lo and eth0 = ADDRESS/24 on the LAN bridge (routes in the netns only)."""
    _run(["ip", "netns", "add", host.netns])
    ns = ["ip", "-n", host.netns]
    _run(ns + ["link", "set", "lo", "up"])
    _run(["ip", "netns", "exec", host.netns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1",
          "net.ipv4.conf.default.route_localnet=1"])
    veth = f"vl-{host.name}"
    _run(["ip", "link", "add", veth, "netns", LAN_NETNS, "type", "veth", "peer", "name", "eth0", "netns",
          host.netns])
    _run(["ip", "-n", LAN_NETNS, "link", "set", veth, "master", "br0", "up"])
    _run(ns + ["link", "set", "eth0", "up"])
    _run(ns + ["addr", "add", f"{host.address}/24", "dev", "eth0"])
    _run(ns + ["route", "add", "127.0.2.0/24", "dev", "eth0", "table", "local", "src", host.address])


def _mount_root(host: Host, version: str) -> Path:
    top = HOSTS_DIR / host.name
    if top.exists():
        shutil.rmtree(top)  # a fresh host on every up: the upper is a few MB
    upper, work, root = top / "upper", top / "work", top / "root"
    for d in (upper, work, root):
        d.mkdir(parents=True)
    lower = [images.base_root(version)]
    if host.kind == "member":
        lower.insert(0, images.cluster_layer(version))
    _run(["mount", "-t", "overlay", "overlay", "-o",
          f"lowerdir={':'.join(map(str, lower))},upperdir={upper},workdir={work}", str(root)])
    return root


def corosync_conf(members: List[Host]) -> str:
    nodes = "".join(f"    node {{\n        name: {h.name}\n        nodeid: {i}\n        ring0_addr: {h.address}\n    }}\n"
                    for i, h in enumerate(members, 1))
    return (f"totem {{\n    version: 2\n    cluster_name: {CLUSTER_NAME}\n    transport: knet\n"
            "    crypto_cipher: none\n    crypto_hash: none\n    token: 3000\n}\n"
            "logging {\n    fileline: off\n    to_stderr: no\n    to_logfile: yes\n"
            "    logfile: /var/log/corosync/corosync.log\n    to_syslog: yes\n    timestamp: on\n}\n"
            "quorum {\n    provider: corosync_votequorum\n    two_node: 1\n}\n"
            f"nodelist {{\n{nodes}}}\n")


def initial_cib(root: Path) -> bytes:
    """The initial CIB, from cibadmin --empty of the cluster's own version (a newer feature set would be refused)."""
    cib = ET.fromstring(_run(["chroot", str(root), "cibadmin", "--empty"]).stdout)
    cib.set("epoch", "10")
    config = cib.find("configuration")

    def nvpairs(parent: ET.Element, tag: str, owner: str, pairs: Dict[str, str]) -> None:
        block = ET.SubElement(parent, tag, id=f"{owner}-{tag}")
        for name, value in pairs.items():
            ET.SubElement(block, "nvpair", id=f"{owner}-{tag}-{name}", name=name, value=value)

    def primitive(rsc_id: str, cls: str, rsc_type: str, provider: Optional[str] = None,
                  params: Optional[Dict[str, str]] = None, meta: Optional[Dict[str, str]] = None,
                  monitor: str = "10s", start_timeout: Optional[str] = None) -> None:
        attrs = {"id": rsc_id, "class": cls, "type": rsc_type, **({"provider": provider} if provider else {})}
        rsc = ET.SubElement(config.find("resources"), "primitive", attrs)
        if params:
            nvpairs(rsc, "instance_attributes", rsc_id, params)
        if meta:
            nvpairs(rsc, "meta_attributes", rsc_id, meta)
        ops = ET.SubElement(rsc, "operations")
        ET.SubElement(ops, "op", id=f"{rsc_id}-monitor-interval-{monitor}", name="monitor", interval=monitor)
        if start_timeout:
            ET.SubElement(ops, "op", id=f"{rsc_id}-start", name="start", interval="0s", timeout=start_timeout)
            ET.SubElement(ops, "op", id=f"{rsc_id}-stop", name="stop", interval="0s", timeout=start_timeout)

    properties = ET.SubElement(config.find("crm_config"), "cluster_property_set", id="cib-bootstrap-options")
    for name, value in (("stonith-enabled", "true"), ("dc-deadtime", "5s")):
        ET.SubElement(properties, "nvpair", id=f"cib-bootstrap-options-{name}", name=name, value=value)
    # Stickiness: with two cluster nodes and none, the scheduler rebalances (moves the guest's container, which
    # reboots the guest) whenever a connection comes or goes; a test must see such moves only when it asks.
    defaults = config.find("rsc_defaults")
    if defaults is None:
        defaults = ET.SubElement(config, "rsc_defaults")
    nvpairs(defaults, "meta_attributes", "rsc-options", {"resource-stickiness": "100"})
    fenced = " ".join(h.name for h in HOSTS if h.kind in ("member", "remote"))
    primitive("fence-dummy", "stonith", "fence_dummy", monitor="60s",
              params={"pcmk_host_list": fenced, "status_file": "/var/lib/pacemaker/fence_dummy.status"})
    for host in HOSTS:
        if host.kind == "remote":
            primitive(host.resource, "ocf", "remote", "pacemaker",
                      params={"server": host.address, "port": str(REMOTE_PORT), "reconnect_interval": "15s"})
        elif host.kind == "guest":
            primitive(host.resource, "ocf", "nspawn-guest", "remotectl-lab", params={"host": host.name},
                      meta={"remote-node": host.name, "remote-addr": host.address, "remote-port": str(REMOTE_PORT)},
                      start_timeout="60s")
    primitive("dummy1", "ocf", "Dummy", "pacemaker")
    return ET.tostring(cib)


def _configure_host(lab, host: Host, root: Path, host_key: Path, key: bytes, cib: Optional[bytes]) -> None:
    etc = root / "etc"
    (etc / "hostname").write_text(f"{host.name}\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n" + "".join(f"{h.address}\t{h.name}\n" for h in HOSTS))
    (etc / "machine-id").write_text(os.urandom(16).hex() + "\n")
    _write_private(etc / "ssh/ssh_host_ed25519_key", host_key.read_bytes(), 0o600)
    shutil.copyfile(f"{host_key}.pub", etc / "ssh/ssh_host_ed25519_key.pub")
    (etc / "ssh/sshd_config.d").mkdir(exist_ok=True)
    (etc / "ssh/sshd_config.d/remotectl-lab.conf").write_text(SSHD_CONFIG)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write_private(ssh_dir / "authorized_keys", Path(f"{lab.identity}.pub").read_bytes(), 0o600)
    (etc / "nftables.conf").write_text(DENY_FIREWALL if host.kind == "spare" else OPEN_FIREWALL)
    _enable(root, "nftables.service", "sysinit.target")
    # Logs to files the machine can read through the mounted root (takeover counts, failure messages).
    journald = etc / "systemd/journald.conf.d"
    journald.mkdir(parents=True, exist_ok=True)
    (journald / "remotectl-lab.conf").write_text("[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n")
    if host.kind == "spare":
        return
    uid, gid = _ids(root, "hacluster", "haclient")
    (etc / "pacemaker").mkdir(exist_ok=True)
    _write_private(etc / "pacemaker/authkey", key, 0o640, 0, gid)
    if host.kind in ("remote", "guest"):
        _enable(root, "pacemaker_remote.service")
        return
    (etc / "corosync/corosync.conf").write_text(corosync_conf([h for h in HOSTS if h.kind == "member"]))
    cib_dir = root / "var/lib/pacemaker/cib"
    cib_dir.mkdir(parents=True, exist_ok=True)
    for old in cib_dir.iterdir():
        old.unlink()
    _write_private(cib_dir / "cib.xml", cib, 0o600, uid, gid)
    agent_dir = root / "usr/lib/ocf/resource.d/remotectl-lab"
    agent_dir.mkdir(parents=True, exist_ok=True)
    (agent_dir / "nspawn-guest").write_text(GUEST_AGENT)
    (agent_dir / "nspawn-guest").chmod(0o755)


def prepare(lab) -> None:
    """Everything before the first boot: fresh state, keys, SSH, LAN, roots; writes hosts.json for the supervisor."""
    _reset_state_dir(lab)
    key = os.urandom(lab.authkey_bytes)
    _write_private(lab.authkey, key, 0o600)
    host_keys = _write_ssh(lab)
    _lan_up()
    versions = lab.versions()
    cibs: Dict[str, bytes] = {}
    spec = []
    for host in HOSTS:
        _host_net_up(host)
        root = _mount_root(host, versions[host.name])
        cib = None
        if host.kind == "member":
            cib = cibs.setdefault(versions[host.name], initial_cib(root))
        _configure_host(lab, host, root, host_keys[host.name], key, cib)
        binds = [f"{lab.ctl_dir}:{CTL_IN_HOST}"] if host.kind == "member" else []
        spec.append({"name": host.name, "root": str(root), "netns": host.netns, "address": host.address,
                     "binds": binds})
        (lab.ctl_dir / f"{host.name}.want").write_text("down\n")
    (lab.state_dir / "hosts.json").write_text(json.dumps({"lan_netns": LAN_NETNS, "hosts": spec}, indent=1) + "\n")
