"""The one crm_mon reader (remotectl/pacemaker/status.py) on the shared fixtures in tests/data/crm_mon."""

import pytest

from remotectl.pacemaker.status import cib_node_versions, contract_nodes, node_version, read_status
from remotectl.reports import RemotectlError
from tests.fakes import crm_mon_fixture


def types(name):
    return {n.name: n.type for n in read_status(crm_mon_fixture(name)).nodes.values()}


def test_every_kind_from_a_real_crm_mon():
    status = read_status(crm_mon_fixture("mixed.xml"))
    assert types("mixed.xml") == {
        "guest1": "guest", "httpd-bundle-0": "bundle", "httpd-bundle-1": "bundle", "node1": "cluster",
        "node2": "cluster", "node3": "cluster", "remote1": "remote", "remote2": "remote", "remote10": "remote",
    }
    bundle = status.node("httpd-bundle-0")
    assert (bundle.container, bundle.bundle, bundle.container_hosts) == ("httpd-bundle-podman-0", "httpd-bundle",
                                                                        bundle.hosts)
    assert status.node("remote1").connection_hosts == status.node("remote1").hosts and status.node("remote1").hosts
    assert status.node("remote2").standby and status.node("remote2").summary() == "online, standby"
    assert status.dc_version and status.dc_version.startswith("2.1.5")


def test_states_containers_and_clone_instances():
    status = read_status(crm_mon_fixture("fence-cases.xml"))
    nodes = status.nodes
    assert nodes["guest1"].container == "vm-guest1" and nodes["guest1"].container_hosts == ("node1",)
    assert nodes["guest2"].container_managed is False
    assert nodes["httpd-bundle-0"].container_hosts == ("cluster01",)
    assert nodes["httpd-bundle-1"].container_hosts == () and nodes["httpd-bundle-1"].summary() == "OFFLINE"
    assert nodes["remote1"].standby and nodes["remote1"].resources_running == 0
    assert nodes["remote2"].summary() == "UNCLEAN, maintenance"
    assert status.resources["inst"].nodes == ("node1", "guest1")  # clone instances merged
    assert status.resources["dummy1"].nodes == ("guest1",)


def test_a_guest_named_like_a_bundle_replica_is_a_guest():
    # regression: the old `nodes` reader called web-0 (container web-podman-0) a bundle node by its name alone;
    # crm_mon's resources section shows web-podman-0 in no bundle, and the CIB makes it a plain guest
    assert types("guest-named-like-bundle-replica.xml")["web-0"] == "guest"


def test_without_a_resources_section_replica_naming_decides():
    # crm_mon --exclude=resources: nothing but Pacemaker's replica naming (B-i with container B-podman-i) is left
    status = read_status(crm_mon_fixture("bundle-without-resources-section.xml"))
    replica = status.node("httpd-bundle-0")
    assert (replica.type, replica.bundle) == ("bundle", "httpd-bundle")


def test_ping_nodes_are_read_but_not_contract_nodes():
    # regression: one old reader dropped ping nodes, the other called them "unknown"
    status = read_status(crm_mon_fixture("node-kinds-with-ping.xml"))
    assert status.node("pinger").type == "ping"
    assert "pinger" not in {n.name for n in contract_nodes(status)}


@pytest.mark.parametrize("document, message", [
    (b'<pacemaker-result><status code="0" message="OK"/></pacemaker-result>', "no <nodes>"),
    (b'<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>',
     "crm_mon failed: Not connected"),
    (b"<pacemaker-result><nodes>", "crm_mon output"),
])
def test_failures_are_one_line(document, message):
    with pytest.raises(RemotectlError, match=message) as err:
        read_status(document)
    assert "\n" not in err.value.message


def test_versions_real_crm_mon_of_a_mixed_lab():
    """A 2.1.5 cluster with a 3.0.3 remote2 (lab, `--pacemaker mixed`): only the DC's release is in the status."""
    status = read_status(crm_mon_fixture("lab-2.1.5-with-3.0.3-remote.xml"))
    versions = {n.name: (n.pacemaker_version, n.feature_set) for n in status.nodes.values()}
    assert versions == {"node1": ("2.1.5", "3.16.1"), "node2": (None, "3.16.1"), "remote1": (None, None),
                        "remote2": (None, None), "guest1": (None, None)}
    assert status.node("node1").is_dc and not status.node("node2").is_dc


def test_versions_real_crm_mon_3_0():
    status = read_status(crm_mon_fixture("lab-3.0.3.xml"))
    assert status.node("node1").pacemaker_version == "3.0.3"  # current_dc version="3.0.3-3.0.3"
    assert status.node("node2").feature_set == "3.20.5"
    assert [n.name for n in status.nodes.values() if n.pacemaker_version] == ["node1"]


@pytest.mark.parametrize("is_dc,dc_version,expected", [
    (True, "2.1.5-a3f44794f94", "2.1.5"), (True, "3.0.3-3.0.3", "3.0.3"), (False, "2.1.5-a3f44794f94", None),
    (True, None, None), (True, "", None), (True, "garbage\x1b[31m", None), (True, "2.1", "2.1")])
def test_node_version_rule(is_dc, dc_version, expected):
    assert node_version(is_dc, dc_version) == expected


@pytest.mark.parametrize("name,dc,dc_version,feature_set", [
    ("lab-3.0.3-cibadmin.xml", "node1", "3.0.3", "3.20.5"),
    ("lab-2.1.5-with-3.0.3-remote-cibadmin.xml", "node1", "2.1.5", "3.16.1")])
def test_cib_node_versions(name, dc, dc_version, feature_set):
    import xml.etree.ElementTree as ElementTree
    from pathlib import Path

    root = ElementTree.fromstring((Path(__file__).parent.parent / "data" / "cib-versions" / name).read_text())
    versions = cib_node_versions(root)
    assert versions[dc] == (dc_version, feature_set)
    assert versions["node2"] == (None, feature_set)
    assert versions["remote1"] == versions["remote2"] == versions["guest1"] == (None, None)


def test_cib_feature_set_as_crm_mon_prints_it():
    """crm_mon 2.1.5 on such a dump: "<3.15.1" for an online cluster node without #feature-set, nothing for a
    node not expected up."""
    import xml.etree.ElementTree as ElementTree
    from pathlib import Path

    text = (Path(__file__).parent.parent / "data" / "cib-versions" /
            "lab-2.1.5-with-3.0.3-remote-cibadmin.xml").read_text()
    root = ElementTree.fromstring(text.replace('name="#feature-set" value="3.16.1"/>', 'name="other" value="x"/>'))
    root.find("./status/node_state[@uname='node1']").set("expected", "down")
    versions = cib_node_versions(root)
    assert versions["node2"] == (None, "<3.15.1") and versions["node1"] == ("2.1.5", None)
