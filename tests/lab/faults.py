"""Fault injection for the hosts lab: ``lab.py fault NAME [ARGS]`` injects, ``lab.py fault clear [NAME]`` undoes.

Every fault is done the way it happens in the field (a firewall rule on the host, a wrong file, a CIB edit with
Pacemaker's own tools), and recorded in ``<state>/faults.json`` so that ``clear`` (or ``restore_baseline()``) knows
what to undo. Key bytes never appear in argv or logs: keys are written as files through the mounted roots.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List

try:
    from .labutil import LabError, _write_private
except ImportError:
    from labutil import LabError, _write_private  # type: ignore[no-redef]

FAULT_TABLE = "remotectl_lab_fault"


def _nft(lab, host: str, rules: str) -> None:
    lab.host_run(host, ["nft", "-f", "-"], input=rules)


def _records(lab) -> List[Dict[str, Any]]:
    try:
        return json.loads((lab.state_dir / "faults.json").read_text())
    except (FileNotFoundError, ValueError):
        return []


def _save(lab, records: List[Dict[str, Any]]) -> None:
    (lab.state_dir / "faults.json").write_text(json.dumps(records, indent=1) + "\n")


def _refresh(lab, resource: str) -> None:
    """Make the cluster reconnect to a node it gave up on. Not for a connection that is up: on 3.0.3 its re-probe
    is recorded as a "last failure" (found running), and once reconnect_interval expires it the scheduler keeps a
    <resource>_clear_failcount action pending for ever, so `crm_resource --wait` (settle) never returns."""
    if lab.crm_mon_nodes().get(resource, {}).get("online") is True:
        return
    lab.cluster_run(["crm_resource", "--refresh", "--resource", resource], timeout=30, check=False)


def _need(lab, name: str, kinds: tuple) -> None:
    if lab.host(name).kind not in kinds:
        raise LabError(f"{name} is a {lab.host(name).kind} host; this fault needs one of: {', '.join(kinds)}")


# --- port blocking (also used by block_forwarder) ------------------------------------------------------------------


def _block_rules(table: str, port: int, source: str = "") -> str:
    match = f"ip saddr {source} " if source else ""
    # Only new connections: an established cluster connection keeps working, as with a stateful firewall.
    return (f"table inet {table} {{\n chain input {{ type filter hook input priority -10; policy accept;\n"
            f"  ct state new {match}tcp dport {port} counter drop\n }}\n}}\n")


def block_port(lab, host: str, port: int) -> None:
    _nft(lab, host, _block_rules(f"{FAULT_TABLE}_port{port}", port))


def unblock_port(lab, host: str, port: int) -> None:
    lab.host_run(host, ["nft", "delete", "table", "inet", f"{FAULT_TABLE}_port{port}"], check=False)


# --- the faults ----------------------------------------------------------------------------------------------------


def _restart_remoted(lab, host: str, verb: str = "restart") -> None:
    """systemctl returns before remoted listens: wait for 3121, or a check right after sees "refused"."""
    lab.host_run(host, ["systemctl", verb, "pacemaker_remote"], timeout=60)
    lab.wait_for(lambda: lab._listening(host, 3121), 20, f"pacemaker-remoted of {host} to listen")


def wrong_key(lab, host: str) -> Dict[str, Any]:
    """A different authkey on one remote/guest host (and its remoted restarted, since 3.0.2+ reads it once)."""
    _need(lab, host, ("remote", "guest"))
    etc = lab.node_etc_pacemaker(host)
    gid = os.stat(etc / "authkey").st_gid
    _write_private(etc / "authkey", os.urandom(lab.authkey_bytes), 0o640, 0, gid)
    _restart_remoted(lab, host)
    return {"host": host}


def _clear_wrong_key(lab, host: str) -> None:
    etc = lab.node_etc_pacemaker(host)
    gid = os.stat(etc / "authkey").st_gid
    _write_private(etc / "authkey", lab.authkey.read_bytes(), 0o640, 0, gid)
    _restart_remoted(lab, host)
    _refresh(lab, host)


def remoted_stopped(lab, host: str) -> Dict[str, Any]:
    """systemctl stop pacemaker_remote on one remote/guest host."""
    _need(lab, host, ("remote", "guest"))
    lab.host_run(host, ["systemctl", "stop", "pacemaker_remote"], timeout=60)
    return {"host": host}


def _clear_remoted_stopped(lab, host: str) -> None:
    _restart_remoted(lab, host, "start")
    _refresh(lab, host)


def drop_3121(lab, host: str, cluster_node: str) -> Dict[str, Any]:
    """The remote host's firewall drops new connections to 3121 from one cluster node only."""
    _need(lab, host, ("remote", "guest", "spare"))  # spare: the target of `node add`
    _need(lab, cluster_node, ("member",))
    source = lab.host(cluster_node).address
    _nft(lab, host, _block_rules(f"{FAULT_TABLE}_from_{cluster_node}", 3121, source))
    return {"host": host, "cluster_node": cluster_node}


def _clear_drop_3121(lab, host: str, cluster_node: str) -> None:
    lab.host_run(host, ["nft", "delete", "table", "inet", f"{FAULT_TABLE}_from_{cluster_node}"], check=False)


def key_unreadable(lab, host: str) -> Dict[str, Any]:
    """The authkey on a cluster node is root:root 0600, so the controller (user hacluster) cannot read it."""
    _need(lab, host, ("member",))
    key = lab.node_etc_pacemaker(host) / "authkey"
    info = os.stat(key)
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    return {"host": host, "gid": info.st_gid}


def _clear_key_unreadable(lab, host: str, gid: int) -> None:
    key = lab.node_etc_pacemaker(host) / "authkey"
    os.chown(key, 0, gid)
    os.chmod(key, 0o640)


def no_reconnect_interval(lab, resource: str) -> Dict[str, Any]:
    """reconnect_interval removed from a remote node's connection resource."""
    _need(lab, resource, ("remote",))
    lab.cluster_run(["crm_resource", "--resource", resource, "--delete-parameter", "reconnect_interval"],
                    timeout=30)
    return {"host": resource}


def _clear_no_reconnect_interval(lab, host: str) -> None:
    lab.cluster_run(["crm_resource", "--resource", host, "--set-parameter", "reconnect_interval",
                     "--parameter-value", "15s"], timeout=30)


def stale_node(lab, name: str = "remote9") -> Dict[str, Any]:
    """A remote node entry left in the CIB's nodes section without a connection resource (a removed node)."""
    lab.cluster_run(["cibadmin", "--create", "--scope", "nodes", "--xml-text",
                     f'<node id="{name}" uname="{name}" type="remote"/>'], timeout=30)
    return {"name": name}


def _clear_stale_node(lab, name: str) -> None:
    lab.cluster_run(["cibadmin", "--delete", "--scope", "nodes", "--xml-text", f'<node id="{name}"/>'],
                    timeout=30, check=False)


def failed_connection(lab, host: str) -> Dict[str, Any]:
    """A failed monitor of the connection resource: the cluster recovers the connection, the fail count stays."""
    _need(lab, host, ("remote",))
    where = lab.crm_mon_resources().get(host, {}).get("nodes") or []
    if not where:
        raise LabError(f"connection resource {host} is not running")
    lab.cluster_run(["crm_resource", "--fail", "--resource", host, "--node", where[0]], timeout=30)
    lab.wait_for(lambda: lab.fail_counts().get(where[0], {}).get(host), 30, f"a fail count of {host}")
    return {"host": host}


def _clear_failed_connection(lab, host: str) -> None:
    lab.cluster_run(["crm_resource", "--cleanup", "--resource", host], timeout=30)


FAULTS: Dict[str, Dict[str, Any]] = {
    "wrong-key": {"inject": wrong_key, "clear": _clear_wrong_key, "args": ["HOST"]},
    "remoted-stopped": {"inject": remoted_stopped, "clear": _clear_remoted_stopped, "args": ["HOST"]},
    "drop-3121": {"inject": drop_3121, "clear": _clear_drop_3121, "args": ["HOST", "CLUSTER_NODE"]},
    "key-unreadable": {"inject": key_unreadable, "clear": _clear_key_unreadable, "args": ["CLUSTER_NODE"]},
    "no-reconnect-interval": {"inject": no_reconnect_interval, "clear": _clear_no_reconnect_interval,
                              "args": ["REMOTE"]},
    "stale-node": {"inject": stale_node, "clear": _clear_stale_node, "args": ["[NAME]"]},
    "failed-connection": {"inject": failed_connection, "clear": _clear_failed_connection, "args": ["REMOTE"]},
}


def inject(lab, name: str, *args: str) -> Dict[str, Any]:
    if name not in FAULTS:
        raise LabError(f"no fault {name!r} (faults: {', '.join(FAULTS)})")
    inject_fn: Callable[..., Dict[str, Any]] = FAULTS[name]["inject"]
    try:
        record = inject_fn(lab, *args)
    except TypeError as exc:
        raise LabError(f"usage: fault {name} {' '.join(FAULTS[name]['args'])}") from exc
    records = _records(lab)
    records.append({"fault": name, **record})
    _save(lab, records)
    return record


def clear(lab, name: str = "") -> List[Dict[str, Any]]:
    """Clear the recorded faults (all, or those of one name), newest first; returns what was cleared."""
    records = _records(lab)
    cleared, kept = [], []
    for record in reversed(records):
        if name and record["fault"] != name:
            kept.insert(0, record)
            continue
        args = {k: v for k, v in record.items() if k != "fault"}
        FAULTS[record["fault"]]["clear"](lab, **args)
        cleared.append(record)
    _save(lab, kept)
    return cleared


def clear_all(lab) -> None:
    clear(lab)
    for host in lab.hosts.values():
        if host.kind != "spare" and lab.leader(host.name):
            for port in (22, 3121):
                unblock_port(lab, host.name, port)


def listing(lab) -> List[Dict[str, Any]]:
    return _records(lab)
