"""``lab.py`` commands of the netns lab (up/down/status); ``--hosts``, ``env`` and ``fault`` go to hostscli.py."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, Optional, Sequence

try:
    from .lab import AUTHKEY_VARIANTS, DEFAULT_AUTHKEY_BYTES, Lab, LabError
except ImportError:  # run as a script: tests/lab is sys.path[0]
    from lab import AUTHKEY_VARIANTS, DEFAULT_AUTHKEY_BYTES, Lab, LabError  # type: ignore[no-redef]


def _print_status(status: Dict[str, Any]) -> None:
    print(f"lab {'UP' if status['up'] else 'DOWN'}: state dir {status['state_dir']}, "
          f"{status['authkey_bytes']}-byte authkey")
    for name, pid in status["processes"].items():
        print(f"  {name:<22} {pid if pid else '-'}")
    print(f"  network namespaces: {', '.join(status['netns']) or '-'}")
    if status["users"]:
        print(f"  used by test sessions: {', '.join(map(str, status['users']))}")
    for name, node in status.get("nodes", {}).items():
        flags = [key for key in ("online", "standby", "maintenance", "unclean") if node.get(key) is True]
        guest = f" (guest of {node['id_as_resource']})" if node.get("id_as_resource") else ""
        print(f"  node {name:<10} {node.get('type', '?')}{guest}: {', '.join(flags) or 'offline'}")
    if "nodes_error" in status:
        print(f"  crm_mon: {status['nodes_error']}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if "--hosts" in words or any(w in ("env", "fault") for w in words[:1]) or "--pacemaker" in words \
            or any(w.startswith("--pacemaker=") for w in words):
        try:
            from .hostscli import main as hosts_main
        except ImportError:
            from hostscli import main as hosts_main  # type: ignore[no-redef]
        return hosts_main(words)
    parser = argparse.ArgumentParser(description="remotectl's Pacemaker test lab (--hosts: the nspawn hosts lab)")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--authkey-bytes", type=int, choices=AUTHKEY_VARIANTS,
                        help=f"size of the lab's authkey (default {DEFAULT_AUTHKEY_BYTES}, "
                             "env REMOTECTL_LAB_AUTHKEY_BYTES)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds for all nodes to come online")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("--force", action="store_true", help="down even while test sessions use the lab")
    args = parser.parse_args(argv)
    lab = Lab(authkey_bytes=args.authkey_bytes, verbose=True)
    started = time.monotonic()
    try:
        if args.command == "up":
            status = lab.up(timeout=args.timeout)
        elif args.command == "down":
            lab.down(force=args.force)
            status = lab.status()
        else:
            status = lab.status()
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
            print(f"ssh: ssh -F {lab.ssh_config} remote1")
    return 0
