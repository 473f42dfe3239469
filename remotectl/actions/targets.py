"""TARGET arguments: a node name known to the cluster, or a host. One record and one resolver for the commands that
reach nodes, whether over SSH (``authkey push/verify/rotate``) or with a TCP probe of pacemaker-remoted (``check``).

How a command reaches its targets is a :class:`Reach`: :data:`SSH` (every node type, cluster nodes by name, bundle
replicas listed but skipped, duplicates dropped) or :func:`psk` (remote, guest and bundle nodes at the address and
port the cluster connects to; a host is matched back to a node by address and port).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable, FrozenSet, List, Optional, Sequence, Tuple

from remotectl.actions.nodes import connect_address, find_node, ssh_destination
from remotectl.pacemaker.values import host_address_problem
from remotectl.reports import ExitCode, RemotectlError, Reporter

DEFAULT_PORT = 3121  # pacemaker-remoted's port (psk_probe.DEFAULT_PORT; not imported: that module is large)
PEER_TYPES = ("remote", "guest", "bundle")
BUNDLE_SKIP = "bundle replica: its key comes from the bundle's container host, not over SSH"


@dataclass(frozen=True)
class Target:
    """One node or host to work on."""

    label: str  # how results name it: the node name for --all, else the TARGET as typed
    host: str  # where to connect: an SSH destination [user@]host[:port] (SSH), or a host name or address (psk)
    port: Optional[int] = None  # the TCP port (psk); an SSH destination carries its own
    node: Optional[str] = None  # the cluster's name for it, when it is (or matches) a node
    type: Optional[str] = None  # cluster|remote|guest|bundle
    resource: Optional[str] = None  # the connection (remote) or container (guest) resource
    connected: bool = False  # an online remote/guest/bundle node: the cluster holds a connection to it
    skip: Optional[str] = None  # why this node is listed but not handled
    error: Optional[str] = None  # why this node cannot be reached at all (a malformed address in the CIB)


def _node_target(node, label: str, host: str, port: Optional[int], skip: Optional[str] = None,
                 error: Optional[str] = None) -> Target:
    return Target(label=label, host=host, port=port, node=node.name, type=node.type, resource=node.resource,
                  connected=bool(node.online) and node.type in PEER_TYPES, skip=skip, error=error)


class Reach:
    """How one command reaches targets; the resolver asks it each question where SSH and the probe differ."""

    unique = False  # drop targets that reach the same place twice

    def takes(self, node) -> bool:
        raise NotImplementedError

    def split(self, spec: str) -> Tuple[str, Optional[int]]:
        """TARGET text -> (name to look up among the nodes, explicit port or None)."""
        raise NotImplementedError

    def node_target(self, node, label: str, port: Optional[int]) -> Target:
        raise NotImplementedError

    def host_target(self, spec: str, host: str, port: Optional[int], nodes: Sequence) -> Target:
        raise NotImplementedError


class _Ssh(Reach):
    unique = True

    def takes(self, node) -> bool:
        return True

    def split(self, spec: str) -> Tuple[str, Optional[int]]:
        return spec, None

    def node_target(self, node, label: str, port: Optional[int]) -> Target:
        host = ssh_destination(node)
        problem = host_address_problem(host)
        error = None
        if problem:  # fails this node alone; never parsed as [user@]host[:port]
            what = "its name" if node.type == "cluster" else "its address in the CIB"
            error = f"cannot reach it over SSH: {what}, {host!r}, is not a host name or IP address ({problem})"
        return _node_target(node, label, host, None, BUNDLE_SKIP if node.type == "bundle" else None, error)

    def host_target(self, spec: str, host: str, port: Optional[int], nodes: Sequence) -> Target:
        from remotectl.transport.ssh import parse_destination

        parse_destination(spec)  # raises a one-line TransportError for nonsense
        return Target(label=spec, host=spec)


SSH = _Ssh()


class _Psk(Reach):
    def __init__(self, port: Optional[int], addresses: Optional[Callable[[str], FrozenSet[str]]]) -> None:
        self.port = port
        self.addresses = addresses

    def takes(self, node) -> bool:
        return node.type in PEER_TYPES

    def split(self, spec: str) -> Tuple[str, Optional[int]]:
        return split_target(spec)

    def node_target(self, node, label: str, port: Optional[int]) -> Target:
        return _node_target(node, label, connect_address(node), port or self.port or node.port or DEFAULT_PORT)

    def host_target(self, spec: str, host: str, port: Optional[int], nodes: Sequence) -> Target:
        target_port = port or self.port or DEFAULT_PORT
        for candidate in nodes:
            if not self.takes(candidate) or (candidate.port or DEFAULT_PORT) != target_port:
                continue
            address = connect_address(candidate)
            if address == host or (self.addresses is not None
                                   and self.addresses(host) & self.addresses(address)):
                return Target(label=spec.strip(), host=host, port=target_port, node=candidate.name,
                              type=candidate.type, resource=candidate.resource, connected=bool(candidate.online))
        return Target(label=spec.strip(), host=host, port=target_port)


def psk(port: Optional[int] = None, addresses: Optional[Callable[[str], FrozenSet[str]]] = None) -> Reach:
    """The probe's reach: ``port`` overrides the CIB's; with ``addresses`` (name -> IP addresses, e.g.
    transport.dns.AddressCache().addresses) a host also matches a node whose address resolves the same."""
    return _Psk(port, addresses)


def resolve_targets(specs: Sequence[str], nodes: Optional[Sequence], *, all_nodes: bool = False,
                    reach: Reach = SSH) -> List[Target]:
    """TARGETs (or --all: every node ``reach`` takes) -> Targets. A node name known to the cluster becomes the
    address the cluster uses; anything else is a host for ``reach`` to parse."""
    nodes = list(nodes or ())
    targets = [reach.node_target(n, n.name, None) for n in nodes if reach.takes(n)] if all_nodes else []
    for spec in specs:
        host, port = reach.split(spec)
        node = find_node(nodes, host)
        if node is not None and reach.takes(node):
            targets.append(reach.node_target(node, spec.strip(), port))
        else:
            targets.append(reach.host_target(spec, host, port, nodes))
    return _unique(targets) if reach.unique else targets


def _unique(targets: Sequence[Target]) -> List[Target]:
    seen = set()
    unique = []
    for target in targets:
        key = ("skip", target.label) if target.skip else ("error", target.label) if target.error else target.host
        if key not in seen:
            seen.add(key)
            unique.append(target)
    return unique


def looks_like_destination(spec: str) -> bool:
    """An explicit SSH destination, never a node name: resolving it needs no node list."""
    return "@" in spec or ":" in spec or spec.startswith("[")


def load_targets(specs: Sequence[str], *, all_nodes: bool, cluster_factory: Callable[[], object],
                 reporter: Reporter) -> List[Target]:
    """SSH targets. Asks the cluster for its nodes when --all is given (required) or some TARGET could be a node
    name (best effort: when the cluster cannot be asked, such TARGETs are used as SSH host names, with a warning)."""
    if not all_nodes and not specs:
        raise RemotectlError("no targets: give node names or [user@]host[:port], or --all")
    nodes = None
    if all_nodes or any(not looks_like_destination(s) for s in specs):
        from remotectl.actions.nodes import list_nodes

        try:
            nodes = list_nodes(cluster_factory()).nodes
        except RemotectlError as exc:
            if all_nodes:
                raise RemotectlError(f"--all needs the cluster's node list: {exc.message}") from None
            reporter.warning(f"cannot list the cluster's nodes ({exc.message}); using the targets as SSH hosts",
                             code="no-node-list")
    targets = resolve_targets(specs, nodes, all_nodes=all_nodes, reach=SSH)
    if not targets:
        raise RemotectlError("the cluster has no nodes to work on")
    return targets


def split_target(text: str) -> Tuple[str, Optional[int]]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, explicit port or None)."""
    raw = text.strip()
    if not raw:
        raise RemotectlError("empty target", exit_code=ExitCode.USAGE)
    port_text = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise RemotectlError(f"invalid target {text!r} (use [ADDRESS]:PORT for IPv6)", exit_code=ExitCode.USAGE)
        port_text = rest[1:] if rest else None
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    else:
        host = raw  # a name, an IPv4 address or a bare IPv6 address
    if not host:
        raise RemotectlError(f"invalid target {text!r}: empty host", exit_code=ExitCode.USAGE)
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RemotectlError(f"invalid port in target {text!r}", exit_code=ExitCode.USAGE)
    return host, int(port_text)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
