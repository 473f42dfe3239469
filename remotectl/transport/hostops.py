"""Host-side work of `remotectl node add|remove`: constant sh scripts (arguments as positional parameters, never a
shell string built from names) run through a Runner, over SSH or here.

Key bytes only ever travel on stdout (read_key_bytes) or stdin (transport.files.write_file_atomic).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import List, Optional

from remotectl.pacemaker import hostfirewall, lifecycle
from remotectl.transport.base import CommandResult, Runner, TransportError

_STATE_SCRIPT = r"""
PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
port=$1; comment=$2; ufwhex=$3; marker=$4; address=$5; firewall=$6; shift 6
unit=-
for u in "$@"; do
  if systemctl cat -- "$u.service" >/dev/null 2>&1; then unit=$u; break; fi
done
echo "unit $unit"
if [ "$unit" != - ]; then
  echo "enabled $(systemctl is-enabled -- "$unit.service" 2>/dev/null || true)"
  echo "active $(systemctl is-active -- "$unit.service" 2>/dev/null || true)"
fi
for tool in pacemaker-remoted pacemaker_remoted; do
  if command -v "$tool" >/dev/null 2>&1; then printf 'version '; "$tool" --version 2>&1 | head -n 1; break; fi
done
if command -v ss >/dev/null 2>&1; then
  if [ -n "$(ss -Htln "( sport = :$port )" 2>/dev/null)" ]; then echo "listening yes"; else echo "listening no"; fi
  ss -Htn state established "( sport = :$port )" 2>/dev/null | while read -r line; do echo "established $line"; done
else
  echo "listening unknown"
fi
[ "$firewall" = yes ] || exit 0
raw=yes
if command -v firewall-cmd >/dev/null 2>&1 && systemctl is-active --quiet firewalld.service 2>/dev/null; then
  echo "firewalld running"; raw=no
  zone=
  if [ -f "$marker" ]; then zone=$(head -n 1 -- "$marker")
  elif [ -n "$address" ]; then
    ip=$(getent ahosts "$address" 2>/dev/null | awk 'NR == 1 { print $1 }')
    dev=$(if [ -n "$ip" ]; then ip -o addr show to "$ip" 2>/dev/null | awk 'NR == 1 { print $2 }'; fi)
    if [ -n "$dev" ]; then zone=$(firewall-cmd --get-zone-of-interface="$dev" 2>/dev/null) || zone=; fi
  fi
  [ -n "$zone" ] || zone=$(firewall-cmd --get-default-zone 2>/dev/null)
  echo "fwzone $zone"
  if firewall-cmd --zone="$zone" --query-port="$port/tcp" >/dev/null 2>&1; then echo "fwruntime yes"; fi
  if firewall-cmd --permanent --zone="$zone" --query-port="$port/tcp" >/dev/null 2>&1; then echo "fwpermanent yes"; fi
fi
if [ -f "$marker" ]; then echo "fwmarker $(head -n 1 -- "$marker")"; fi
if command -v ufw >/dev/null 2>&1; then
  if grep -qs '^ENABLED=yes' /etc/ufw/ufw.conf; then printf 'ufwstatus '; ufw status 2>&1 | head -n 1; raw=no; fi
  if [ $raw = no ] || grep -qsF -- "comment=$ufwhex" /etc/ufw/user.rules /etc/ufw/user6.rules; then
    ufw show added 2>/dev/null | while IFS= read -r line; do echo "ufwadded $line"; done
  fi
fi
if [ $raw = yes ] && command -v nft >/dev/null 2>&1; then
  printf 'nftrules '; nft -a list ruleset 2>/dev/null | base64 | tr -d '\n'; echo
fi
for conf in /etc/nftables.conf /etc/sysconfig/nftables.conf; do
  if [ -f "$conf" ] && grep -qF -- "\"$comment\"" "$conf"; then echo "nftpersisted $conf"; fi
done
exit 0
"""

_READ_KEY_SCRIPT = r"""
set -eu
[ -f "$1" ] || { echo "$1 does not exist" >&2; exit 66; }
base64 < "$1" | tr -d '\n'
"""

_NFT_OPEN_SCRIPT = r"""
set -eu
PATH="$PATH:/usr/sbin:/sbin"
nft insert rule "$1" "$2" "$3" tcp dport "$4" accept comment "\"$5\""
"""

# Persist the rule: one marked line appended to the file nftables.service loads at boot (Debian, then RHEL), after
# its tables are defined. Removal drops exactly the lines carrying the marker (grep -F, atomic rename).
_NFT_PERSIST_SCRIPT = r"""
set -eu
family=$1 table=$2 chain=$3 port=$4 comment=$5
for conf in /etc/nftables.conf /etc/sysconfig/nftables.conf; do
  [ -f "$conf" ] || continue
  if grep -qF -- "\"$comment\"" "$conf"; then echo "present $conf"; exit 0; fi
  printf '%s\n' "insert rule $family $table $chain tcp dport $port accept comment \"$comment\"" >> "$conf"
  echo "added $conf"; exit 0
done
echo "none"
"""

_NFT_UNPERSIST_SCRIPT = r"""
set -eu
comment=$1
for conf in /etc/nftables.conf /etc/sysconfig/nftables.conf; do
  [ -f "$conf" ] || continue
  grep -qF -- "\"$comment\"" "$conf" || continue
  tmp=$(mktemp "$conf.remotectl.XXXXXXXX")
  trap 'rm -f -- "$tmp"' EXIT
  grep -vF -- "\"$comment\"" "$conf" > "$tmp" || true
  chmod --reference="$conf" "$tmp"
  mv -f -- "$tmp" "$conf"
  trap - EXIT
  echo "removed $conf"
done
"""

_NFT_LIST_SCRIPT = r"""
PATH="$PATH:/usr/sbin:/sbin"
nft -a list chain "$1" "$2" "$3"
"""

_NFT_DELETE_SCRIPT = r"""
set -eu
PATH="$PATH:/usr/sbin:/sbin"
nft delete rule "$1" "$2" "$3" handle "$4"
"""

_SYSTEMCTL_SCRIPT = r"""
set -eu
verb=$1; unit=$2
case $verb in
  enable) systemctl enable --now -- "$unit.service" ;;
  disable) systemctl disable --now -- "$unit.service" ;;
  *) echo "unknown verb" >&2; exit 64 ;;
esac
"""

# Runs on a cluster node with its python3: one TCP connect, its outcome as one word.
_TCP_PROBE = r"""
import errno, socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
except socket.gaierror:
    print("unresolved"); sys.exit(0)
family, kind, proto, _, address = infos[0]
sock = socket.socket(family, kind, proto)
sock.settimeout(timeout)
try:
    sock.connect(address)
    print("open")
except socket.timeout:
    print("timeout")
except OSError as exc:
    if exc.errno == errno.ECONNREFUSED: print("refused")
    elif exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH): print("unreachable")
    else: print("error " + (exc.strerror or str(exc)))
finally:
    sock.close()
"""


def _sh(runner: Runner, script: str, *args: str, timeout: float = 60) -> CommandResult:
    return runner.run(["sh", "-c", script, "remotectl", *args], timeout=timeout)


@dataclass
class HostState:
    """What a host says about its pacemaker-remoted, port and firewall (nothing secret)."""

    unit: Optional[str]
    enabled: Optional[str]
    active: Optional[str]
    version_line: Optional[str]
    listening: Optional[bool]
    established: List[str] = field(default_factory=list)  # peer addresses on the port
    nft_ruleset: str = ""
    nft_persisted_in: List[str] = field(default_factory=list)  # config files holding node add's rule
    firewalld_state: str = ""  # what firewall-cmd --state says, when firewalld.service is active
    firewalld_zone: Optional[str] = None  # the zone of the address (else the default), or the marker's
    firewalld_runtime: bool = False  # the port is open in that zone now
    firewalld_permanent: bool = False  # ... and in the permanent configuration
    firewalld_marker: Optional[str] = None  # the zone node add recorded (hostfirewall.firewalld_marker)
    ufw_status: str = ""
    ufw_added: str = ""  # `ufw show added`

    @property
    def firewall(self) -> str:
        return hostfirewall.active_firewall(self.firewalld_state, self.ufw_status, self.nft_ruleset)


def host_state(runner: Runner, port: int, address: str = "", firewall: bool = False) -> HostState:
    """The host's facts; the firewall's only with ``firewall`` (firewall-cmd is slow to start, and a poll for the
    port does not need them), ``address`` (what cluster nodes connect to) picking the firewalld zone."""
    comment = lifecycle.nft_comment(port)
    result = _sh(runner, _STATE_SCRIPT, str(port), comment, comment.encode().hex(),
                 hostfirewall.firewalld_marker(port), address, "yes" if firewall else "no", *lifecycle.UNIT_NAMES)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot inspect the host: {result.first_error_line()}")
    state = HostState(unit=None, enabled=None, active=None, version_line=None, listening=None)
    ufw_added = []
    for line in result.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "unit":
            state.unit = None if rest == "-" else rest
        elif word == "enabled":
            state.enabled = rest or None
        elif word == "active":
            state.active = rest or None
        elif word == "version":
            state.version_line = rest.strip() or None
        elif word == "listening":
            state.listening = {"yes": True, "no": False}.get(rest)
        elif word == "established":
            state.established.extend(lifecycle.established_peers(rest))
        elif word == "nftrules":
            state.nft_ruleset = base64.b64decode(rest).decode("utf-8", "replace")
        elif word == "nftpersisted":
            state.nft_persisted_in.append(rest)
        elif word == "firewalld":
            state.firewalld_state = rest
        elif word == "fwzone":
            state.firewalld_zone = rest or None
        elif word in ("fwruntime", "fwpermanent"):
            setattr(state, {"fwruntime": "firewalld_runtime", "fwpermanent": "firewalld_permanent"}[word], True)
        elif word == "fwmarker":
            state.firewalld_marker = rest or None
        elif word == "ufwstatus":
            state.ufw_status = rest
        elif word == "ufwadded":
            ufw_added.append(rest)
    state.ufw_added = "\n".join(ufw_added)
    return state


def read_key_bytes(runner: Runner, path: str) -> bytes:
    """The bytes of a key file there, carried base64 on stdout (never argv)."""
    result = _sh(runner, _READ_KEY_SCRIPT, path)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot read the key {path}: {result.first_error_line()}")
    return base64.b64decode(result.stdout.strip())


def nft_open(runner: Runner, family: str, table: str, chain: str, port: int, comment: str) -> None:
    result = _sh(runner, _NFT_OPEN_SCRIPT, family, table, chain, str(port), comment)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot add the nftables rule: {result.first_error_line()}")


def nft_persist(runner: Runner, family: str, table: str, chain: str, port: int, comment: str) -> str:
    """Make the rule survive a reboot: `added FILE`, `present FILE`, or `none` (no nftables.conf found)."""
    result = _sh(runner, _NFT_PERSIST_SCRIPT, family, table, chain, str(port), comment)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot persist the nftables rule: {result.first_error_line()}")
    return result.stdout.strip() or "none"


def nft_unpersist(runner: Runner, comment: str) -> List[str]:
    """Drop the persisted rule lines; the files changed."""
    result = _sh(runner, _NFT_UNPERSIST_SCRIPT, comment)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot edit the nftables configuration: {result.first_error_line()}")
    return [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("removed ")]


def nft_handles(runner: Runner, family: str, table: str, chain: str, comment: str) -> List[int]:
    result = _sh(runner, _NFT_LIST_SCRIPT, family, table, chain)
    if result.rc != 0:
        return []
    return lifecycle.nft_rule_handles(result.stdout, comment)


def nft_close(runner: Runner, family: str, table: str, chain: str, comment: str) -> int:
    """Delete every rule carrying comment; how many were deleted."""
    handles = nft_handles(runner, family, table, chain, comment)
    for handle in handles:
        result = _sh(runner, _NFT_DELETE_SCRIPT, family, table, chain, str(handle))
        if result.rc != 0:
            raise TransportError(f"{runner.name}: cannot delete nftables rule {handle}: {result.first_error_line()}")
    return len(handles)


_TOOL_SCRIPT = r"""
PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
exec "$@"
"""


def _tool(runner: Runner, argv: List[str], what: str) -> CommandResult:
    """Run one firewall tool's argv (firewall-cmd, ufw) with sbin on the PATH; a failure says `what` failed."""
    result = _sh(runner, _TOOL_SCRIPT, *argv, timeout=120)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot {what}: {result.first_error_line()}")
    return result


def firewalld_open(runner: Runner, zone: str, port: int) -> None:
    """The trial: record the zone first (so a killed run's port is known to be node add's), then open the port in
    the running firewalld only; firewalld_keep makes it permanent once it proved reachable."""
    marker = hostfirewall.firewalld_marker(port)
    _tool(runner, ["mkdir", "-p", "--", hostfirewall.MARKER_DIR], f"create {hostfirewall.MARKER_DIR}")
    from remotectl.transport.files import write_file_atomic

    write_file_atomic(runner, marker, f"{zone}\n".encode(), mode=0o644)
    _tool(runner, hostfirewall.firewalld_port("add", zone, port), f"open {port}/tcp in firewalld zone {zone}")


def firewalld_keep(runner: Runner, zone: str, port: int, runtime: bool, permanent: bool) -> None:
    """Open the port in the zone where it is not open yet: now (``runtime``) and in the permanent configuration."""
    for wanted, flag in ((runtime, False), (permanent, True)):
        if wanted:
            _tool(runner, hostfirewall.firewalld_port("add", zone, port, permanent=flag),
                  f"open {port}/tcp in firewalld zone {zone}{' (permanent)' if flag else ''}")


def firewalld_close(runner: Runner, zone: str, port: int, running: bool = True) -> None:
    """Close the port node add opened in the zone, now and permanently (firewall-cmd only warns when it was not
    open; with firewalld stopped, firewall-offline-cmd edits the permanent configuration), then drop the marker."""
    for flags in ([dict(permanent=False), dict(permanent=True)] if running else [dict(offline=True)]):
        _tool(runner, hostfirewall.firewalld_port("remove", zone, port, **flags),
              f"close {port}/tcp in firewalld zone {zone}")
    from remotectl.transport.files import remove_file

    remove_file(runner, hostfirewall.firewalld_marker(port))


def ufw_open(runner: Runner, port: int) -> None:
    _tool(runner, hostfirewall.ufw_allow(port, lifecycle.nft_comment(port)), f"add the ufw rule for {port}/tcp")


def ufw_close(runner: Runner, port: int) -> None:
    _tool(runner, hostfirewall.ufw_delete(port, lifecycle.nft_comment(port)), f"delete the ufw rule for {port}/tcp")


def systemctl(runner: Runner, verb: str, unit: str) -> None:
    result = _sh(runner, _SYSTEMCTL_SCRIPT, verb, unit, timeout=120)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: systemctl {verb} {unit} failed: {result.first_error_line()}")


def wait_listening(runner: Runner, port: int, timeout: float, poll: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if host_state(runner, port).listening:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def tcp_probe(runner: Runner, host: str, port: int, timeout: float = 3.0) -> str:
    """From the runner's host: open | refused | timeout | unreachable | unresolved | error ... (one TCP connect)."""
    result = runner.run(["python3", "-c", _TCP_PROBE, host, str(port), str(timeout)], timeout=timeout + 30)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: the TCP probe did not run: {result.first_error_line()}")
    return (result.stdout.strip().splitlines() or ["error no answer"])[-1]
