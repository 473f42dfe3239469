#!/usr/bin/env python3
"""A real Pacemaker cluster with remote and guest nodes on one Debian 12 machine, for remotectl's tests.

Topology (see docs/lab.md in the shared docs for why each piece is needed):

* ``node1``: corosync + pacemakerd in the host network namespace, ring on 127.0.0.1, sshd on 127.0.0.1:2222.
* ``remote1``/``remote2``: a pacemaker-remoted and an sshd each in netns ``rctl-remote1``/``rctl-remote2``,
  reached as 127.0.0.2/127.0.0.3 ports 3121 and 22 through host-side socat forwarders, and joined with
  ``ocf:pacemaker:remote`` resources.
* ``guest1``: the same behind 127.0.0.4 (netns ``rctl-guest1``), joined as a guest node of the
  ``ocf:pacemaker:Dummy`` resource ``vm-guest1`` (``remote-node`` meta attribute).
* ``fence-dummy`` (fence_dummy) and ``dummy1`` (Dummy) resources.

Each remote/guest "host" gets its own /etc/pacemaker: ``ip netns exec NS`` bind-mounts every entry of /etc/netns/NS
over /etc, and remoted, sshd and every SSH session are started through it. Resource agents keep their state files in
a per-node ``HA_VARRUN`` so that a Dummy running on one node is not also "found" by probes on the others.

Everything the lab starts is recorded in pid files under the state directory (default /tmp/remotectl-lab,
env REMOTECTL_LAB_DIR), so ``down`` works from any process. Host files the lab must change are backed up there first.

Usage: ``python tests/lab/lab.py up|down|status`` (root). Standard library only, Python 3.9+.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

try:
    from .labutil import (LabError, LabTimeout, _alive, _bool_attrs, _children,
                          _descendants, _listening, _proc_stat, _remove_ipc_leftovers, _session_members,
                          _signal, _ssh_banner, _tail, _terminate, _wait_gone, _write_private)
except ImportError:  # run as a script: tests/lab is sys.path[0]
    from labutil import (LabError, LabTimeout, _alive, _bool_attrs, _children,  # type: ignore
                         _descendants, _listening, _proc_stat, _remove_ipc_leftovers, _session_members,
                         _signal, _ssh_banner, _tail, _terminate, _wait_gone, _write_private)

T = TypeVar("T")

DEFAULT_STATE_DIR = "/tmp/remotectl-lab"
DEFAULT_AUTHKEY_BYTES = 4096
AUTHKEY_VARIANTS = (4096, 256)
REMOTE_PORT = 3121
REMOTED = "/usr/local/sbin/pacemaker-remoted"
SSHD = "/usr/sbin/sshd"
CLUSTER_NAME = "remotectl-lab"
TAKEOVER_TEXT = "unexpected client takeover"
PCMK_NOTICE = r"\t(notice|warning|error|crit):"

HOST_ETC_PACEMAKER = Path("/etc/pacemaker")
HOST_AUTHKEY = HOST_ETC_PACEMAKER / "authkey"
HOST_COROSYNC_CONF = Path("/etc/corosync/corosync.conf")
NETNS_ETC = Path("/etc/netns")
CIB_DIR = Path("/var/lib/pacemaker/cib")
# Directories where the daemons may leave files of their own; the lab moves what appeared there into its state dir.
PACEMAKER_STATE_DIRS = tuple(Path("/var/lib/pacemaker") / d for d in ("pengine", "blackbox", "cores")) + (
    Path("/var/lib/corosync"),
)
PRIVSEP_DIR = Path("/run/sshd")

DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_BINARIES = {
    "corosync": "corosync",
    "pacemakerd": "pacemaker",
    "pacemaker-remoted": "pacemaker-remote (extracted by tests/lab/install-deps.sh)",
    "sshd": "openssh-server",
    "socat": "socat",
    "ip": "iproute2",
    "cibadmin": "pacemaker-cli-utils",
    "crm_mon": "pacemaker-cli-utils",
    "crm_resource": "pacemaker-cli-utils",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "fence_dummy": "fence-agents",
}
BINARY_PATHS = {"pacemaker-remoted": REMOTED, "sshd": SSHD}


@dataclass(frozen=True)
class LabNode:
    """One Pacemaker node of the lab, as remotectl and the tests see it."""

    name: str
    kind: str  # "member", "remote" or "guest"
    address: str  # where its sshd (and for remote/guest its remoted) is reached from the host
    ssh_port: int
    netns: Optional[str]  # None: the host namespace (node1)
    resource: Optional[str]  # connection resource (remote) or container resource (guest)


NODES = (
    LabNode("node1", "member", "127.0.0.1", 2222, None, None),
    LabNode("remote1", "remote", "127.0.0.2", 22, "rctl-remote1", "remote1"),
    LabNode("remote2", "remote", "127.0.0.3", 22, "rctl-remote2", "remote2"),
    LabNode("guest1", "guest", "127.0.0.4", 22, "rctl-guest1", "vm-guest1"),
)


def missing_prerequisites() -> List[str]:
    """What keeps the lab from running on this machine, as human-readable reasons (empty: all present)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (network namespaces, corosync, /etc/pacemaker)")
    for binary, package in REQUIRED_BINARIES.items():
        path = BINARY_PATHS.get(binary) or shutil.which(binary, path=DAEMON_PATH)
        if not path or not os.access(path, os.X_OK):
            problems.append(f"{binary} not found (package {package}; run tests/lab/install-deps.sh)")
    return problems


class Lab:
    """The lab cluster: paths, names, lifecycle (up/down/status) and read-only views of the cluster's own verdicts."""

    def __init__(self, state_dir: Optional[os.PathLike] = None, authkey_bytes: Optional[int] = None,
                 verbose: bool = False):
        self.state_dir = Path(state_dir or os.environ.get("REMOTECTL_LAB_DIR") or DEFAULT_STATE_DIR)
        self.verbose = verbose
        self.nodes: Dict[str, LabNode] = {node.name: node for node in NODES}
        self.cluster_name = CLUSTER_NAME
        self.remote_port = REMOTE_PORT
        self.run_dir = self.state_dir / "run"
        self.log_dir = self.state_dir / "logs"
        self.ssh_dir = self.state_dir / "ssh"
        self.keys_dir = self.state_dir / "keys"
        self.backup_dir = self.state_dir / "backup"
        self.archive_dir = self.state_dir / "host-state"
        self.ssh_config = self.ssh_dir / "ssh_config"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.identity = self.ssh_dir / "id_ed25519"
        self.authorized_keys = self.ssh_dir / "authorized_keys"
        self.authkeys = {size: self.keys_dir / f"authkey-{size}" for size in AUTHKEY_VARIANTS}
        self.pacemaker_log = self.log_dir / "pacemaker.log"
        self.corosync_log = self.log_dir / "corosync.log"
        self._config_file = self.state_dir / "lab.json"
        self._users_dir = self.state_dir / "users"
        self._manifest_file = self.backup_dir / "manifest.json"
        # An explicit size wins; otherwise a running lab is taken as it is, and a new one gets the default.
        requested = authkey_bytes or os.environ.get("REMOTECTL_LAB_AUTHKEY_BYTES")
        self.authkey_bytes = int(requested or (self.is_up() and self._running_config().get("authkey_bytes"))
                                 or DEFAULT_AUTHKEY_BYTES)
        if self.authkey_bytes not in AUTHKEY_VARIANTS:
            raise LabError(f"authkey size must be one of {AUTHKEY_VARIANTS}, not {self.authkey_bytes}")

    # --- names and paths -------------------------------------------------------------------------------------------

    @property
    def node_names(self) -> List[str]:
        return list(self.nodes)

    @property
    def remote_names(self) -> List[str]:
        return [n.name for n in NODES if n.kind == "remote"]

    @property
    def guest_names(self) -> List[str]:
        return [n.name for n in NODES if n.kind == "guest"]

    @property
    def authkey(self) -> Path:
        """The key installed on every node of the running lab."""
        return self.authkeys[self.authkey_bytes]

    def node(self, name: str) -> LabNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise LabError(f"no lab node {name!r} (nodes: {', '.join(self.nodes)})") from None

    def node_etc_pacemaker(self, name: str) -> Path:
        """The host directory that the node sees as /etc/pacemaker."""
        node = self.node(name)
        return NETNS_ETC / node.netns / "pacemaker" if node.netns else HOST_ETC_PACEMAKER

    def node_run_dir(self, name: str) -> Path:
        """The node's HA_VARRUN: where resource agents (Dummy) keep their state files."""
        return self.state_dir / "nodes" / name / "run"

    def remoted_log(self, name: str) -> Path:
        return self.log_dir / f"remoted-{name}.log"

    @property
    def remotectl_ssh_options(self) -> List[str]:
        """remotectl's options for reaching the lab's nodes (by name or address) through the lab's SSH setup."""
        return ["--ssh-config", str(self.ssh_config), "--known-hosts", str(self.known_hosts),
                "--identity", str(self.identity)]

    # --- running commands ------------------------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 30,
            input: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run a command on the host (node1's view) and capture its text output."""
        try:
            result = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout,
                                    env=self._daemon_env())
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{shlex.join(argv)} timed out after {timeout}s") from exc
        if check and result.returncode != 0:
            raise LabError(f"{shlex.join(argv)} failed with rc={result.returncode}: "
                           f"{(result.stderr or result.stdout).strip()}")
        return result

    def netns_run(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command as if on the node: in its netns with its own /etc/pacemaker (node1: on the host)."""
        node = self.node(name)
        prefix = ["ip", "netns", "exec", node.netns] if node.netns else []
        return self.run(prefix + list(argv), **kwargs)

    def ssh(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command on the node over SSH, using only the lab's ssh_config (host key checking on)."""
        return self.run(["ssh", "-F", str(self.ssh_config), name, shlex.join(argv)], **kwargs)

    # --- the cluster's own verdicts --------------------------------------------------------------------------------

    def crm_mon_xml(self) -> ET.Element:
        return ET.fromstring(self.run(["crm_mon", "-1", "--output-as=xml"], timeout=15).stdout)

    def crm_mon_nodes(self) -> Dict[str, Dict[str, Any]]:
        """crm_mon's <node> elements by name; "true"/"false" become booleans, e.g. {'remote1': {'online': True,
        'type': 'remote', 'standby': False, ...}, 'guest1': {..., 'id_as_resource': 'vm-guest1'}}."""
        return {node.get("name"): _bool_attrs(dict(node.attrib)) for node in self.crm_mon_xml().iter("node")
                if node.get("name") and node.get("type")}

    def crm_mon_resources(self) -> Dict[str, Dict[str, Any]]:
        """crm_mon's primitive <resource> elements by id, with 'nodes': the names of the nodes it is active on."""
        resources = {}
        for rsc in self.crm_mon_xml().find("resources").iter("resource"):
            entry = _bool_attrs(dict(rsc.attrib))
            entry["nodes"] = [node.get("name") for node in rsc.findall("node")]
            resources[rsc.get("id")] = entry
        return resources

    def cibadmin_query(self, scope: Optional[str] = None) -> str:
        """The live CIB (or one section of it, e.g. scope="nodes") as XML text."""
        argv = ["cibadmin", "--query"] + ([f"--scope={scope}"] if scope else [])
        return self.run(argv, timeout=15).stdout

    def fail_counts(self) -> Dict[str, Dict[str, int]]:
        """{node: {resource: fail count summed over its operations}} from the CIB status section."""
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

    def log_mark(self) -> int:
        """A position in the cluster's log; pass it to takeover_count()/log_since() to look only at later lines."""
        try:
            return self.pacemaker_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int = 0) -> str:
        with open(self.pacemaker_log, "rb") as handle:
            handle.seek(mark)
            return handle.read().decode(errors="replace")

    def takeover_count(self, since: int = 0) -> int:
        """How many 'unexpected client takeover' disconnects the controller logged after the mark."""
        return sum(TAKEOVER_TEXT in line for line in self.log_since(since).splitlines())

    # --- waiting ---------------------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25,
                 logs: Sequence[Path] = ()) -> T:
        """Poll predicate until it returns something truthy and return that; on timeout raise LabTimeout naming what
        was awaited, the predicate's last error and the last lines of the cluster log (and of logs)."""
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
        for log in logs:
            details.append(f"last lines of {log}:\n{_tail(log)}")
        # The cluster log is mostly info-level CIB diffs; what explains a failure is notice level and above.
        details.append(f"last notices of {self.pacemaker_log}:\n{_tail(self.pacemaker_log, 20, PCMK_NOTICE)}")
        raise LabTimeout("\n".join(details))

    def nodes_online(self, names: Optional[Sequence[str]] = None) -> bool:
        nodes = self.crm_mon_nodes()
        return all(nodes.get(name, {}).get("online") is True for name in names or self.node_names)

    def wait_online(self, names: Optional[Sequence[str]] = None, timeout: float = 60) -> None:
        names = list(names or self.node_names)
        self.wait_for(lambda: self.nodes_online(names), timeout, f"crm_mon to show {', '.join(names)} online")

    def wait_offline(self, name: str, timeout: float = 30) -> None:
        self.wait_for(lambda: self.crm_mon_nodes().get(name, {}).get("online") is False, timeout,
                      f"crm_mon to show {name} offline")

    def settle(self, timeout: float = 60) -> None:
        """Wait until the cluster has no pending actions (crm_resource --wait)."""
        self.run(["crm_resource", "--wait", f"--timeout={int(timeout)}s"], timeout=timeout + 10)

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def is_up(self) -> bool:
        """Whether every daemon of the lab is running (the cluster itself may still be converging)."""
        return all(self._pid_alive(name) for name in self._process_names())

    def up(self, timeout: float = 60) -> Dict[str, Any]:
        """Bring the lab up and wait until all nodes are online and the cluster settled. A running lab is reused
        as it is; a partly running one (e.g. after a crash) is torn down first. Returns status()."""
        with self._locked():
            self._up_locked(timeout, started_by="hand")
            # Whoever started it, a lab brought up by hand stays up until 'down' by hand.
            self._config_file.write_text(json.dumps({**self._running_config(), "started_by": "hand"}) + "\n")
        return self.status()

    def down(self, force: bool = True) -> None:
        """Stop everything the lab started, delete its namespaces and restore the host files it changed.
        Without force, refuse while test sessions use the lab (checked under the lock, so none can slip in)."""
        with self._locked():
            if not force and self.users():
                raise LabError(f"in use by the test sessions with pids {self.users()}; use --force to stop it anyway")
            self._teardown()

    def acquire(self, timeout: float = 60) -> None:
        """up() for a test session: also register this process as a user of the lab, so that release() stops
        the lab only after the last session using it, and never stops a lab that was started by hand."""
        with self._locked():
            self._up_locked(timeout, started_by="session")
            self._users_dir.mkdir(exist_ok=True)
            (self._users_dir / str(os.getpid())).write_text(f"{_proc_stat(os.getpid()).start}\n")

    def release(self) -> None:
        """The counterpart of acquire(): deregister, and stop the lab if this was its last user."""
        with self._locked():
            (self._users_dir / str(os.getpid())).unlink(missing_ok=True)
            if self._running_config().get("started_by") == "session" and not self.users():
                self._teardown()

    def users(self) -> List[int]:
        """Pids of the live test sessions that acquire()d the lab (registrations of dead ones are dropped)."""
        live = []
        for user in self._users_dir.iterdir() if self._users_dir.is_dir() else ():
            with contextlib.suppress(FileNotFoundError, ValueError):
                if _alive(int(user.name), int(user.read_text())):
                    live.append(int(user.name))
                else:
                    user.unlink()
        return sorted(live)

    def status(self) -> Dict[str, Any]:
        processes = {name: self._read_pid(name) for name in self._process_names()}
        report: Dict[str, Any] = {
            "up": all(proc and _alive(*proc) for proc in processes.values()),
            "state_dir": str(self.state_dir),
            "authkey_bytes": self.authkey_bytes,
            "processes": {name: proc[0] if proc and _alive(*proc) else None for name, proc in processes.items()},
            "netns": [ns for ns in self._netns_present() if ns in self._netns_names()],
            "users": self.users(),
        }
        if report["up"]:
            report["authkey_bytes"] = self._running_config().get("authkey_bytes")
        if self._pid_alive("pacemakerd"):
            try:
                report["nodes"] = self.crm_mon_nodes()
            except (LabError, ET.ParseError) as exc:
                report["nodes_error"] = str(exc)
        return report

    # --- remoted and forwarder control for failure tests -----------------------------------------------------------

    def stop_remoted(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Stop the node's pacemaker-remoted with sig (SIGTERM: graceful, the cluster stops the connection;
        SIGKILL: a crash, the cluster fences the node and keeps trying to reconnect).

        Its 3121 forwarder stops too (with a crash, first), so that the cluster gets "connection refused" as from a
        real host: a forwarder without a remoted behind it accepts and then closes, which the cluster takes for a
        rejected key, a fatal error that ends all reconnect attempts."""
        self._require_netns_node(name)
        if sig == signal.SIGKILL:
            self.block_forwarder(name, REMOTE_PORT)
        proc = self._read_pid(f"remoted-{name}")
        if proc and _alive(*proc):
            family = [proc] + _descendants(proc[0])
            _signal([proc], sig)
            if not _wait_gone([proc], timeout):
                raise LabError(f"pacemaker-remoted of {name} (pid {proc[0]}) did not exit within {timeout}s")
            _terminate(family, 5)
        self._pid_file(f"remoted-{name}").unlink(missing_ok=True)
        self.block_forwarder(name, REMOTE_PORT)

    def start_remoted(self, name: str, reconnect: bool = True, timeout: float = 60) -> None:
        """Start the node's pacemaker-remoted (and its 3121 forwarder) again; with reconnect, also make the cluster
        reconnect now (crm_resource --refresh of the connection, needed after a graceful stop) and wait until the
        node is online."""
        node = self._require_netns_node(name)
        if not self._pid_alive(f"remoted-{name}"):
            self._spawn_remoted(node)
            self.wait_for(lambda: self._remoted_listening(node), timeout, f"pacemaker-remoted of {name} to listen",
                          logs=[self.remoted_log(name)])
        self.unblock_forwarder(name, REMOTE_PORT)
        if reconnect:
            self.reconnect(name, timeout)

    def reconnect(self, name: str, timeout: float = 60) -> None:
        """Clear the node's connection history (crm_resource --refresh) so the cluster connects again now rather
        than after reconnect_interval, and wait until the node is online. The connection resource of a guest
        node is implicit and named like the node."""
        self.run(["crm_resource", "--refresh", "--resource", self._require_netns_node(name).name])
        self.wait_online([name], timeout)

    def block_forwarder(self, name: str, port: int = REMOTE_PORT) -> None:
        """Cut the node off on port (3121 or 22) as a network failure would: stop its forwarder, including the
        established connections, so that connecting is refused until unblock_forwarder()."""
        self._require_netns_node(name)
        self._stop_process(self._forwarder_name(name, port), timeout=5)

    def unblock_forwarder(self, name: str, port: int = REMOTE_PORT) -> None:
        node = self._require_netns_node(name)
        if not self._pid_alive(self._forwarder_name(name, port)):
            self._spawn_forwarder(node, port)
            self.wait_for(lambda: _listening(port, node.address), 10, f"forwarder {node.address}:{port}")

    def restore_baseline(self, timeout: float = 60) -> None:
        """Undo what failure tests do to the lab: restart stopped remoteds and forwarders, reconnect offline nodes,
        clear failures, and wait until every node is online and the cluster settled. Standby attributes and
        constraints are left alone: tests remove their own."""
        for node in self._netns_nodes():
            self.start_remoted(node.name, reconnect=False)
            self.unblock_forwarder(node.name, node.ssh_port)
        self.run(["crm_resource", "--cleanup"])
        for name, node in self.crm_mon_nodes().items():
            if node.get("online") is not True:
                self.reconnect(name, timeout)
        self.wait_online(timeout=timeout)
        self.settle(timeout)

    # --- internals: state directory, pid files, locking ------------------------------------------------------------

    def _up_locked(self, timeout: float, started_by: str) -> None:
        problems = missing_prerequisites()
        if problems:
            raise LabError("cannot start the lab: " + "; ".join(problems))
        if self.is_up():
            running = self._running_config().get("authkey_bytes")
            if running != self.authkey_bytes:
                raise LabError(f"the running lab uses a {running}-byte authkey, not {self.authkey_bytes}; "
                               "run 'down' first")
            return
        if self._has_leftovers():
            self._progress(time.monotonic(), "cleaning up what a previous lab left behind")
            self._teardown()
        try:
            self._start(timeout, started_by)
        except BaseException:
            with contextlib.suppress(LabError):
                self._teardown()
            raise

    def _running_config(self) -> Dict[str, Any]:
        try:
            return json.loads(self._config_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _has_leftovers(self) -> bool:
        """Whether a previous lab left processes, namespaces, backups or per-node /etc behind."""
        return ((self.run_dir.is_dir() and any(self.run_dir.iterdir())) or self._manifest_file.exists()
                or any(ns in self._netns_present() for ns in self._netns_names())
                or any((NETNS_ETC / ns).exists() for ns in self._netns_names()))

    def _netns_names(self) -> List[str]:
        return [node.netns for node in NODES if node.netns]

    def _netns_nodes(self) -> List[LabNode]:
        return [node for node in NODES if node.netns]

    def _require_netns_node(self, name: str) -> LabNode:
        node = self.node(name)
        if not node.netns:
            raise LabError(f"{name} is the cluster node; only remote and guest nodes have a remoted")
        return node

    @staticmethod
    def _forwarder_name(name: str, port: int) -> str:
        return f"fwd-{name}-{port}"

    def _process_names(self) -> List[str]:
        names = ["sshd-node1", "corosync", "pacemakerd"]
        for node in self._netns_nodes():
            names += [f"remoted-{node.name}", f"sshd-{node.name}",
                      self._forwarder_name(node.name, REMOTE_PORT), self._forwarder_name(node.name, node.ssh_port)]
        return names

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _read_pid(self, name: str) -> Optional[Tuple[int, int]]:
        try:
            pid, start = self._pid_file(name).read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return int(pid), int(start)

    def _pid_alive(self, name: str) -> bool:
        proc = self._read_pid(name)
        return bool(proc and _alive(*proc))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize up/down between processes (two pytest sessions, or a test run and a hand-typed 'down')."""
        self._make_state_dir()
        with open(self.state_dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another lab process holding {self.state_dir}/.lock", file=sys.stderr)
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _make_state_dir(self) -> None:
        self.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        info = os.lstat(self.state_dir)
        if not os.path.isdir(self.state_dir) or os.path.islink(self.state_dir) or info.st_uid != os.geteuid():
            raise LabError(f"{self.state_dir} must be a real directory owned by uid {os.geteuid()}")
        # The cluster daemons run as hacluster and must reach the log directory inside.
        os.chmod(self.state_dir, 0o755)

    def _reset_state_dir(self) -> None:
        for entry in self.state_dir.iterdir():
            if entry.name != ".lock":
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for directory, mode in ((self.run_dir, 0o755), (self.log_dir, 0o755), (self.ssh_dir, 0o700),
                                (self.keys_dir, 0o700), (self.backup_dir, 0o700)):
            directory.mkdir(mode=mode)
        for node in NODES:
            self.node_run_dir(node.name).mkdir(parents=True)

    def _daemon_env(self, **extra: str) -> Dict[str, str]:
        """A small fixed environment, so that daemons behave the same under pytest, CI and a shell."""
        env = {"PATH": DAEMON_PATH, "LC_ALL": "C.UTF-8", "HOME": "/root"}
        env.update(extra)
        return env

    def _spawn(self, name: str, argv: Sequence[str], env: Dict[str, str]) -> None:
        with open(self.log_dir / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=env)
        _children[proc.pid] = proc
        stat = _proc_stat(proc.pid)
        self._pid_file(name).write_text(f"{proc.pid} {stat.start if stat else 0}\n")

    def _stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Stop a recorded process and everything it forked (sessions, forwarded connections, daemons' children),
        including what it left orphaned if it died first (its session: every lab process starts one)."""
        proc = self._read_pid(name)
        if proc is None:
            return
        family = self._recorded_family(name) + (_descendants(proc[0]) if _alive(*proc) else [])
        if _alive(*proc):
            _signal([proc], sig)
            if not _wait_gone([proc], timeout):
                print(f"lab: {name} (pid {proc[0]}) ignored signal {sig} for {timeout}s, killing it", file=sys.stderr)
                _signal([proc], signal.SIGKILL)
                _wait_gone([proc], 5)
        _terminate(family + _session_members(*proc), 5)
        self._pid_file(name).unlink(missing_ok=True)
        self._family_file(name).unlink(missing_ok=True)

    def _family_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.family"

    def _record_family(self, name: str) -> None:
        """Remember a daemon's children by pid: pacemakerd gives each its own session, so once pacemakerd is gone
        (killed, crashed) neither the process tree nor the session leads to them any more."""
        proc = self._read_pid(name)
        family = _descendants(proc[0]) if proc and _alive(*proc) else []
        self._family_file(name).write_text("".join(f"{pid} {start}\n" for pid, start in family))

    def _recorded_family(self, name: str) -> List[Tuple[int, int]]:
        try:
            lines = self._family_file(name).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(int(pid), int(start)) for pid, start in (line.split() for line in lines if line.strip())]

    # --- internals: host files -------------------------------------------------------------------------------------

    def _manifest(self) -> Dict[str, Any]:
        if self._manifest_file.exists():
            return json.loads(self._manifest_file.read_text())
        return {"files": {}, "moved": {}, "snapshots": {}, "created_dirs": []}

    def _save_manifest(self, manifest: Dict[str, Any]) -> None:
        _write_private(self._manifest_file, json.dumps(manifest, indent=1).encode(), 0o600)

    def _backup_file(self, path: Path) -> None:
        """Keep the original of a host file (or the fact that it was absent) so that teardown can restore it."""
        manifest = self._manifest()
        if str(path) in manifest["files"]:
            return
        entry: Dict[str, Any] = {"present": path.exists()}
        if entry["present"]:
            info = path.stat()
            entry.update(mode=info.st_mode & 0o7777, uid=info.st_uid, gid=info.st_gid,
                         copy=str(self.backup_dir / "files" / str(path).strip("/").replace("/", "__")))
            Path(entry["copy"]).parent.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(path, entry["copy"])
        manifest["files"][str(path)] = entry
        self._save_manifest(manifest)

    def _create_dir(self, path: Path, mode: int = 0o755) -> None:
        """mkdir -p that records what it created, so teardown removes exactly that."""
        missing = []
        for parent in [path, *path.parents]:
            if parent.exists():
                break
            missing.append(parent)
        manifest = self._manifest()
        manifest["created_dirs"] += [str(p) for p in reversed(missing) if str(p) not in manifest["created_dirs"]]
        self._save_manifest(manifest)
        path.mkdir(mode=mode, parents=True, exist_ok=True)

    def _move_aside(self, directory: Path) -> None:
        """Move the current contents of directory into the backup, so the daemons start from nothing."""
        manifest = self._manifest()
        target = self.backup_dir / "moved" / str(directory).strip("/").replace("/", "__")
        manifest["moved"][str(directory)] = str(target)
        self._save_manifest(manifest)
        target.mkdir(parents=True, mode=0o700)
        for entry in directory.iterdir():
            shutil.move(str(entry), target / entry.name)

    def _snapshot(self, directory: Path) -> None:
        manifest = self._manifest()
        manifest["snapshots"][str(directory)] = sorted(os.listdir(directory)) if directory.is_dir() else []
        self._save_manifest(manifest)

    def _archive(self, directory: Path, keep: Sequence[str] = ()) -> None:
        """Move what the lab's daemons left in a host directory into the state dir."""
        if not directory.is_dir():
            return
        target = self.archive_dir / str(directory).strip("/").replace("/", "__")
        for entry in directory.iterdir():
            if entry.name not in keep:
                target.mkdir(parents=True, exist_ok=True)
                if (target / entry.name).exists():
                    shutil.rmtree(target / entry.name) if (target / entry.name).is_dir() else (
                        target / entry.name).unlink()
                shutil.move(str(entry), target / entry.name)

    def _restore_host(self) -> None:
        manifest = self._manifest()
        for path_text, entry in manifest["files"].items():
            path = Path(path_text)
            if entry["present"]:
                data = Path(entry["copy"]).read_bytes()
                _write_private(path, data, entry["mode"], entry["uid"], entry["gid"])
            else:
                path.unlink(missing_ok=True)
        for directory, kept in manifest["snapshots"].items():
            self._archive(Path(directory), keep=kept)
        for directory, saved in manifest["moved"].items():
            self._archive(Path(directory))
            for entry in Path(saved).iterdir() if Path(saved).is_dir() else ():
                shutil.move(str(entry), Path(directory) / entry.name)
        for directory in reversed(manifest["created_dirs"]):
            with contextlib.suppress(FileNotFoundError, OSError):
                os.rmdir(directory)
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    # --- internals: generated configuration ------------------------------------------------------------------------

    def _write_keys(self) -> None:
        haclient = grp.getgrnam("haclient").gr_gid
        for size, path in self.authkeys.items():
            _write_private(path, os.urandom(size), 0o600)
        key = self.authkey.read_bytes()
        self._backup_file(HOST_AUTHKEY)
        self._create_dir(HOST_ETC_PACEMAKER)
        _write_private(HOST_AUTHKEY, key, 0o640, 0, haclient)
        for node in self._netns_nodes():
            etc = self.node_etc_pacemaker(node.name)
            self._create_dir(etc)
            _write_private(etc / "authkey", key, 0o640, 0, haclient)

    def _write_ssh(self) -> None:
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        self.run(keygen + ["-C", "remotectl-lab-client", "-f", str(self.identity)])
        self.authorized_keys.write_text(Path(f"{self.identity}.pub").read_text())
        known_hosts, client_config = [], []
        for node in NODES:
            host_key = self.ssh_dir / f"host_{node.name}"
            self.run(keygen + ["-C", f"remotectl-lab-{node.name}", "-f", str(host_key)])
            public = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
            names = [node.address, node.name] if node.ssh_port == 22 else [
                f"[{node.address}]:{node.ssh_port}", node.name, f"[{node.name}]:{node.ssh_port}"]
            known_hosts.append(f"{','.join(names)} {public}")
            client_config.append(f"Host {node.name}\n    HostName {node.address}\n    Port {node.ssh_port}\n")
            (self.ssh_dir / f"sshd_{node.name}.conf").write_text(
                f"Port {22 if node.netns else node.ssh_port}\n"
                "ListenAddress 127.0.0.1\n"
                f'HostKey "{host_key}"\n'
                "PidFile none\n"
                "PermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "PubkeyAuthentication yes\n"
                f'AuthorizedKeysFile "{self.authorized_keys}"\n'
                "StrictModes no\n"
                "UsePAM no\n"
                "PrintMotd no\n"
                "MaxStartups 100:30:200\n"
                "MaxSessions 100\n"
                "Subsystem sftp internal-sftp\n"
                "LogLevel VERBOSE\n")
        self.known_hosts.write_text("\n".join(known_hosts) + "\n")
        client_config.append(
            "Host *\n"
            "    User root\n"
            f'    IdentityFile "{self.identity}"\n'
            "    IdentitiesOnly yes\n"
            f'    UserKnownHostsFile "{self.known_hosts}"\n'
            "    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
            "    LogLevel ERROR\n")
        self.ssh_config.write_text("\n".join(client_config))
        if not PRIVSEP_DIR.exists():
            self._create_dir(PRIVSEP_DIR, 0o755)

    def _write_corosync_conf(self) -> None:
        self._backup_file(HOST_COROSYNC_CONF)
        self._create_dir(HOST_COROSYNC_CONF.parent)
        HOST_COROSYNC_CONF.write_text(
            "# written by remotectl's tests/lab/lab.py; the original is restored by 'lab.py down'\n"
            f"totem {{\n    version: 2\n    cluster_name: {CLUSTER_NAME}\n    transport: knet\n"
            "    crypto_cipher: none\n    crypto_hash: none\n}\n"
            f"logging {{\n    fileline: off\n    to_stderr: no\n    to_logfile: yes\n    logfile: {self.corosync_log}\n"
            "    to_syslog: no\n    timestamp: on\n}\n"
            "quorum {\n    provider: corosync_votequorum\n    expected_votes: 1\n}\n"
            "nodelist {\n    node {\n        name: node1\n        nodeid: 1\n        ring0_addr: 127.0.0.1\n    }\n}\n")

    def _cib(self) -> bytes:
        """The initial CIB, written before pacemakerd starts so that dc-deadtime=5s applies to the first election."""
        cib = ET.fromstring(self.run(["cibadmin", "--empty"]).stdout)
        config = cib.find("configuration")

        def nvpairs(parent: ET.Element, tag: str, owner: str, pairs: Dict[str, str]) -> None:
            block = ET.SubElement(parent, tag, id=f"{owner}-{tag}")
            for name, value in pairs.items():
                ET.SubElement(block, "nvpair", id=f"{owner}-{tag}-{name}", name=name, value=value)

        def primitive(rsc_id: str, cls: str, rsc_type: str, provider: Optional[str] = None,
                      params: Optional[Dict[str, str]] = None, meta: Optional[Dict[str, str]] = None,
                      monitor: str = "10s") -> None:
            attrs = {"id": rsc_id, "class": cls, "type": rsc_type, **({"provider": provider} if provider else {})}
            rsc = ET.SubElement(config.find("resources"), "primitive", attrs)
            if params:
                nvpairs(rsc, "instance_attributes", rsc_id, params)
            if meta:
                nvpairs(rsc, "meta_attributes", rsc_id, meta)
            ops = ET.SubElement(rsc, "operations")
            ET.SubElement(ops, "op", id=f"{rsc_id}-monitor-interval-{monitor}", name="monitor", interval=monitor)

        crm_config = config.find("crm_config")
        properties = ET.SubElement(crm_config, "cluster_property_set", id="cib-bootstrap-options")
        for name, value in (("stonith-enabled", "true"), ("dc-deadtime", "5s")):
            ET.SubElement(properties, "nvpair", id=f"cib-bootstrap-options-{name}", name=name, value=value)
        fenced = " ".join(n.name for n in NODES if n.kind in ("member", "remote"))
        primitive("fence-dummy", "stonith", "fence_dummy", monitor="60s",
                  params={"pcmk_host_list": fenced, "status_file": str(self.state_dir / "fence_dummy.status")})
        for node in NODES:
            if node.kind == "remote":
                primitive(node.resource, "ocf", "remote", "pacemaker",
                          params={"server": node.address, "port": str(REMOTE_PORT), "reconnect_interval": "15s"})
            elif node.kind == "guest":
                primitive(node.resource, "ocf", "Dummy", "pacemaker",
                          meta={"remote-node": node.name, "remote-addr": node.address,
                                "remote-port": str(REMOTE_PORT)})
        primitive("dummy1", "ocf", "Dummy", "pacemaker")
        return ET.tostring(cib)

    def _write_cib(self) -> None:
        hacluster = pwd.getpwnam("hacluster")
        self._create_dir(CIB_DIR, 0o750)
        self._move_aside(CIB_DIR)
        for directory in PACEMAKER_STATE_DIRS:
            self._snapshot(directory)
        cib_file = self.state_dir / "cib-initial.xml"
        cib_file.write_bytes(self._cib())
        # Offline, crm_verify always warns (no quorum, remote nodes unseen); only errors mean a broken CIB.
        verdict = self.run(["crm_verify", "--xml-file", str(cib_file)], check=False)
        if verdict.returncode != 0 and "Warnings found" not in verdict.stderr:
            raise LabError(f"the generated CIB {cib_file} is invalid: {verdict.stderr.strip()}")
        _write_private(CIB_DIR / "cib.xml", cib_file.read_bytes(), 0o600, hacluster.pw_uid, hacluster.pw_gid)

    # --- internals: processes --------------------------------------------------------------------------------------

    def _spawn_remoted(self, node: LabNode) -> None:
        env = self._daemon_env(PCMK_remote_port=str(REMOTE_PORT), PCMK_logfile=str(self.remoted_log(node.name)),
                               HA_VARRUN=f"{self.node_run_dir(node.name)}/")
        self._spawn(f"remoted-{node.name}", ["ip", "netns", "exec", node.netns, REMOTED], env)

    def _spawn_sshd(self, node: LabNode) -> None:
        prefix = ["ip", "netns", "exec", node.netns] if node.netns else []
        argv = prefix + [SSHD, "-D", "-e", "-f", str(self.ssh_dir / f"sshd_{node.name}.conf")]
        self._spawn(f"sshd-{node.name}", argv, self._daemon_env())

    def _spawn_forwarder(self, node: LabNode, port: int) -> None:
        inner = f"ip netns exec {node.netns} socat STDIO TCP\\:127.0.0.1\\:{port}"
        argv = ["socat", f"TCP-LISTEN:{port},bind={node.address},reuseaddr,fork", f"EXEC:{inner}"]
        self._spawn(self._forwarder_name(node.name, port), argv, self._daemon_env())

    def _remoted_listening(self, node: LabNode) -> bool:
        proc = self._read_pid(f"remoted-{node.name}")
        if not proc or not _alive(*proc):
            raise LabError(f"pacemaker-remoted of {node.name} exited")
        return _listening(REMOTE_PORT, pid=str(proc[0]))

    def _check_host_is_free(self) -> None:
        """Refuse to start next to a cluster or listeners that the lab did not start: they would collide."""
        host_netns = os.readlink("/proc/self/ns/net")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
                if comm in ("corosync", "pacemakerd", "pacemaker-based", "pacemaker-remot") \
                        and os.readlink(f"/proc/{entry}/ns/net") == host_netns:
                    raise LabError(f"{comm} (pid {entry}) is already running in the host namespace and was not "
                                   "started by this lab; stop it first")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        listeners = [("127.0.0.1", 2222)] + [(n.address, p) for n in self._netns_nodes() for p in (22, REMOTE_PORT)]
        busy = [f"{address}:{port}" for address, port in listeners if _listening(port, address)]
        if busy:
            raise LabError(f"already listening on the host: {', '.join(busy)}; the lab needs these addresses")

    def _progress(self, started: float, message: str) -> None:
        if self.verbose:
            print(f"lab: {time.monotonic() - started:5.1f}s {message}", file=sys.stderr)

    def _start(self, timeout: float, started_by: str) -> None:
        started = time.monotonic()
        self._check_host_is_free()
        self._reset_state_dir()
        config = {"authkey_bytes": self.authkey_bytes, "started_by": started_by}
        self._config_file.write_text(json.dumps(config) + "\n")
        self._write_keys()
        self._write_ssh()
        self._write_corosync_conf()
        self._write_cib()
        self._progress(started, "keys, ssh and cluster configuration written")

        for node in self._netns_nodes():
            self.run(["ip", "netns", "add", node.netns])
            self.run(["ip", "-n", node.netns, "link", "set", "lo", "up"])
            self._spawn_remoted(node)
            self._spawn_sshd(node)
            self._spawn_forwarder(node, REMOTE_PORT)
            self._spawn_forwarder(node, node.ssh_port)
        self._spawn_sshd(self.nodes["node1"])
        self._spawn("corosync", ["corosync", "-f"], self._daemon_env())

        def host_daemons_ready() -> bool:
            for node in self._netns_nodes():
                if not (self._remoted_listening(node) and _listening(REMOTE_PORT, node.address)):
                    return False
            return all(_ssh_banner(node.address, node.ssh_port) for node in NODES)

        self.wait_for(host_daemons_ready, 20, "remoted, sshd and forwarders to listen",
                      logs=[self.log_dir / f"{name}.out" for name in self._process_names() if name != "pacemakerd"])
        self._progress(started, "remoted, sshd and forwarders listening")
        def quorate() -> bool:
            quorum = self.run(["corosync-quorumtool", "-s"], check=False).stdout
            return bool(re.search(r"^Quorate:\s+Yes", quorum, re.M))

        self.wait_for(quorate, 20, "corosync to be quorate", logs=[self.corosync_log])
        self._progress(started, "corosync quorate")
        self._spawn("pacemakerd", ["pacemakerd"], self._daemon_env(
            PCMK_logfile=str(self.pacemaker_log), HA_VARRUN=f"{self.node_run_dir('node1')}/"))
        remaining = timeout - (time.monotonic() - started)
        self.wait_online(timeout=max(remaining, 5))
        self._record_family("pacemakerd")
        self._progress(started, f"crm_mon shows {', '.join(self.node_names)} online")
        self.settle(timeout=max(timeout - (time.monotonic() - started), 10))
        self._progress(started, "cluster settled")

    def _netns_present(self) -> List[str]:
        listing = self.run(["ip", "netns", "list"], check=False).stdout
        return [line.split()[0] for line in listing.splitlines() if line.strip()]

    def _teardown(self) -> None:
        """Stop in reverse dependency order; keep going past errors so nothing is left behind, then report them."""
        errors = []

        def step(what: str, action: Callable[[], None]) -> None:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(f"{what}: {exc}")

        started = time.monotonic()
        recorded = [proc for name in self._process_names() for proc in [self._read_pid(name)] if proc]
        recorded += self._recorded_family("pacemakerd")
        # pacemakerd stops the resources and connections itself; give it time before killing its children.
        step("pacemakerd", lambda: self._stop_process("pacemakerd", timeout=60))
        self._progress(started, "pacemakerd stopped")
        step("corosync", lambda: self._stop_process("corosync", timeout=20))
        for name in self._process_names():
            step(name, lambda name=name: self._stop_process(name))
        present = self._netns_present()
        for netns in self._netns_names():
            if netns in present:
                step(f"netns {netns}", lambda netns=netns: self._delete_netns(netns))
            step(f"/etc/netns/{netns}", lambda netns=netns: shutil.rmtree(NETNS_ETC / netns, ignore_errors=True))
        step("/dev/shm", lambda: _remove_ipc_leftovers(recorded))
        if self.state_dir.is_dir():
            step("host files", self._restore_host)
            for leftover in self.run_dir.iterdir() if self.run_dir.is_dir() else ():
                leftover.unlink()
        self._progress(started, "everything stopped, namespaces deleted, host files restored")
        if errors:
            raise LabError("teardown incomplete:\n  " + "\n  ".join(errors))

    def _delete_netns(self, netns: str) -> None:
        """Kill whatever still runs in the namespace (a resource agent, an SSH session), then delete it."""
        pids = [int(p) for p in self.run(["ip", "netns", "pids", netns], check=False).stdout.split()]
        procs = [(pid, stat.start) for pid in pids for stat in [_proc_stat(pid)] if stat]
        _terminate(procs, 5)
        self.run(["ip", "netns", "delete", netns])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The lab.py command line (labcli.py: the netns lab; hostscli.py: the hosts lab)."""
    try:
        from .labcli import main as cli_main
    except ImportError:  # run as a script
        from labcli import main as cli_main  # type: ignore[no-redef]
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
