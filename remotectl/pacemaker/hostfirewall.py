"""Pure rules of the host firewall that `node add` opens and `node remove` closes again: which firewall is active,
what `node add`'s change is in that firewall's own terms, and the argv of firewall-cmd and ufw.

The change is always findable again: an nftables rule or a ufw rule carries the marker comment
(``lifecycle.nft_comment``); firewalld ports have no comments, so the zone `node add` opened the port in is
recorded in a marker file on the host. A port someone else opened is left alone by both commands.
Nothing here runs anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

MARKER_DIR = "/var/lib/remotectl"
NFTABLES, FIREWALLD, UFW, NONE = "nftables", "firewalld", "ufw", "none"


def firewalld_marker(port: int) -> str:
    """The file holding the zone where `node add` opened `port` in firewalld."""
    return f"{MARKER_DIR}/node-add-firewalld-{port}"


def active_firewall(firewalld_state: str, ufw_status: str, nft_ruleset: str) -> str:
    """The firewall that filters the host's input, from `firewall-cmd --state`, `ufw status` and
    `nft list ruleset`: firewalld when it runs, else ufw when active, else raw nftables when the ruleset has a table,
    else none. firewalld and ufw keep their own tables in nftables: while one is active, its own commands are
    used, never a raw nft rule underneath it (they would flush it, or it would not be theirs to report)."""
    if firewalld_state.strip() == "running":
        return FIREWALLD
    if ufw_status.splitlines()[:1] == ["Status: active"]:
        return UFW
    if re.search(r"^table ", nft_ruleset, re.M):
        return NFTABLES
    return NONE


@dataclass
class FirewallPlan:
    """What `node add` does to the firewall. action: None (nothing to do) | open | present (node add's rule is
    there) | trial-leftover (node add's rule only in the live rules: a killed run's trial) | other (someone else's
    rule opens the port). where: the nftables chain (family, table, chain) or the firewalld zone."""

    kind: str
    action: Optional[str] = None
    where: object = None
    runtime_open: bool = False  # firewalld: the port is open in the zone now
    permanent_open: bool = False  # ... and in the permanent configuration

    @property
    def where_text(self) -> str:
        if self.kind == NFTABLES:
            return " ".join(self.where)
        if self.kind == FIREWALLD:
            return f"zone {self.where}"
        return ""


def ufw_rule_state(show_added: str, port: int, comment: str) -> Optional[str]:
    """From `ufw show added`: "ours" when node add's rule (allow PORT/tcp with its comment) is there, "other"
    when another rule allows the port, else None."""
    state = None
    for line in show_added.splitlines():
        words = line.split()
        if words[:2] != ["ufw", "allow"]:
            continue
        ports = {w for w in words[2:] if re.fullmatch(rf"{port}(/tcp)?", w)}
        if not ports and not ("port" in words and words[words.index("port") + 1:][:1] == [str(port)]):
            continue
        if f"'{comment}'" in words or f'"{comment}"' in words:
            return "ours"
        state = "other"
    return state


def ufw_allow(port: int, comment: str) -> List[str]:
    return ["ufw", "allow", f"{port}/tcp", "comment", comment]


def ufw_delete(port: int, comment: str) -> List[str]:
    """Deletes node add's rule: ufw matches the rule spec (and its comment)."""
    return ["ufw", "delete", "allow", f"{port}/tcp", "comment", comment]


def firewalld_port(verb: str, zone: str, port: int, permanent: bool = False, offline: bool = False) -> List[str]:
    """`firewall-cmd [--permanent] --zone=Z --{add,remove,query}-port=P/tcp` (the zone glued to its option);
    offline: `firewall-offline-cmd`, which edits the permanent configuration while firewalld is stopped."""
    if verb not in ("add", "remove", "query"):
        raise ValueError(verb)
    tool = ["firewall-offline-cmd"] if offline else ["firewall-cmd", *(["--permanent"] if permanent else [])]
    return [*tool, f"--zone={zone}", f"--{verb}-port={port}/tcp"]


def firewalld_plan(running_open: bool, permanent_open: bool, marker_zone: Optional[str], zone: str) -> FirewallPlan:
    """node add's firewalld step: the marker file makes the port node add's; without it an open port is someone
    else's. The marker is written before the runtime port is opened, the permanent port last, so a marker
    without the permanent port is a trial a killed run left (opened again when it was killed before the port)."""
    if marker_zone:
        action = "present" if permanent_open else "trial-leftover" if running_open else "open"
        return FirewallPlan(FIREWALLD, action, marker_zone, running_open, permanent_open)
    if running_open or permanent_open:
        return FirewallPlan(FIREWALLD, "other", zone, running_open, permanent_open)
    return FirewallPlan(FIREWALLD, "open", zone)


def ufw_plan(show_added: str, port: int, comment: str) -> FirewallPlan:
    """node add's ufw step. ufw rules are kept at once (no trial state): a rule with node add's comment is
    node add's, whatever run made it."""
    state = ufw_rule_state(show_added, port, comment)
    return FirewallPlan(UFW, {"ours": "present", "other": "other", None: "open"}[state])
