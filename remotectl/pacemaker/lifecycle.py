"""Pure rules for adding and removing remote nodes: the connection resource's XML, name clashes, version
compatibility, and the host-side facts (unit names, established connections, our nftables rule).

Nothing here runs anything. XML is built with ElementTree, never by string splicing.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import List, Optional, Tuple

DEFAULT_PORT = 3121
DEFAULT_RECONNECT_INTERVAL = "60s"  # a lost connection is retried instead of leaving the node stopped for good
MONITOR_INTERVAL = "30s"
MONITOR_TIMEOUT = "30s"
UNIT_NAMES = ("pacemaker_remote", "pacemaker-remote")  # Debian/RHEL name first, the alias some distros use
# The comment that marks the nftables (or ufw) rule `node add` inserted, so `node remove` deletes that rule only.
NFT_COMMENT_PREFIX = "remotectl-node-add:"

Version = Tuple[int, int, int]


_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def name_refusal(name: str) -> Optional[str]:
    """Why `name` cannot be the id of a connection resource (the CIB schema wants an XML ID), or None."""
    if not _XML_ID.match(name):
        return (f"{name!r} cannot be a resource id: it must start with a letter or _ and hold only letters, "
                "digits, _, . and - (use --name)")
    return None


def nft_comment(port: int) -> str:
    return f"{NFT_COMMENT_PREFIX}{port}"


def remote_primitive(name: str, server: str, port: int, reconnect_interval: str) -> str:
    """The `ocf:pacemaker:remote` connection resource, as the XML text `cibadmin --create --scope=resources` takes.
    Ids are derived from the (already checked) name; every value is an attribute set through ElementTree."""
    primitive = ElementTree.Element("primitive", {"id": name, "class": "ocf", "provider": "pacemaker",
                                                  "type": "remote"})
    attrs = ElementTree.SubElement(primitive, "instance_attributes", {"id": f"{name}-instance_attributes"})
    for key, value in (("server", server), ("port", str(port)), ("reconnect_interval", reconnect_interval)):
        ElementTree.SubElement(attrs, "nvpair", {"id": f"{name}-instance_attributes-{key}", "name": key,
                                                 "value": value})
    ops = ElementTree.SubElement(primitive, "operations")
    ElementTree.SubElement(ops, "op", {"id": f"{name}-monitor-interval-{MONITOR_INTERVAL}", "name": "monitor",
                                       "interval": MONITOR_INTERVAL, "timeout": MONITOR_TIMEOUT})
    return ElementTree.tostring(primitive, encoding="unicode")


def ids_in_cib(cib: ElementTree.Element, name: str) -> List[str]:
    """The tags of every element of the CIB's configuration whose id is `name` (ids are unique there: any clash
    makes the name unusable for a resource). The status section is history, not configuration."""
    configuration = cib.find("./configuration")
    if configuration is None:
        configuration = cib if cib.tag == "configuration" else ElementTree.Element("configuration")
    return [element.tag for element in configuration.iter() if element.get("id") == name]


def node_entries(cib: ElementTree.Element, name: str) -> Tuple[bool, bool]:
    """(a <node> in the nodes section, a <node_state> in the status section) named or with id `name`."""
    in_nodes = any(n.get("uname") == name or n.get("id") == name for n in cib.iter("node"))
    in_status = any(s.get("uname") == name or s.get("id") == name for s in cib.iter("node_state"))
    return in_nodes, in_status


def has_history(cib: ElementTree.Element, resource: str) -> bool:
    """Whether the status section still holds operation history of `resource` on some node. The history of a
    deleted connection resource makes the scheduler recreate its node as an orphan; without a node_state that
    node is unclean, and it gets fenced."""
    return any(entry.get("id") == resource for entry in cib.iter("lrm_resource"))


def constraints_naming(cib: ElementTree.Element, name: str) -> List[ElementTree.Element]:
    """Location constraints (and rules' expressions) that name the node: `node=NAME` or `#uname eq NAME`."""
    found = []
    constraints = cib.find("./configuration/constraints")
    if constraints is None:
        return found
    for constraint in constraints:
        if constraint.tag != "rsc_location":
            continue
        named = constraint.get("node") == name or any(
            expr.get("attribute") == "#uname" and expr.get("value") == name for expr in constraint.iter("expression"))
        if named:
            found.append(constraint)
    return found


def element_xml(tag: str, element_id: str) -> str:
    """`<TAG id="ID"/>` for `cibadmin --delete --xml-text=` (ElementTree quotes the id)."""
    return ElementTree.tostring(ElementTree.Element(tag, {"id": element_id}), encoding="unicode")


def _dotted(version: Version) -> str:
    return ".".join(map(str, version))


def version_compatibility(cluster: Version, remote: Version) -> Optional[Tuple[str, str]]:
    """(severity, why) when this pacemaker-remoted and these cluster nodes do not go together, else None: the one
    version rule (``node add`` refuses on "critical"; ``doctor`` reports both as ``version-skew``).

    Pacemaker's own rules (ChangeLog 3.0.0): Pacemaker Remote 3 refuses cluster nodes of 1.x, and 3.x cluster
    nodes refuse remotes of 1.1.14 or earlier. The executor protocol itself only needs major "1"
    (``LRMD_COMPATIBLE_PROTOCOL``), which every 1.1+ speaks, so any other mix connects; a 3.0.3 remote under a
    2.1.5 cluster works (lab). A remote of a newer release than the cluster is a warning: Pacemaker supports that
    mix as a step of a rolling upgrade, not as a state to stay in."""
    if remote >= (3, 0, 0) and cluster < (2, 0, 0):
        return ("critical", f"pacemaker-remoted {_dotted(remote)} refuses cluster nodes older than 2.0 "
                            f"(the cluster runs {_dotted(cluster)})")
    if cluster >= (3, 0, 0) and remote <= (1, 1, 14):
        return ("critical", f"Pacemaker {_dotted(cluster)} cluster nodes refuse pacemaker-remoted 1.1.14 and "
                            f"older ({_dotted(remote)})")
    if remote[:2] > cluster[:2]:
        return ("warning", f"pacemaker-remoted {_dotted(remote)} is newer than the cluster nodes' "
                           f"{cluster[0]}.{cluster[1]}: a mix for a rolling upgrade only; upgrade the cluster nodes")
    return None


def version_refusal(cluster: Optional[Version], host: Optional[Version]) -> Optional[str]:
    """Why ``node add`` will not add this pacemaker-remoted, or None: an unreadable version, or a mix Pacemaker
    refuses (:func:`version_compatibility`; an unknown cluster version is not held against the host)."""
    if host is None:
        return "the version of pacemaker-remoted could not be read"
    verdict = version_compatibility(cluster, host) if cluster is not None else None
    return verdict[1] if verdict is not None and verdict[0] == "critical" else None


_SS_LINE = re.compile(r"^\S+\s+\S+\s+\S+\s+(\S+)\s+(\S+)")


def established_peers(ss_output: str) -> List[str]:
    """Peer addresses of `ss -Htn state established '( sport = :PORT )'` lines (Recv-Q Send-Q Local Peer)."""
    peers = []
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            peers.append(fields[3])
    return peers


_HANDLE = re.compile(r'comment "([^"]*)".*# handle (\d+)\s*$')


def nft_rule_handles(listing: str, comment: str) -> List[int]:
    """Handles of the rules carrying `comment` in `nft -a list chain ...` output."""
    handles = []
    for line in listing.splitlines():
        match = _HANDLE.search(line)
        if match and match.group(1) == comment:
            handles.append(int(match.group(2)))
    return handles


def nft_input_chain(listing: str) -> Optional[Tuple[str, str, str, str]]:
    """(family, table, chain, policy) of the first base chain hooked to input in `nft list ruleset` output."""
    family = table = chain = None
    for raw in listing.splitlines():
        line = raw.strip()
        m = re.match(r"^table (\S+) (\S+) \{", line)
        if m:
            family, table = m.group(1), m.group(2)
            continue
        m = re.match(r"^chain (\S+) \{", line)
        if m:
            chain = m.group(1)
            continue
        m = re.match(r"^type filter hook input priority [^;]+;(?: policy (\w+);)?", line)
        if m and family and chain:
            return family, table, chain, m.group(1) or "accept"
    return None
