"""The pre-join check of `node add`, run ON a cluster node: the full handshake + registration of
:mod:`remotectl.transport.lrmd_check`, with that cluster node's own key and its own view of the address.

DISRUPTIVE against a node a cluster is connected to (see lrmd_check): `actions.node_lifecycle` calls it only for a
host whose pacemaker-remoted has no established connection, read on the host itself just before.

The program sent is psk_probe's source followed by lrmd_check's (its import of psk_probe dropped: the names are
already defined) and a short main; it travels on stdin, the key never leaves the cluster node.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict

from remotectl.transport.base import Runner, TransportError

_BOOT = "import sys\nexec(compile(sys.stdin.read(), 'remotectl-prejoin', 'exec'), {'__name__': 'remotectl_prejoin'})\n"
_MAIN = r'''
import json as _json, sys as _sys
_host, _port, _timeout = _sys.argv[1], int(_sys.argv[2]), float(_sys.argv[3])
try:
    _key, _path, _source, _warnings = locate_node_key(version=pacemaker_version())
except ProbeError as _exc:
    print(_json.dumps({"verdict": "probe-bug", "detail": "no key on this node: %s" % _exc}))
    _sys.exit(0)
print(_json.dumps(full_check(_host, _port, _key, timeout=_timeout, client_name="remotectl-node-add").to_dict()))
'''


def _source() -> str:
    from remotectl.transport import lrmd_check, psk_probe

    probe = psk_probe.module_source().decode("utf-8")
    with open(lrmd_check.__file__, encoding="utf-8") as handle:
        check = handle.read()
    check = check.replace("from __future__ import annotations\n", "", 1)
    check = re.sub(r"from remotectl\.transport\.psk_probe import \([^)]*\)\n", "", check, count=1)
    return probe + "\n" + check + "\n" + _MAIN


def full_check_from(runner: Runner, host: str, port: int, timeout: float = 5.0) -> Dict[str, Any]:
    """The lrmd_check.full_check result (as its to_dict) of host:port, run on the runner's host."""
    result = runner.run(["python3", "-c", _BOOT, host, str(port), str(timeout)], stdin=_source().encode("utf-8"),
                        timeout=timeout * 3 + 30)
    for line in reversed(result.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise TransportError(f"{runner.name}: the pre-join check did not run: {result.first_error_line()}")
