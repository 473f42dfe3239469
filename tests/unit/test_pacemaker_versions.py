"""Where Pacemaker 2.1.5 and 3.0.x read a CIB differently, the offline model follows the version it is told (or the
CIB's dc-version): renamed cluster options, no-quorum-policy=fence, the in-memory schema upgrade. The fixtures are
the ones tests/integration/test_nodes_vs_crm_mon.py judges with the real crm_mon of both versions."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from remotectl.pacemaker import values
from remotectl.pacemaker.inventory import inventory_from_cib
from remotectl.pacemaker.nodes import nodes_from_cib
from remotectl.pacemaker.simulate import schema
from remotectl.reports import RemotectlError

DATA = Path(__file__).resolve().parents[1] / "data"
V215, V303 = (2, 1, 5), (3, 0, 3)


def _states(name: str, version):
    cib = (DATA / name).read_bytes()
    return {n.name: (n.type, n.online, n.unclean) for n in nodes_from_cib(cib, pacemaker_version=version)}


@pytest.mark.parametrize("options,version,expected", [
    ({"fencing-enabled": "false", "stonith-enabled": "true"}, V303, "false"),   # the new name wins
    ({"fencing-enabled": "false", "stonith-enabled": "true"}, (3, 0, 1), "true"),  # before 3.0.2: old name only
    ({"stonith-enabled": "false"}, V303, "false"),                           # the old name when the new is absent
    ({"fencing-enabled": "maybe", "stonith-enabled": "false"}, V303, None),  # invalid new value: the default
    ({"stonith-enabled": "maybe"}, V303, None),
    ({}, V303, None),
])
def test_fencing_enabled_alias(options, version, expected):
    assert values.cluster_option(options, "fencing-enabled", version, values.is_boolean) == expected
    # asking by the old name resolves the same way
    assert values.cluster_option(options, "stonith-enabled", version, values.is_boolean) == expected


def test_every_alias_resolves_new_name_first():
    for new, old in values.CLUSTER_OPTION_ALIASES.items():
        assert values.cluster_option({new: "a", old: "b"}, new, V303) == "a"
        assert values.cluster_option({new: "a", old: "b"}, new, V215) == "b"
        assert values.cluster_option({old: "b"}, old, V303) == "b"


@pytest.mark.parametrize("version,accepted", [(V215, False), ((2, 1, 9), True), (V303, True)])
def test_no_quorum_policy_fence_is_valid_from_2_1_9(version, accepted):
    assert values.valid_no_quorum_policy(version)("Fence") is accepted
    assert values.valid_no_quorum_policy(version)("suicide") is True


def test_fencing_enabled_false_remote_with_failed_connection():
    # the case: crm_mon 3.0.3 shows remote1 OFFLINE and clean, 2.1.5 (stonith-enabled=true) UNCLEAN
    name = "cib-handwritten/fencing-enabled-false-remote-failed.xml"
    assert _states(name, V303)["remote1"] == ("remote", False, False)
    assert _states(name, V215)["remote1"] == ("remote", False, True)
    assert _states(name, None)["remote1"] == ("remote", False, False)  # dc-version 3.0.3


def test_invalid_fencing_enabled_means_the_default():
    name = "cib-handwritten/fencing-enabled-invalid.xml"
    assert _states(name, V303)["remote1"] == ("remote", False, True)
    assert _states(name, V215)["remote1"] == ("remote", False, False)


def test_no_quorum_policy_fence_fences_the_partition():
    name = "cib-handwritten/no-quorum-policy-fence.xml"
    after, before = _states(name, V303), _states(name, V215)
    assert after["node1"] == after["node2"] == ("cluster", True, True)
    assert after["remote1"] == ("remote", True, False)
    assert before["node1"] == ("cluster", True, False)


@pytest.mark.parametrize("name", ["cib-handwritten/old-schema-1.2-normal-nodes.xml",
                                  "cib-handwritten/old-schema-2.0-underscore-options.xml"])
@pytest.mark.parametrize("version", [V215, V303])
def test_old_schema_lists_normal_nodes_as_cluster_nodes(name, version):
    states = _states(name, version)
    assert {n for n, s in states.items() if s[0] == "cluster"} == {"node1", "node2", "node3", "node4", "node5"}
    assert "node4" in inventory_from_cib((DATA / name).read_bytes()).names()


def test_underscore_option_spelling_of_old_schemas():
    states = _states("cib-handwritten/old-schema-2.0-underscore-options.xml", V303)
    assert states["node4"] == ("cluster", False, False)  # stonith_enabled=false: never-seen node4 is clean


def _cib(validate_with, body=""):
    attr = f' validate-with="{validate_with}"' if validate_with is not None else ""
    return (f'<cib{attr}><configuration><crm_config/><nodes><node id="1" uname="n1" type="normal"/></nodes>'
            f'<resources>{body}</resources></configuration><status/></cib>')


@pytest.mark.parametrize("validate_with", ["pacemaker-0.7", "transitional-0.6", "pacemaker-1.1", "pcmk"])
def test_too_old_schema_is_refused_in_one_line(validate_with):
    with pytest.raises(RemotectlError) as info:
        nodes_from_cib(_cib(validate_with))
    assert validate_with in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("validate_with,warned", [
    ("pacemaker-4.0", False), ("pacemaker-4.1", True), ("pacemaker-5.0", True), ("pacemaker-next", True),
    ("pacemaker-3.9", False), ("none", False), (None, False)])
def test_newer_schema_is_listed_with_a_report(validate_with, warned):
    root = ElementTree.fromstring(_cib(validate_with).replace(' type="normal"', ""))
    assert [n.name for n in nodes_from_cib(root)] == ["n1"]
    reports = schema.schema_reports(root)
    assert [r.code for r in reports] == (["cib-schema-newer"] if warned else [])


def test_dc_version_decides_without_a_version():
    root = ElementTree.fromstring(
        '<cib><configuration><crm_config><cluster_property_set id="o">'
        '<nvpair id="v" name="dc-version" value="2.1.5-a3f44794f94"/></cluster_property_set></crm_config>'
        '</configuration></cib>')
    assert schema.pacemaker_version(root) == V215
    assert schema.pacemaker_version(ElementTree.fromstring("<cib/>")) == schema.NEWEST_KNOWN


def test_3_0_drops_rkt_bundles_and_nagios_resources_of_pre_4_0_cibs():
    body = ('<bundle id="D"><rkt image="x" replicas="1"/><network control-port="3121"/>'
            '<primitive class="ocf" id="D-a" provider="heartbeat" type="apache"/></bundle>'
            '<primitive class="nagios" id="vm" type="check_tcp"><meta_attributes id="m">'
            '<nvpair id="m1" name="remote-node" value="g1"/></meta_attributes></primitive>')
    cib = _cib("pacemaker-3.9", body).replace(' type="normal"', "")
    assert sorted(n.name for n in nodes_from_cib(cib, pacemaker_version=V215)) == ["D-0", "g1", "n1"]
    assert [n.name for n in nodes_from_cib(cib, pacemaker_version=V303)] == ["n1"]


def test_upgrade_never_changes_the_callers_tree():
    root = ElementTree.fromstring(_cib("pacemaker-1.2"))
    nodes_from_cib(root, pacemaker_version=V303)
    assert root.find("configuration/nodes/node").get("type") == "normal"


def test_node_types_as_3_0_reads_them():
    name = "cib-handwritten/node-types-as-pacemaker-reads-them.xml"
    assert sorted(_states(name, V303)) == ["C-0", "R2", "node1"]
    assert sorted(_states(name, V215)) == ["C-0", "D-0", "D-1", "R2", "guestY", "node1", "old-remote"]


def test_pending_nodes_from_2_1_7():
    name = "cib-handwritten/pending-nodes.xml"
    cib = (DATA / name).read_bytes()
    new = {n.name: (n.online, n.standby, n.unclean) for n in nodes_from_cib(cib, now=1_800_000_000,
                                                                          pacemaker_version=V303)}
    old = {n.name: (n.online, n.standby, n.unclean) for n in nodes_from_cib(cib, pacemaker_version=V215,
                                                                          membership_timestamps=False)}
    assert new["node2"] == (True, True, False) and new["node3"] == (True, False, True)
    assert old["node2"] == (False, False, True) and old["node3"] == (False, False, False)
    # within the timeout the member is only pending
    soon = {n.name: n.unclean for n in nodes_from_cib(cib, now=1_600_000_030, pacemaker_version=V303)}
    assert soon["node3"] is False
