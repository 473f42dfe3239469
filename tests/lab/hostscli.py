"""``lab.py`` commands of the hosts lab: up/down/status --hosts, env, fault (see README.md)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import Any, Dict, Optional, Sequence

try:
    from . import faults
    from .hosts import VARIANTS, HostsLab
    from .labutil import LabError
except ImportError:
    import faults  # type: ignore[no-redef]
    from hosts import VARIANTS, HostsLab  # type: ignore[no-redef]
    from labutil import LabError  # type: ignore[no-redef]


def _print_status(status: Dict[str, Any]) -> None:
    print(f"hosts lab {'UP' if status['up'] else 'DOWN'}: Pacemaker {status['variant']}, "
          f"state dir {status['state_dir']}, supervisor {status['supervisor'] or '-'}")
    for name, host in status["hosts"].items():
        version = status["pacemaker"].get(name, "")
        state = "running" if host["running"] else "stopped"
        print(f"  {name:<8} {host['kind']:<7} {host['address']:<11} {state:<8} boots={host['boots']} {version}")
    print(f"  network namespaces: {', '.join(status['netns']) or '-'}")
    print(f"  mounts: {len(status['mounts'])}")
    if not status["up"]:
        print(f"  left behind: {', '.join(status['leftovers']) or 'nothing'}")
    if status["users"]:
        print(f"  used by test sessions: {', '.join(map(str, status['users']))}")
    for name, node in status.get("nodes", {}).items():
        flags = [key for key in ("online", "standby", "maintenance", "unclean") if node.get(key) is True]
        guest = f" (guest of {node['id_as_resource']})" if node.get("id_as_resource") else ""
        print(f"  node {name:<10} {node.get('type', '?')}{guest}: {', '.join(flags) or 'offline'}")
    if "nodes_error" in status:
        print(f"  crm_mon: {status['nodes_error']}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description="remotectl's hosts lab (systemd-nspawn hosts)")
    parser.add_argument("command", choices=("up", "down", "status", "env", "fault"))
    parser.add_argument("args", nargs="*", help="fault: NAME ARGS... | clear [NAME] | list")
    parser.add_argument("--hosts", action="store_true", help="accepted for older scripts: the hosts lab is the only lab")
    parser.add_argument("--pacemaker", choices=VARIANTS, help="Pacemaker of the whole lab (env LAB_PACEMAKER; "
                        "default 2.1); mixed: 2.1.5 cluster with a 3.0.x remote2")
    parser.add_argument("--timeout", type=float, default=180, help="seconds for all nodes to come online")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--force", action="store_true", help="down even while test sessions use the lab")
    args = parser.parse_args(argv)
    lab = HostsLab(variant=args.pacemaker, verbose=True)
    started = time.monotonic()
    try:
        if args.command == "up":
            status = lab.up(timeout=args.timeout)
        elif args.command == "down":
            lab.down(force=args.force)
            status = lab.status()
            if status["leftovers"]:
                _print_status(status)
                raise LabError(f"left behind after down: {', '.join(status['leftovers'])}")
        elif args.command == "status":
            status = lab.status()
            if not status["up"] and status["leftovers"]:
                _print_status(status)
                return 3
        elif args.command == "env":
            if not lab.is_up():
                raise LabError("the hosts lab is not running ('lab.py up --hosts' first)")
            for name, value in lab.env().items():
                print(f"export {name}={shlex.quote(value)}")
            return 0
        else:
            return _fault(lab, args.args)
    except LabError as exc:
        print(f"lab {args.command} failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        _print_status(status)
        if args.command != "status":
            print(f"{args.command} took {time.monotonic() - started:.1f}s")
        if status["up"]:
            print(f"ssh: ssh -F {lab.ssh_config} node1        env: eval \"$(python3 {sys.argv[0]} env)\"")
    return 0


def _fault(lab: HostsLab, words: Sequence[str]) -> int:
    if not lab.is_up():
        raise LabError("the hosts lab is not running")
    if not words or words[0] in ("-h", "help"):
        print("usage: lab.py fault NAME ARGS... | fault clear [NAME] | fault list")
        for name, fault in faults.FAULTS.items():
            print(f"  {name} {' '.join(fault['args'])}: {fault['inject'].__doc__.strip()}")
        return 0 if words else 2
    if words[0] == "list":
        for record in faults.listing(lab):
            print(json.dumps(record))
        return 0
    if words[0] == "clear":
        for record in faults.clear(lab, *words[1:2]):
            print(f"cleared {json.dumps(record)}")
        return 0
    record = faults.inject(lab, words[0], *words[1:])
    print(f"injected {words[0]} {json.dumps(record)}")
    return 0
