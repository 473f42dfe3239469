"""The hosts lab (``lab.py up --hosts``): every node is a real Debian host booted with systemd-nspawn.

Topology (docs: tests/lab/README.md, facts in the shared docs/lab-v2.md):

* ``node1``, ``node2``: cluster nodes (corosync + pacemaker as systemd units, two_node quorum, corosync over the lab
  LAN), fence_dummy for the cluster and remote nodes.
* ``remote1``, ``remote2``: remote hosts, ``pacemaker_remote.service`` enabled, joined by ``ocf:pacemaker:remote``.
* ``guest1``: a guest node: a container that the cluster boots and powers off through the resource ``vm-guest1``
  (``ocf:remotectl-lab:nspawn-guest``, ``remote-node=guest1``).
* ``spare1``, ``spare2``: fresh hosts: pacemaker-remote installed, not enabled, no key, default-deny nftables.

Every host has its own root (an overlayfs upper on the image of its Pacemaker version, see images.py), its own
network namespace ``rl2-<host>`` with eth0 = 127.0.2.N on the bridge of netns ``rl2-lan`` (127.0.2.1), sshd as a
systemd service with the lab's key for root, and nftables. The machine reaches 127.0.2.N:22 and :3121 through
socat forwarders into rl2-lan; the cluster reaches the remotes straight over the bridge. The supervisor process
(supervisor.py) keeps the containers running and restarts one that rebooted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

try:
    from . import images
    from .labutil import (LabError, LabTimeout, _alive, _bool_attrs, _proc_stat, _session_members, _tail, _terminate)
except ImportError:  # run as a script: tests/lab is sys.path[0]
    import images  # type: ignore[no-redef]
    from labutil import (LabError, LabTimeout, _alive, _bool_attrs, _proc_stat, _session_members,  # type: ignore
                         _tail, _terminate)

T = TypeVar("T")


# Several hosts labs can run side by side (e.g. two worktrees on one machine): REMOTECTL_LAB2_INSTANCE=N (0-9)
# gives instance N its own addresses 127.0.(2+N).x, namespaces, cgroups, roots and state directory.
INSTANCE = int(os.environ.get("REMOTECTL_LAB2_INSTANCE") or 0)
if not 0 <= INSTANCE <= 9:
    raise ValueError(f"REMOTECTL_LAB2_INSTANCE must be 0-9, not {INSTANCE}")
SUFFIX = f"-i{INSTANCE}" if INSTANCE else ""
PREFIX = f"rl2i{INSTANCE}" if INSTANCE else "rl2"  # netns and cgroup names
SUBNET = f"127.0.{2 + INSTANCE}"
# (names chosen so that no instance's paths are a prefix of another's)
DEFAULT_STATE_DIR = f"/tmp/remotectl-hostslab-i{INSTANCE}" if INSTANCE else "/tmp/remotectl-lab2"
HOSTS_DIR = Path(os.environ.get("REMOTECTL_LAB_HOSTS") or (f"/var/lib/remotectl-lab/i{INSTANCE}/hosts" if INSTANCE
                                                              else "/var/lib/remotectl-lab/hosts"))
LAN_NETNS = f"{PREFIX}-lan"
LAN_ADDRESS = f"{SUBNET}.1"


def instance_busy(n: int) -> bool:
    """Whether hosts-lab instance n has a running lab or leftovers on this machine (its lan netns exists)."""
    prefix = f"rl2i{n}" if n else "rl2"
    return Path(f"/run/netns/{prefix}-lan").exists()


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_INSTANCES_NEEDED = 1024


def _raise_inotify_instances() -> None:
    """Every host's systemd and journald take inotify instances, all counted against root (the hosts share the
    machine's users): Debian's default of 128 lasts for about one lab, so a second instance (CI runs one per
    Pacemaker version side by side) would fail to boot its hosts. Raised, never lowered."""
    with contextlib.suppress(OSError, ValueError):
        if int(INOTIFY_INSTANCES.read_text()) < INOTIFY_INSTANCES_NEEDED:
            INOTIFY_INSTANCES.write_text(f"{INOTIFY_INSTANCES_NEEDED}\n")


def _cgroup_dirs(name: str) -> List[Path]:
    return [Path("/sys/fs/cgroup") / h / f"{PREFIX}-{name}" for h in ("unified", "systemd")]

REMOTE_PORT = 3121
CTL_IN_HOST = "/run/remotectl-lab"
TAKEOVER_TEXT = "unexpected client takeover"
# notice and above, without libqb's harmless "failed to chown directory (/dev/shm/qb-...)" in containers
PCMK_NOTICE = r"(notice|warning|error|crit):(?!.*failed to chown directory)"
VARIANTS = ("2.1", "3.0", "mixed")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Host:
    name: str
    kind: str  # "member", "remote", "guest" or "spare"
    address: str
    resource: Optional[str] = None  # connection resource (remote) or container resource (guest)

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def machine(self) -> str:
        """The nspawn machine name (unique per instance; the hostname inside is always the host's name)."""
        return f"{self.name}{SUFFIX}"

    @property
    def ssh_port(self) -> int:
        return 22


HOSTS = (
    Host("node1", "member", f"{SUBNET}.11"),
    Host("node2", "member", f"{SUBNET}.12"),
    Host("remote1", "remote", f"{SUBNET}.21", "remote1"),
    Host("remote2", "remote", f"{SUBNET}.22", "remote2"),
    Host("guest1", "guest", f"{SUBNET}.31", "vm-guest1"),
    Host("spare1", "spare", f"{SUBNET}.41"),
    Host("spare2", "spare", f"{SUBNET}.42"),
)
REQUIRED = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "socat": "socat",
            "ip": "iproute2", "nsenter": "util-linux", "ssh": "openssh-client", "ssh-keygen": "openssh-client"}

GUEST_AGENT = r"""#!/bin/sh
# ocf:remotectl-lab:nspawn-guest -- the lab's guest "VM": asks the lab supervisor on the machine to boot or power
# off a container (through the ctl directory the lab bind-mounts at /run/remotectl-lab).
: "${OCF_RESKEY_host:=guest1}"
CTL=/run/remotectl-lab
me=$(uname -n)
field() { cut -d' ' -f"$2" "$CTL/$OCF_RESKEY_host.$1" 2>/dev/null; }
ask() { echo "$1 $me" > "$CTL/.$OCF_RESKEY_host.want.$me" && mv "$CTL/.$OCF_RESKEY_host.want.$me" "$CTL/$OCF_RESKEY_host.want"; }
case "$1" in
meta-data) cat <<'EOF'
<?xml version="1.0"?>
<resource-agent name="nspawn-guest" version="1.0">
  <version>1.1</version>
  <longdesc lang="en">A container of the remotectl lab, booted by the lab supervisor.</longdesc>
  <shortdesc lang="en">remotectl lab guest container</shortdesc>
  <parameters><parameter name="host" unique="1" required="1"><longdesc lang="en">lab host</longdesc>
    <shortdesc lang="en">lab host</shortdesc><content type="string"/></parameter></parameters>
  <actions><action name="start" timeout="60s"/><action name="stop" timeout="60s"/>
    <action name="monitor" timeout="20s" interval="10s"/><action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="5s"/></actions>
</resource-agent>
EOF
  exit 0;;
start) ask up; while [ "$(field state 1)" != running ]; do sleep 0.2; done; exit 0;;
stop) if [ "$(field want 1)" = up ] && [ "$(field want 2)" != "$me" ]; then exit 0; fi
  ask down; while [ "$(field state 1)" != stopped ]; do sleep 0.2; done; exit 0;;
monitor|status) [ "$(field want 1)" = up ] && [ "$(field want 2)" = "$me" ] || exit 7
  [ "$(field state 1)" = running ] && exit 0; exit 1;;
validate-all) exit 0;;
*) exit 3;;
esac
"""


def missing_prerequisites() -> List[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("the hosts lab needs root (systemd-nspawn, namespaces, overlay mounts)")
    for binary, package in REQUIRED.items():
        if not shutil.which(binary, path=PATH):
            problems.append(f"{binary} not found (package {package}; run tests/lab/install-deps.sh)")
    if not Path("/sys/fs/cgroup/unified").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        problems.append("no cgroup2 hierarchy (systemd-nspawn needs one)")
    return problems


def host_versions(variant: str) -> Dict[str, str]:
    """Pacemaker version per host. mixed: a 2.1.5 cluster (and remote1, guest1) with a 3.0.x remote2 and spare2."""
    if variant not in VARIANTS:
        raise LabError(f"--pacemaker must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if variant == "mixed":
        return {h.name: "3.0" if h.name in ("remote2", "spare2") else "2.1" for h in HOSTS}
    return {h.name: variant for h in HOSTS}


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30, input: Optional[str] = None,
         env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout,
                                env=env or {"PATH": PATH, "LC_ALL": "C.UTF-8", "HOME": "/root"},
                                stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{shlex.join(argv)} timed out after {timeout}s") from exc
    if check and result.returncode != 0:
        raise LabError(f"{shlex.join(argv)} failed with rc={result.returncode}: "
                       f"{(result.stderr or result.stdout).strip()[-2000:]}")
    return result


def _ssh_banner(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _mounted(path: Path) -> bool:
    return any(line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines())


class HostsLab:
    """The hosts lab: lifecycle (up/down/status/env), commands on hosts, and the cluster's own verdicts.

    Same read API as lab.Lab where it makes sense, so that tests can run against either."""

    kind = "hosts"

    def __init__(self, state_dir: Optional[os.PathLike] = None, variant: Optional[str] = None,
                 verbose: bool = False):
        self.state_dir = Path(state_dir or os.environ.get("REMOTECTL_LAB2_DIR") or DEFAULT_STATE_DIR)
        self.verbose = verbose
        self.hosts: Dict[str, Host] = {h.name: h for h in HOSTS}
        self.ctl_dir = self.state_dir / "ctl"
        self.log_dir = self.state_dir / "logs"
        self.ssh_dir = self.state_dir / "ssh"
        self.keys_dir = self.state_dir / "keys"
        self.ssh_config = self.ssh_dir / "ssh_config"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.identity = self.ssh_dir / "id_ed25519"
        self.authkey = self.keys_dir / "authkey"
        self.authkey_bytes = 4096
        self.remote_port = REMOTE_PORT
        self._config_file = self.state_dir / "lab.json"
        self._users_dir = self.state_dir / "users"
        requested = variant or os.environ.get("LAB_PACEMAKER")
        self.variant = requested or self._running_config().get("variant") or "2.1"
        host_versions(self.variant)  # validates

    # --- names ---------------------------------------------------------------------------------------------------

    def names(self, *kinds: str) -> List[str]:
        return [h.name for h in HOSTS if h.kind in kinds]

    @property
    def cluster_names(self) -> List[str]:
        return self.names("member")

    @property
    def remote_names(self) -> List[str]:
        return self.names("remote")

    @property
    def guest_names(self) -> List[str]:
        return self.names("guest")

    @property
    def spare_names(self) -> List[str]:
        return self.names("spare")

    @property
    def node_names(self) -> List[str]:
        """The Pacemaker nodes (not the spare hosts)."""
        return self.names("member", "remote", "guest")

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"no lab host {name!r} (hosts: {', '.join(self.hosts)})") from None

    node = host

    def host_root(self, name: str) -> Path:
        """The host's root filesystem as mounted on this machine (writes show up inside the running host)."""
        return HOSTS_DIR / self.host(name).name / "root"

    def node_etc_pacemaker(self, name: str) -> Path:
        return self.host_root(name) / "etc/pacemaker"

    def pacemaker_log(self, name: str = "node1") -> Path:
        return self.host_root(name) / "var/log/pacemaker/pacemaker.log"

    def remoted_log(self, name: str) -> Path:
        return self.pacemaker_log(name)

    @property
    def remotectl_ssh_options(self) -> List[str]:
        return ["--ssh-config", str(self.ssh_config), "--known-hosts", str(self.known_hosts),
                "--identity", str(self.identity)]

    def versions(self) -> Dict[str, str]:
        return host_versions(self.variant)

    # --- running commands ------------------------------------------------------------------------------------------

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command on the machine itself (not in a lab host)."""
        return _run(argv, **kwargs)

    def leader(self, name: str) -> Optional[int]:
        """The PID (on this machine) of the host's systemd, or None if the host is not running."""
        try:
            fields = (self.ctl_dir / f"{name}.state").read_text().split()
        except OSError:
            return None
        if len(fields) < 3 or fields[0] != "running":
            return None
        leader = int(fields[2])
        stat = _proc_stat(leader)
        return leader if stat and stat.ppid == int(fields[1]) else None

    def boots(self, name: str) -> int:
        try:
            return int((self.ctl_dir / f"{name}.state").read_text().split()[3])
        except (OSError, IndexError, ValueError):
            return 0

    def host_run(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command inside a running host (all its namespaces, its root), without SSH."""
        leader = self.leader(name)
        if not leader:
            raise LabError(f"host {name} is not running")
        return _run(["nsenter", "-t", str(leader), "-a", "--", *argv], **kwargs)

    netns_run = host_run

    def ssh(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        return _run(["ssh", "-F", str(self.ssh_config), name, shlex.join(argv)], **kwargs)

    def cluster_run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a Pacemaker tool on a running cluster node (the tools of the cluster's own version)."""
        for name in self.cluster_names:
            if self.leader(name):
                return self.host_run(name, argv, **kwargs)
        raise LabError("no cluster node is running")

    # --- the cluster's own verdicts --------------------------------------------------------------------------------

    def crm_mon_xml(self) -> ET.Element:
        return ET.fromstring(self.cluster_run(["crm_mon", "-1", "--output-as=xml"], timeout=20).stdout)

    def crm_mon_nodes(self) -> Dict[str, Dict[str, Any]]:
        return {node.get("name"): _bool_attrs(dict(node.attrib)) for node in self.crm_mon_xml().iter("node")
                if node.get("name") and node.get("type")}

    def crm_mon_resources(self) -> Dict[str, Dict[str, Any]]:
        resources = {}
        for rsc in self.crm_mon_xml().find("resources").iter("resource"):
            entry = _bool_attrs(dict(rsc.attrib))
            entry["nodes"] = [node.get("name") for node in rsc.findall("node")]
            resources[rsc.get("id")] = entry
        return resources

    def cibadmin_query(self, scope: Optional[str] = None) -> str:
        return self.cluster_run(["cibadmin", "--query"] + ([f"--scope={scope}"] if scope else []), timeout=20).stdout

    def fail_counts(self) -> Dict[str, Dict[str, int]]:
        status = ET.fromstring(self.cibadmin_query("status"))
        counts: Dict[str, Dict[str, int]] = {}
        for state in status.iter("node_state"):
            for nvpair in state.iter("nvpair"):
                name = nvpair.get("name", "")
                if name.startswith("fail-count-"):
                    resource = name[len("fail-count-"):].split("#", 1)[0]
                    value = nvpair.get("value", "0")
                    count = 1000000 if "INFINITY" in value else int(value)
                    per_node = counts.setdefault(state.get("uname") or state.get("id"), {})
                    per_node[resource] = per_node.get(resource, 0) + count
        return counts

    def log_mark(self) -> Dict[str, int]:
        """Positions in every cluster node's pacemaker.log (pass to takeover_count()/log_since())."""
        marks = {}
        for name in self.cluster_names:
            try:
                marks[name] = self.pacemaker_log(name).stat().st_size
            except FileNotFoundError:
                marks[name] = 0
        return marks

    def log_since(self, mark: Optional[Dict[str, int]] = None) -> str:
        text = []
        for name in self.cluster_names:
            with contextlib.suppress(FileNotFoundError):
                with open(self.pacemaker_log(name), "rb") as handle:
                    handle.seek((mark or {}).get(name, 0))
                    text.append(handle.read().decode(errors="replace"))
        return "".join(text)

    def takeover_count(self, since: Optional[Dict[str, int]] = None) -> int:
        return sum(TAKEOVER_TEXT in line for line in self.log_since(since).splitlines())

    # --- waiting ---------------------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25,
                 logs: Sequence[Path] = ()) -> T:
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except (LabError, OSError, ET.ParseError, subprocess.SubprocessError) as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        details = [f"timed out after {timeout:.0f}s waiting for {what}"]
        if last_error:
            details.append(f"last error: {last_error}")
        for log in list(logs) + [self.pacemaker_log(n) for n in self.cluster_names]:
            details.append(f"last notices of {log}:\n{_tail(log, 15, PCMK_NOTICE)}")  # noqa: E501
        raise LabTimeout("\n".join(details))

    def nodes_online(self, names: Optional[Sequence[str]] = None) -> bool:
        nodes = self.crm_mon_nodes()
        return all(nodes.get(name, {}).get("online") is True for name in names or self.node_names)

    def wait_online(self, names: Optional[Sequence[str]] = None, timeout: float = 90) -> None:
        names = list(names or self.node_names)
        self.wait_for(lambda: self.nodes_online(names), timeout, f"crm_mon to show {', '.join(names)} online")

    def wait_offline(self, name: str, timeout: float = 30) -> None:
        self.wait_for(lambda: self.crm_mon_nodes().get(name, {}).get("online") is False, timeout,
                      f"crm_mon to show {name} offline")

    def settle(self, timeout: float = 60) -> None:
        self.cluster_run(["crm_resource", "--wait", f"--timeout={int(timeout)}s"], timeout=timeout + 10)

    def wait_host(self, name: str, timeout: float = 60, since_boot: int = 0) -> None:
        """Wait until the host runs (a boot after since_boot) and its sshd answers through the forwarder."""
        host = self.host(name)
        self.wait_for(lambda: self.leader(name) and self.boots(name) > since_boot and _ssh_banner(host.address),
                      timeout, f"{name} to boot and answer on {host.address}:22",
                      logs=[self.log_dir / f"{name}.console.log"])

    # --- failure helpers used by tests (the same names as lab.Lab) -------------------------------------------------

    def stop_remoted(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """systemctl stop (SIGTERM) or a crash (SIGKILL: kill -9 of the daemon; systemd does not restart it: the
        unit has no Restart=always for SIGKILL... Debian's has Restart=on-failure, so the kill is followed by
        masking the restart with a runtime stop)."""
        if sig == signal.SIGKILL:
            self.host_run(name, ["systemctl", "kill", "--signal=SIGKILL", "pacemaker_remote"], timeout=timeout)
            self.host_run(name, ["systemctl", "stop", "pacemaker_remote"], timeout=timeout, check=False)
        else:
            self.host_run(name, ["systemctl", "stop", "pacemaker_remote"], timeout=timeout + 20)

    def start_remoted(self, name: str, reconnect: bool = True, timeout: float = 60) -> None:
        self.host_run(name, ["systemctl", "start", "pacemaker_remote"], timeout=30)
        self.wait_for(lambda: self._listening(name, REMOTE_PORT), 20, f"pacemaker-remoted of {name} to listen")
        if reconnect:
            self.reconnect(name, timeout)

    def reconnect(self, name: str, timeout: float = 60) -> None:
        self.clear_shutdown_request(name)
        self.cluster_run(["crm_resource", "--refresh", "--resource", name], timeout=30)
        self.wait_online([name], timeout)

    def clear_shutdown_request(self, name: str) -> None:
        """A remoted stopped with systemctl asks the cluster to shut its node down (transient attribute
        ``shutdown``). Pacemaker normally drops it with the node's attributes once the connection has stopped, but
        when the stop and a restart of the connection race (seen on 2.1.5), it stays, and the cluster never starts
        the connection again, however often it is refreshed."""
        self.cluster_run(["attrd_updater", "--delete", "--name", "shutdown", "--node", name], timeout=30,
                         check=False)

    def block_forwarder(self, name: str, port: int = REMOTE_PORT) -> None:
        """Cut the host off on port as a network failure would: its own firewall rejects new connections."""
        try:
            from . import faults
        except ImportError:
            import faults  # type: ignore[no-redef]
        faults.block_port(self, name, port)

    def unblock_forwarder(self, name: str, port: int = REMOTE_PORT) -> None:
        try:
            from . import faults
        except ImportError:
            import faults  # type: ignore[no-redef]
        faults.unblock_port(self, name, port)

    def adopt_cluster_key(self) -> None:
        """After a test rotated the key on the nodes: node1's key becomes the lab's key (keys/authkey)."""
        from_node = (self.node_etc_pacemaker("node1") / "authkey").read_bytes()
        try:
            from .labutil import _write_private
        except ImportError:
            from labutil import _write_private  # type: ignore[no-redef]
        _write_private(self.authkey, from_node, 0o600)

    def fault(self, name: str, *args: str) -> Dict[str, Any]:
        """Inject a fault (faults.FAULTS), recorded for clear_faults()."""
        try:
            from . import faults
        except ImportError:
            import faults  # type: ignore[no-redef]
        return faults.inject(self, name, *args)

    def clear_faults(self, name: str = "") -> None:
        try:
            from . import faults
        except ImportError:
            import faults  # type: ignore[no-redef]
        faults.clear(self, name)

    def restore_baseline(self, timeout: float = 90) -> None:
        """Clear injected faults, restart stopped remoteds, clear failures, wait until every node is online."""
        try:
            from . import faults
        except ImportError:
            import faults  # type: ignore[no-redef]
        faults.clear_all(self)
        for name in self.remote_names + self.guest_names:
            if self.leader(name):
                self.host_run(name, ["systemctl", "start", "pacemaker_remote"], timeout=30, check=False)
        # Only what failed, resource by resource: a cluster-wide --cleanup on 3.0 waits for every node's
        # controller, and one of a remote that is reconnecting can take longer than a minute to answer.
        for node, per_resource in self.fail_counts().items():
            for resource, count in per_resource.items():
                if count:
                    self.cluster_run(["crm_resource", "--cleanup", "--resource", resource, "--node", node],
                                     timeout=90, check=False)
        for name, node in self.crm_mon_nodes().items():
            if node.get("online") is not True and name in self.remote_names + self.guest_names:
                self.clear_shutdown_request(name)
                self.cluster_run(["crm_resource", "--refresh", "--resource", name], timeout=30, check=False)
        self.wait_online(timeout=timeout)
        self.settle(timeout)

    def _listening(self, name: str, port: int) -> bool:
        out = self.host_run(name, ["ss", "-Hltn", f"sport = :{port}"], check=False).stdout
        return bool(out.strip())

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def _running_config(self) -> Dict[str, Any]:
        try:
            return json.loads(self._config_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def supervisor_pid(self) -> Optional[int]:
        config = self._running_config()
        proc = config.get("supervisor")
        return proc[0] if proc and _alive(*proc) else None

    def is_up(self) -> bool:
        return self.supervisor_pid() is not None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another lab process holding {self.state_dir}/.lock", file=sys.stderr)
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _progress(self, started: float, message: str) -> None:
        if self.verbose:
            print(f"lab: {time.monotonic() - started:5.1f}s {message}", file=sys.stderr, flush=True)

    def up(self, timeout: float = 120) -> Dict[str, Any]:
        with self._locked():
            self._up_locked(timeout, "hand")
            self._write_config(started_by="hand")
        return self.status()

    def acquire(self, timeout: float = 120) -> None:
        with self._locked():
            self._up_locked(timeout, "session")
            self._users_dir.mkdir(exist_ok=True)
            (self._users_dir / str(os.getpid())).write_text(f"{_proc_stat(os.getpid()).start}\n")

    def release(self) -> None:
        with self._locked():
            (self._users_dir / str(os.getpid())).unlink(missing_ok=True)
            if self._running_config().get("started_by") == "session" and not self.users():
                self._teardown()

    def users(self) -> List[int]:
        live = []
        for user in self._users_dir.iterdir() if self._users_dir.is_dir() else ():
            with contextlib.suppress(FileNotFoundError, ValueError):
                if _alive(int(user.name), int(user.read_text())):
                    live.append(int(user.name))
                else:
                    user.unlink()
        return sorted(live)

    def down(self, force: bool = True) -> None:
        with self._locked():
            if not force and self.users():
                raise LabError(f"in use by the test sessions with pids {self.users()}; use --force to stop it anyway")
            self._teardown()

    def _write_config(self, **changes: Any) -> None:
        config = {**self._running_config(), **changes}
        self._config_file.write_text(json.dumps(config) + "\n")

    def _up_locked(self, timeout: float, started_by: str) -> None:
        problems = missing_prerequisites()
        if problems:
            raise LabError("cannot start the hosts lab: " + "; ".join(problems))
        if self.is_up():
            running = self._running_config().get("variant")
            if running != self.variant:
                raise LabError(f"the running hosts lab is Pacemaker {running}, not {self.variant}; run 'down' first")
            return
        if self._has_leftovers():
            self._teardown()
        try:
            self._start(timeout, started_by)
        except BaseException:
            with contextlib.suppress(LabError):
                self._teardown()
            raise

    def _start(self, timeout: float, started_by: str) -> None:
        try:
            from . import hostsetup as setup
        except ImportError:
            import hostsetup as setup  # type: ignore[no-redef]
        started = time.monotonic()
        for version in sorted(set(self.versions().values())):
            images.ensure(version)
        self._progress(started, "images ready")
        _raise_inotify_instances()
        setup.prepare(self)
        self._progress(started, "hosts prepared (overlays, keys, network)")
        supervisor = subprocess.Popen([sys.executable, str(HERE / "supervisor.py"), str(self.state_dir)],
                                      stdin=subprocess.DEVNULL, stdout=open(self.log_dir / "supervisor.log", "ab"),
                                      stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
        stat = _proc_stat(supervisor.pid)
        self._write_config(variant=self.variant, started_by=started_by, supervisor=[supervisor.pid, stat.start],
                           versions=self.versions())
        for host in HOSTS:
            if host.kind != "guest":  # the guest is booted by the cluster
                (self.ctl_dir / f"{host.name}.want").write_text("up\n")
        for host in HOSTS:
            if host.kind != "guest":
                self.wait_host(host.name, timeout=60)
        self._progress(started, "hosts booted, sshd answering")
        remaining = lambda: max(timeout - (time.monotonic() - started), 10)  # noqa: E731
        self.wait_online(timeout=remaining())
        self._progress(started, f"crm_mon shows {', '.join(self.node_names)} online")
        self.settle(timeout=remaining())
        self._write_config(pacemaker=self.pacemaker_versions())
        self._progress(started, "cluster settled")

    def pacemaker_versions(self) -> Dict[str, str]:
        """Pacemaker's version on each host, from the package in its root."""
        found = {}
        for host in HOSTS:
            package = "pacemaker" if host.kind == "member" else "pacemaker-remote"
            status = self.host_root(host.name) / "var/lib/dpkg/status"
            with contextlib.suppress(OSError):
                text = status.read_text()
                match = re.search(rf"^Package: {package}\n(?:.+\n)*?Version: (\S+)", text, re.M)
                if match:
                    found[host.name] = match.group(1)
        return found

    def _has_leftovers(self) -> bool:
        return bool(self._netns_present() or self._mounts() or (self.ctl_dir.is_dir() and any(self.ctl_dir.iterdir())))

    def _netns_present(self) -> List[str]:
        listing = _run(["ip", "netns", "list"], check=False).stdout
        names = {h.netns for h in HOSTS} | {LAN_NETNS}
        return [line.split()[0] for line in listing.splitlines() if line.strip() and line.split()[0] in names]

    def _mounts(self) -> List[str]:
        return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                if line.split()[1].startswith(str(HOSTS_DIR) + "/")]

    def _teardown(self) -> None:
        errors: List[str] = []
        config = self._running_config()
        proc = config.get("supervisor")
        if proc:
            pid, start = proc
            if _alive(pid, start):
                self._stop_cluster()
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 60
                while _alive(pid, start) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _alive(pid, start):
                    errors.append(f"supervisor {pid} did not stop in 60s; killed")
            _terminate([(pid, start)] + _session_members(pid, start), 5)
        # Anything still in a lab netns (a container whose supervisor was killed) goes too.
        try:
            from . import supervisor as sup
        except ImportError:
            import supervisor as sup  # type: ignore[no-redef]
        for netns in self._netns_present():
            pids = [int(p) for p in _run(["ip", "netns", "pids", netns], check=False).stdout.split()]
            procs = [(p, s.start) for p in pids for s in [_proc_stat(p)] if s]
            if procs:
                _terminate(procs, 10)
        for host in HOSTS:
            sup.remove_cgroups(f"{PREFIX}-{host.name}")
            with contextlib.suppress(OSError):
                os.rmdir(f"/run/systemd/nspawn/propagate/{host.machine}")
        for mount in sorted(self._mounts(), key=len, reverse=True):
            result = _run(["umount", mount], check=False)
            if result.returncode != 0:
                errors.append(f"umount {mount}: {result.stderr.strip()}")
        for netns in self._netns_present():
            result = _run(["ip", "netns", "delete", netns], check=False)
            if result.returncode != 0:
                errors.append(f"ip netns delete {netns}: {result.stderr.strip()}")
        if self.ctl_dir.is_dir():
            shutil.rmtree(self.ctl_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self._config_file.unlink()
        if errors:
            raise LabError("teardown incomplete:\n  " + "\n  ".join(errors))

    def _stop_cluster(self, timeout: float = 60) -> None:
        """Stop Pacemaker on the cluster nodes first (in parallel) while the remotes still run: powering everything
        off at once leaves pacemaker waiting for connections that are gone (30 s and more)."""
        stops = []
        for name in self.cluster_names:
            leader = self.leader(name)
            if leader:
                stops.append(subprocess.Popen(["nsenter", "-t", str(leader), "-a", "--", "systemctl", "stop",
                                               "pacemaker"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, env={"PATH": PATH}))
        deadline = time.monotonic() + timeout
        for stop in stops:
            try:
                stop.wait(max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                stop.kill()
                stop.wait()

    def leftovers(self) -> List[str]:
        """What a lab left on the machine: processes, namespaces, mounts, cgroups (empty after a clean down)."""
        found = [f"netns {n}" for n in self._netns_present()] + [f"mount {m}" for m in self._mounts()]
        for name in self.hosts:
            found += [f"cgroup {d}" for d in _cgroup_dirs(name) if d.exists()]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
                    cmdline = " ".join(argv)
                    if any(a.startswith(f"{HOSTS_DIR}/") for a in argv) or (
                            any(a.endswith("supervisor.py") for a in argv) and str(self.state_dir) in argv):
                        found.append(f"process {entry}: {cmdline[:100]}")
        return found

    def status(self) -> Dict[str, Any]:
        config = self._running_config()
        report: Dict[str, Any] = {
            "kind": "hosts",
            "up": self.is_up(),
            "variant": config.get("variant", self.variant),
            "state_dir": str(self.state_dir),
            "supervisor": self.supervisor_pid(),
            "pacemaker": config.get("pacemaker", {}),
            "hosts": {h.name: {"kind": h.kind, "address": h.address, "running": bool(self.leader(h.name)),
                               "boots": self.boots(h.name)} for h in HOSTS},
            "netns": self._netns_present(),
            "mounts": self._mounts(),
            "users": self.users(),
        }
        if not report["up"]:
            report["leftovers"] = self.leftovers()
        if report["up"]:
            try:
                report["nodes"] = self.crm_mon_nodes()
            except (LabError, ET.ParseError) as exc:
                report["nodes_error"] = str(exc)
        return report

    def env(self) -> Dict[str, str]:
        """The variables that let any script drive the running lab (names kept stable: README)."""
        versions = self._running_config().get("pacemaker") or self.pacemaker_versions()
        cluster_version = versions.get("node1", "")
        return {
            "LAB_SSH_CONFIG": str(self.ssh_config),
            "LAB_KNOWN_HOSTS": str(self.known_hosts),
            "LAB_IDENTITY": str(self.identity),
            "LAB_CLUSTER_NODES": " ".join(self.cluster_names),
            "LAB_REMOTE_NODES": " ".join(self.remote_names),
            "LAB_GUEST_NODES": " ".join(self.guest_names),
            "LAB_SPARE_HOSTS": " ".join(self.spare_names),
            "LAB_PACEMAKER_VERSION": cluster_version.split("-")[0],
            "LAB_PACEMAKER_VARIANT": self.variant,
            "LAB_AUTHKEY": str(self.authkey),
            "LAB_FAULT": (f"env REMOTECTL_LAB2_INSTANCE={INSTANCE} " if INSTANCE else "")
            + f"{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'lab.py'))} fault",
            "LAB_INSTANCE": str(INSTANCE),
        }
