"""The pure rules of `node add|remove` (pacemaker/lifecycle.py), its argv builders, and the action's refusals
before any change, against the scripted Pacemaker of tests/fakes.py and a recording host runner."""

import xml.etree.ElementTree as ET

import pytest

from remotectl.pacemaker import lifecycle, tools
from remotectl.pacemaker.inventory import inventory_from_cib

HOSTILE = '-rf --delete"<&>'


def test_remote_primitive_is_a_remote_connection_the_inventory_reads_back():
    xml = lifecycle.remote_primitive("spare1", "127.0.2.41", 3122, "60s")
    cib = ET.fromstring(f"<cib><configuration><crm_config/><nodes/><resources>{xml}</resources><constraints/>"
                        "</configuration><status/></cib>")
    node = inventory_from_cib(cib).node("spare1")
    assert (node.type, node.connection, node.address, node.port) == ("remote", "spare1", "127.0.2.41", 3122)
    primitive = cib.find(".//primitive")
    params = {nv.get("name"): nv.get("value") for nv in primitive.iter("nvpair")}
    assert params == {"server": "127.0.2.41", "port": "3122", "reconnect_interval": "60s"}
    assert [op.get("name") for op in primitive.iter("op")] == ["monitor"]


def test_remote_primitive_escapes_hostile_values():
    xml = lifecycle.remote_primitive("n1", HOSTILE, 3121, "60s")
    parsed = ET.fromstring(xml)
    assert {nv.get("value") for nv in parsed.iter("nvpair")} >= {HOSTILE}
    assert len(list(parsed.iter("primitive"))) == 1


@pytest.mark.parametrize("name,ok", [("spare1", True), ("_a.b-c", True), ("1node", False), ("a b", False),
                                     ("-rf", False), ("", False), ("é", False)])
def test_name_refusal(name, ok):
    assert (lifecycle.name_refusal(name) is None) is ok


def test_ids_in_cib_looks_at_the_configuration_only():
    cib = ET.fromstring('<cib><configuration><resources><primitive id="x"/></resources>'
                        '<nodes><node id="y" uname="y"/></nodes></configuration>'
                        '<status><node_state id="z" uname="z"><lrm id="z"/></node_state></status></cib>')
    assert lifecycle.ids_in_cib(cib, "x") == ["primitive"]
    assert lifecycle.ids_in_cib(cib, "y") == ["node"]
    assert lifecycle.ids_in_cib(cib, "z") == []
    assert lifecycle.node_entries(cib, "z") == (False, True)
    assert lifecycle.node_entries(cib, "y") == (True, False)


def test_constraints_naming_a_node_by_node_or_rule():
    cib = ET.fromstring(
        '<cib><configuration><constraints>'
        '<rsc_location id="a" rsc="r" node="spare1" score="100"/>'
        '<rsc_location id="b" rsc="r"><rule id="b-r" score="-INFINITY">'
        '<expression id="b-e" attribute="#uname" operation="eq" value="spare1"/></rule></rsc_location>'
        '<rsc_location id="c" rsc="r" node="spare2" score="100"/>'
        '<rsc_colocation id="d" rsc="r" with-rsc="s" score="INFINITY"/>'
        '</constraints></configuration></cib>')
    assert [c.get("id") for c in lifecycle.constraints_naming(cib, "spare1")] == ["a", "b"]


@pytest.mark.parametrize("cluster,host,refused", [
    ((2, 1, 5), (2, 1, 5), False), ((2, 1, 5), (3, 0, 3), False), ((3, 0, 3), (2, 1, 5), False),
    ((2, 1, 5), (1, 1, 24), False), ((3, 0, 3), (1, 1, 14), True), ((3, 0, 0), (1, 1, 15), False),
    ((1, 1, 24), (3, 0, 3), True), ((1, 1, 24), (2, 1, 5), False), ((2, 1, 5), None, True),
    (None, (2, 1, 5), False), (None, (1, 1, 10), False)])
def test_version_refusal(cluster, host, refused):
    """node add refuses only what Pacemaker refuses (ChangeLog 3.0.0), or a version it cannot read."""
    assert (lifecycle.version_refusal(cluster, host) is not None) is refused


@pytest.mark.parametrize("cluster,remote,severity", [
    ((2, 1, 5), (2, 1, 5), None), ((2, 1, 5), (2, 1, 9), None), ((3, 0, 3), (2, 1, 5), None),
    ((2, 1, 5), (3, 0, 3), "warning"), ((2, 0, 0), (2, 1, 5), "warning"), ((3, 0, 3), (1, 1, 14), "critical"),
    ((3, 0, 3), (1, 1, 15), None), ((1, 1, 24), (3, 0, 0), "critical"), ((1, 1, 24), (2, 1, 5), "warning")])
def test_version_compatibility(cluster, remote, severity):
    verdict = lifecycle.version_compatibility(cluster, remote)
    assert (verdict[0] if verdict else None) == severity
    if verdict:
        assert ".".join(map(str, remote)) in verdict[1]


NFT = """table inet filter { # handle 1
	chain input { # handle 1
		type filter hook input priority filter; policy drop;
		iif "lo" accept # handle 4
		tcp dport 22 accept # handle 6
		tcp dport 3121 accept comment "remotectl-node-add:3121" # handle 9
		tcp dport 3121 accept comment "someone-else" # handle 10
	}
	chain output { # handle 3
		type filter hook output priority filter; policy accept;
	}
}
"""


def test_nft_parsers():
    assert lifecycle.nft_input_chain(NFT) == ("inet", "filter", "input", "drop")
    assert lifecycle.nft_rule_handles(NFT, lifecycle.nft_comment(3121)) == [9]
    assert lifecycle.nft_rule_handles(NFT, lifecycle.nft_comment(3122)) == []
    assert lifecycle.nft_input_chain("table inet t {\n chain c {\n type filter hook output priority 0;\n }\n}") \
        is None


def test_established_peers():
    out = ("0      0      127.0.2.41:3121      127.0.2.11:41234\n"
           "0      0      [::ffff:127.0.2.41]:3121 [::ffff:127.0.2.12]:5555\n")
    assert lifecycle.established_peers(out) == ["127.0.2.11:41234", "[::ffff:127.0.2.12]:5555"]
    assert lifecycle.established_peers("") == []


def test_argv_builders_glue_hostile_names():
    assert tools.node_forget(HOSTILE) == ["crm_node", "--force", f"--remove={HOSTILE}"]
    assert tools.resource_meta_set(HOSTILE, "target-role", "Stopped") == [
        "crm_resource", f"--resource={HOSTILE}", "--meta", "--set-parameter=target-role",
        "--parameter-value=Stopped"]
    xml = lifecycle.element_xml("primitive", HOSTILE)
    assert ET.fromstring(xml).get("id") == HOSTILE
    assert tools.cib_delete_glued(xml) == ["cibadmin", "--delete", f"--xml-text={xml}"]


def test_host_name_of_ssh_destinations():
    from remotectl.actions.node_lifecycle import host_name

    assert host_name("root@spare1:2222") == "spare1"
    assert host_name("spare1") == "spare1"
    assert host_name("[fe80::1]:22") == "fe80::1"
    assert host_name("fe80::1") == "fe80::1"


class _HostRunner:
    """Answers host_state's script as a host whose remoted has the given established peers (or cannot be reached)."""

    def __init__(self, peers=(), error=None):
        self.name, self.peers, self.error, self.calls = "h", peers, error, 0

    def run(self, argv, **_kw):
        from remotectl.transport.base import CommandResult, TransportError

        self.calls += 1
        if self.error:
            raise TransportError(self.error)
        lines = ["unit pacemaker_remote", "listening yes"] + [f"established 0 0 10.0.0.9:3121 {p}" for p in self.peers]
        return CommandResult(tuple(argv), 0, "\n".join(lines) + "\n", "")


def _full_plan():
    from remotectl.actions.check import CheckPlan
    from remotectl.actions.targets import Target

    return CheckPlan(targets=[Target(label="10.0.0.9:3121", host="10.0.0.9", port=3121)], mode="full", timeout=1,
                     workers=1)


def test_check_full_refuses_when_the_host_itself_has_a_connection():
    from remotectl.actions.check import guard_full_on_hosts
    from remotectl.reports import RefusedError

    runner = _HostRunner(peers=["10.0.0.1:40000"])
    with pytest.raises(RefusedError, match="10.0.0.1:40000"):
        guard_full_on_hosts(_full_plan(), lambda _h: runner, force=False)
    plan = _full_plan()
    guard_full_on_hosts(plan, lambda _h: _HostRunner(), force=False)
    assert plan.reports == []
    forced = _HostRunner(peers=["10.0.0.1:40000"])
    guard_full_on_hosts(_full_plan(), lambda _h: forced, force=True)
    assert forced.calls == 0


def test_check_full_warns_when_the_host_cannot_be_asked():
    from remotectl.actions.check import guard_full_on_hosts

    plan = _full_plan()
    guard_full_on_hosts(plan, lambda _h: _HostRunner(error="h: cannot connect"), force=False)
    assert [r.code for r in plan.reports] == ["full-host-unchecked"]


def test_has_history():
    cib = ET.fromstring('<cib><status><node_state id="node1"><lrm id="node1"><lrm_resources>'
                        '<lrm_resource id="spare1" type="remote"/></lrm_resources></lrm></node_state></status></cib>')
    assert lifecycle.has_history(cib, "spare1") and not lifecycle.has_history(cib, "spare2")


@pytest.mark.parametrize("argv", [["node", "add", "spare1"], ["node", "add", "spare1", "--json"],
                                  ["node", "remove", "spare1", "--json"]])
def test_add_and_remove_without_yes_refuse_without_a_terminal(argv, capsys):
    """No --yes and no terminal to ask on: exit 4 before any cluster or host is contacted."""
    from remotectl import cli

    def no_cluster(_app):
        raise AssertionError("the cluster was contacted")

    assert cli.run(argv, cluster_factory=no_cluster) == 4
    assert "--yes" in capsys.readouterr().err


def test_remove_plan_of_a_guest_keeps_its_container():
    """node remove --dry-run of a guest: standby only (its container is not stopped), the remote-* meta of the
    container, forget, and the guest's own service and key; nothing is written anywhere."""
    from remotectl.actions.node_remove import RemoveOptions, remove_node
    from tests.fakes import FakeHost, cib_fixture, crm_mon_fixture, scripted_cluster

    cluster = scripted_cluster(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))
    guest = FakeHost("guest1")
    guest.put("/etc/pacemaker/authkey", b"k" * 32)
    result = remove_node(cluster, lambda host: guest, "guest1", RemoveOptions(dry_run=True))
    steps = {s.step: s for s in result.steps}
    assert result.outcome == "dry-run", result.steps
    assert list(steps) == ["drain", "resource", "forget", "service", "key"]
    assert "vm-guest1 keeps running" in steps["drain"].detail and "target-role" not in steps["drain"].detail
    assert steps["resource"].detail.startswith("delete remote-node from vm-guest1")
    changes = [c for c in cluster.runner.writes() if not any(a.startswith("--get-parameter=") for a in c)]
    assert changes == [] and guest.data("/etc/pacemaker/authkey") == b"k" * 32
