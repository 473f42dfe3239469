"""remotectl.pacemaker.inventory: the configured nodes, which must be the nodes the full offline model lists."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from remotectl.pacemaker.inventory import ConfiguredNode, Connection, inventory_from_cib
from remotectl.pacemaker.nodes import nodes_from_cib
from remotectl.reports import RemotectlError

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = [p for d in ("cib", "cib-lab", "cib-handwritten") for p in sorted((DATA / d).glob("*.xml"))]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inventory_agrees_with_the_full_model(path):
    data = path.read_bytes()
    inventory = inventory_from_cib(data)
    listed = nodes_from_cib(data)
    assert sorted((n.name, n.type) for n in inventory.nodes) == sorted((n.name, n.type) for n in listed)
    for node in listed:
        configured = inventory.node(node.name)
        assert (configured.resource, configured.port) == (node.resource, node.port), node.name
        if configured.address is not None or node.type != "bundle":  # a bundle without ip-range-start: its host
            assert configured.address == node.address, node.name


def test_records_of_every_node_type():
    inventory = inventory_from_cib((DATA / "cib" / "mixed.xml").read_bytes())
    by_name = {n.name: n for n in inventory.nodes}
    assert by_name["node1"] == ConfiguredNode("node1", "cluster")
    assert by_name["remote1"] == ConfiguredNode("remote1", "remote", "remote1", connection="remote1",
                                                address="192.168.122.21", port=3121)
    assert by_name["guest1"] == ConfiguredNode("guest1", "guest", "vm-guest1", connection="guest1",
                                               container="vm-guest1", address="guest1", port=3121)
    assert by_name["httpd-bundle-1"] == ConfiguredNode(
        "httpd-bundle-1", "bundle", "httpd-bundle", connection="httpd-bundle-1", container="httpd-bundle-podman-1",
        bundle="httpd-bundle", address="192.168.122.132", port=3121)
    assert inventory.names()[:3] == ["node1", "node2", "node3"]  # <nodes> first, as Pacemaker creates them
    assert inventory.node_type("httpd-bundle-0") == "bundle" and inventory.node_type("nope") is None


def test_what_nodes_from_crm_mon_needs():
    inventory = inventory_from_cib((DATA / "cib" / "mixed.xml").read_bytes())
    assert inventory.location_of("remote1", "remote") == ("remote1", "192.168.122.21", 3121)
    assert inventory.location_of("REMOTE1", "remote") == ("remote1", "192.168.122.21", 3121)  # as pe_find_node
    assert inventory.location_of("nope", "guest") == (None, None, None)


def test_connections_include_the_ones_pacemaker_makes_no_node_for():
    inventory = inventory_from_cib((DATA / "cib" / "remote-placements-pacemaker-ignores.xml").read_bytes())
    assert inventory.names() == ["node1"]
    assert inventory.connections() == [Connection("R", "R", "remote", None, is_node=False)]
    mixed = {c.id: c for c in inventory_from_cib((DATA / "cib" / "mixed.xml").read_bytes()).connections()}
    assert mixed["guest1"] == Connection("guest1", "guest1", "guest", "vm-guest1")
    assert mixed["httpd-bundle-0"] == Connection("httpd-bundle-0", "httpd-bundle-0", "bundle", "httpd-bundle")
    assert mixed["remote10"].is_node


def test_a_configuration_section_or_an_element_is_enough():
    root = ET.fromstring((DATA / "cib" / "guest.xml").read_bytes())
    whole = inventory_from_cib(root).nodes
    assert inventory_from_cib(ET.tostring(root.find("configuration"))).nodes == whole
    assert inventory_from_cib(root.find("configuration")).nodes == whole


def test_malformed_or_foreign_xml_is_refused():
    with pytest.raises(RemotectlError):
        inventory_from_cib("<cib><configuration>")
    with pytest.raises(RemotectlError):
        inventory_from_cib("<crm_mon/>")
