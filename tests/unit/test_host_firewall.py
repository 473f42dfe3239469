"""Which firewall node add opens the port in, and the argv it uses (pacemaker/hostfirewall.py), and the plan the
action derives from a host's state (no host runs here; tests/integration/test_node_lifecycle_lab.py has the
real firewalld and ufw)."""

import pytest

from remotectl.actions.node_lifecycle import firewall_plan
from remotectl.pacemaker import hostfirewall, lifecycle
from remotectl.transport.hostops import HostState

COMMENT = lifecycle.nft_comment(3121)
NFT_DROP = "table inet filter {\n chain input {\n  type filter hook input priority filter; policy drop;\n }\n}\n"
UFW_OURS = ("Added user rules (see 'ufw status' for running firewall):\nufw allow 22/tcp\n"
            f"ufw allow 3121/tcp comment '{COMMENT}'\n")


@pytest.mark.parametrize("firewalld,ufw,nft,active", [
    ("running", "Status: active", NFT_DROP, "firewalld"),  # firewalld wins over everything under it
    ("", "Status: active\n\nTo  Action  From", NFT_DROP, "ufw"),  # ufw's own iptables-nft tables: not raw nft
    ("not running", "Status: inactive", NFT_DROP, "nftables"),
    ("", "", "", "none"),
    ("", "Status: inactive", "", "none"),
])
def test_active_firewall(firewalld, ufw, nft, active):
    assert hostfirewall.active_firewall(firewalld, ufw, nft) == active


@pytest.mark.parametrize("added,state", [
    (UFW_OURS, "ours"),
    ("ufw allow 22/tcp\nufw allow 3121/tcp\n", "other"),
    ("ufw allow 3121\n", "other"),
    ("ufw allow proto tcp from 10.0.0.0/8 to any port 3121\n", "other"),
    ("ufw allow 31210/tcp\nufw deny 3121/tcp\n", None),
    ("ufw allow 3121/tcp comment 'remotectl-node-add:3122'\n", "other"),
    ("", None),
])
def test_ufw_rule_state(added, state):
    assert hostfirewall.ufw_rule_state(added, 3121, COMMENT) == state


def test_argv_builders_keep_names_glued():
    hostile = "-rf --x"
    assert hostfirewall.firewalld_port("add", hostile, 3121) == [
        "firewall-cmd", f"--zone={hostile}", "--add-port=3121/tcp"]
    assert hostfirewall.firewalld_port("query", "public", 3122, permanent=True) == [
        "firewall-cmd", "--permanent", "--zone=public", "--query-port=3122/tcp"]
    assert hostfirewall.firewalld_port("remove", "public", 3121, offline=True) == [
        "firewall-offline-cmd", "--zone=public", "--remove-port=3121/tcp"]
    with pytest.raises(ValueError):
        hostfirewall.firewalld_port("flush", "public", 3121)
    assert hostfirewall.ufw_allow(3121, COMMENT) == ["ufw", "allow", "3121/tcp", "comment", COMMENT]
    assert hostfirewall.ufw_delete(3121, COMMENT) == ["ufw", "delete", "allow", "3121/tcp", "comment", COMMENT]
    assert hostfirewall.firewalld_marker(3121) == "/var/lib/remotectl/node-add-firewalld-3121"


def _state(**kw):
    return HostState(unit="pacemaker_remote", enabled="disabled", active="inactive", version_line="2.1.5",
                     listening=False, **kw)


@pytest.mark.parametrize("kw,plan", [
    (dict(firewalld_state="running", firewalld_zone="public", nft_ruleset=NFT_DROP), ("firewalld", "open", "public")),
    (dict(firewalld_state="running", firewalld_zone="dmz", firewalld_marker="dmz", firewalld_runtime=True),
     ("firewalld", "trial-leftover", "dmz")),  # a killed run's trial: the marker, no permanent port yet
    (dict(firewalld_state="running", firewalld_zone="dmz", firewalld_marker="dmz"),
     ("firewalld", "open", "dmz")),  # killed between the marker and the port: the trial again, in that zone
    (dict(firewalld_state="running", firewalld_zone="dmz", firewalld_marker="dmz", firewalld_runtime=True,
          firewalld_permanent=True), ("firewalld", "present", "dmz")),
    (dict(firewalld_state="running", firewalld_zone="public", firewalld_permanent=True),
     ("firewalld", "other", "public")),  # someone else's open port: left alone
    (dict(ufw_status="Status: active", ufw_added="ufw allow 22/tcp"), ("ufw", "open", None)),
    (dict(ufw_status="Status: active", ufw_added=UFW_OURS), ("ufw", "present", None)),
    (dict(ufw_status="Status: active", ufw_added="ufw allow 3121/tcp"), ("ufw", "other", None)),
    (dict(nft_ruleset=NFT_DROP), ("nftables", "open", ("inet", "filter", "input"))),
    (dict(nft_ruleset=NFT_DROP.replace("policy drop", "policy accept")), ("nftables", None, ("inet", "filter",
                                                                                               "input"))),
    (dict(), ("none", None, None)),
])
def test_firewall_plan_from_the_host_state(kw, plan):
    got = firewall_plan(_state(**kw), 3121)
    assert (got.kind, got.action, got.where) == plan
