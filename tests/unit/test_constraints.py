"""remotectl.pacemaker.constraints: parsing, rule rendering, ids, escaping, what exists, connection misuse."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from remotectl.jsonable import jsonable
from remotectl.pacemaker import constraints as model
from remotectl.pacemaker import values
from remotectl.reports import RemotectlError

CIB = """\
<cib epoch="7" num_updates="0" admin_epoch="0" validate-with="pacemaker-3.9">
  <configuration>
    <crm_config/>
    <nodes>
      <node id="1" uname="node1"/>
      <node id="2" uname="node2" type="member"/>
      <node id="remote1" uname="remote1" type="remote"/>
      <node id="old-remote" uname="old-remote" type="remote"/>
    </nodes>
    <resources>
      <primitive id="remote1" class="ocf" provider="pacemaker" type="remote">
        <instance_attributes id="remote1-ia"><nvpair id="remote1-server" name="server" value="10.0.0.2"/></instance_attributes>
      </primitive>
      <group id="grp">
        <primitive id="remote2" class="ocf" provider="pacemaker" type="remote"/>
        <primitive id="ip1" class="ocf" provider="heartbeat" type="IPaddr2"/>
      </group>
      <primitive id="vm-guest1" class="ocf" provider="heartbeat" type="VirtualDomain">
        <meta_attributes id="vm-guest1-meta"><nvpair id="vm-guest1-rn" name="remote-node" value="guest1"/></meta_attributes>
      </primitive>
      <primitive id="dummy1" class="ocf" provider="pacemaker" type="Dummy"/>
      <clone id="dummy-clone"><primitive id="dummy2" class="ocf" provider="pacemaker" type="Dummy"/></clone>
      <bundle id="httpd-bundle">
        <podman image="pcmk:http" replicas="2"/>
        <network control-port="3121"/>
        <primitive id="httpd" class="ocf" provider="heartbeat" type="apache"/>
      </bundle>
    </resources>
    <constraints>
      <rsc_location id="location-dummy1-remote1-200" rsc="dummy1" node="remote1" score="200"/>
      <rsc_location id="ban" rsc="dummy1" node="node2" score="-inf"/>
      <rsc_location id="cli-prefer-dummy1" rsc="dummy1" role="Started">
        <rule id="cli-prefer-rule-dummy1" score="INFINITY" boolean-op="and">
          <expression id="cli-prefer-expr-dummy1" attribute="#uname" operation="eq" value="guest1" type="string"/>
          <date_expression id="cli-prefer-lifetime-end-dummy1" operation="lt" end="2030-01-01 00:00:00Z"/>
        </rule>
      </rsc_location>
      <rsc_location id="cli-ban-dummy2-on-node1" rsc="dummy-clone" role="Started" node="node1" score="-INFINITY"/>
      <rsc_location id="ping-rule" rsc="dummy1">
        <rule id="ping-rule-r" score="-INFINITY" boolean-op="or">
          <expression id="e1" attribute="pingd" operation="not_defined"/>
          <expression id="e2" attribute="pingd" operation="lte" value="0" type="integer"/>
          <rule id="inner" boolean-op="and">
            <date_expression id="d1" operation="date_spec"><date_spec id="ds1" hours="9-16" weekdays="1-5"/></date_expression>
            <date_expression id="d2" operation="in_range" start="2024-01-01"><duration id="du1" years="1"/></date_expression>
          </rule>
        </rule>
      </rsc_location>
      <rsc_location id="reuse" rsc="ip1"><rule id-ref="ping-rule-r"/></rsc_location>
      <rsc_location id="pattern" rsc-pattern="^dummy[0-9]$" node="remote1" score="+5"/>
      <rsc_location id="set-loc" node="node1" score="10">
        <resource_set id="set-loc-s"><resource_ref id="dummy1"/><resource_ref id="ip1"/></resource_set>
      </rsc_location>
      <rsc_location id="two-rules" rsc="dummy1">
        <rule id="tr1" score="100"><expression id="tr1e" attribute="#uname" operation="eq" value="node1"/></rule>
        <rule id="tr2" score-attribute="pingd"><expression id="tr2e" attribute="pingd" operation="defined"/></rule>
      </rsc_location>
      <rsc_order id="order-bad" first="remote1" then="dummy1"/>
      <rsc_order id="order-ok" first="ip1" then="dummy1"/>
      <rsc_colocation id="coloc-bad" rsc="dummy1" with-rsc="guest1" score="INFINITY"/>
      <rsc_colocation id="coloc-set" score="INFINITY">
        <resource_set id="cs1"><resource_ref id="dummy1"/><resource_ref id="remote1"/><resource_ref id="remote1"/></resource_set>
      </rsc_colocation>
      <rsc_colocation id="coloc-container" rsc="dummy1" with-rsc="vm-guest1" score="INFINITY"/>
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="node1"/>
    <node_state id="remote3" uname="remote3" remote_node="true"/>
  </status>
</cib>
"""


@pytest.fixture(scope="module")
def by_id():
    return {c.id: c for c in model.location_constraints(CIB)}


def test_plain_location_constraints(by_id):
    c = by_id["location-dummy1-remote1-200"]
    assert (c.resource, c.node, c.score, c.rule, c.kind) == ("dummy1", "remote1", "200", None, "prefer")
    ban = by_id["ban"]
    assert (ban.score, ban.kind) == ("-INFINITY", "avoid")
    assert by_id["pattern"].score == "5" and by_id["pattern"].resource_pattern == "^dummy[0-9]$"
    assert by_id["pattern"].resource is None


def test_every_location_in_document_order():
    ids = [c.id for c in model.location_constraints(CIB)]
    assert ids == [
        "location-dummy1-remote1-200", "ban", "cli-prefer-dummy1", "cli-ban-dummy2-on-node1", "ping-rule", "reuse",
        "pattern", "set-loc", "two-rules",
    ]


def test_crm_resource_move_and_ban_constraints(by_id):
    move = by_id["cli-prefer-dummy1"]
    assert move.kind == "cli-prefer"
    assert move.node == "guest1"  # taken from the "#uname eq" of the and-rule crm_resource --move writes
    assert move.score == "INFINITY"
    assert move.role == "Started"
    assert move.rule == '#uname eq guest1 and date lt "2030-01-01 00:00:00Z"'
    ban = by_id["cli-ban-dummy2-on-node1"]
    assert (ban.kind, ban.node, ban.resource, ban.score) == ("cli-ban", "node1", "dummy-clone", "-INFINITY")


def test_rules_are_rendered_readably(by_id):
    rule = by_id["ping-rule"]
    assert rule.kind == "rule"
    assert rule.score == "-INFINITY"
    assert rule.node is None
    assert rule.rule == (
        "not_defined pingd or pingd lte integer 0 or "
        "(date-spec hours=9-16 weekdays=1-5 and date in_range 2024-01-01 to duration years=1)"
    )
    # a rule referenced with id-ref is rendered from its definition
    assert by_id["reuse"].rule == rule.rule
    assert by_id["reuse"].score == "-INFINITY"


def test_several_rules_each_keep_their_score(by_id):
    c = by_id["two-rules"]
    assert c.score is None
    assert c.rule == "(#uname eq node1) [score 100] ; (defined pingd) [score-attribute pingd]"
    assert c.mentions_node("node1") and not c.mentions_node("node2")


def test_resource_sets(by_id):
    c = by_id["set-loc"]
    assert c.resource is None and c.resource_set == ("dummy1", "ip1")
    assert jsonable(c)["resource_set"] == ["dummy1", "ip1"]


def test_to_dict_has_the_contract_keys(by_id):
    d = jsonable(by_id["cli-prefer-dummy1"])
    for key in ("id", "resource", "node", "score", "rule", "kind"):
        assert key in d


def test_filters():
    everything = model.location_constraints(CIB)
    on_remote1 = [c.id for c in model.filter_constraints(everything, node="remote1")]
    assert on_remote1 == ["location-dummy1-remote1-200", "pattern"]
    on_guest1 = [c.id for c in model.filter_constraints(everything, node="guest1")]
    assert on_guest1 == ["cli-prefer-dummy1"]
    ip1 = [c.id for c in model.filter_constraints(everything, resource="ip1")]
    assert ip1 == ["reuse", "set-loc"]
    dummy2 = [c.id for c in model.filter_constraints(everything, resource="dummy2")]
    assert dummy2 == ["pattern"]  # through the rsc-pattern regex
    both = [c.id for c in model.filter_constraints(everything, node="node1", resource="dummy1")]
    assert both == ["set-loc", "two-rules"]


@pytest.mark.parametrize(
    "xml, text",
    [
        ('<rule id="r"><expression id="e" attribute="#uname" operation="ne" value="a b"/></rule>', '#uname ne "a b"'),
        ('<rule id="r"><expression id="e" attribute="x" operation="eq" value="1" type="version"/></rule>',
         "x eq version 1"),
        ('<rule id="r"><expression id="e" attribute="x" operation="eq" value="y" value-source="param"/></rule>',
         "x eq param:y"),
        ('<rule id="r"><date_expression id="d" operation="gt" start="2024-01-01"/></rule>', "date gt 2024-01-01"),
        ('<rule id="r"><date_expression id="d" operation="in_range" start="a" end="b"/></rule>',
         "date in_range a to b"),
        ('<rule id="r" role="Promoted"><expression id="e" attribute="a" operation="defined"/></rule>',
         "role=Promoted: defined a"),
        ('<rule id="r"/>', "(empty rule)"),
        ('<rule id="r" boolean-op="or"><rsc_expression id="x" class="ocf" provider="heartbeat" type="IPaddr2"/>'
         '<op_expression id="o" name="monitor" interval="10s"/></rule>',
         "resource ocf:heartbeat:IPaddr2 or op monitor interval=10s"),
    ],
)
def test_render_rule(xml, text):
    assert model.render_rule(ET.fromstring(xml)) == text


def test_self_referencing_rule_does_not_loop():
    assert model.render_rule(ET.fromstring('<rule id-ref="me"/>'), {"me": ET.fromstring('<rule id-ref="me"/>')})


def test_location_id_like_pcs_unique_and_valid():
    assert model.location_id("dummy1", "remote2", "200", []) == "location-dummy1-remote2-200"
    assert model.location_id("dummy1", "remote2", "-INFINITY", []) == "location-dummy1-remote2--INFINITY"
    taken = {"location-dummy1-remote2-200", "location-dummy1-remote2-200-1"}
    assert model.location_id("dummy1", "remote2", "200", taken) == "location-dummy1-remote2-200-2"
    hostile = model.location_id("d", 'n $(rm -rf /) "x";<y>&é', "5", [])
    assert hostile == "location-d-n___rm_-rf_____x___y___-5"
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9._-]*", hostile)
    assert model.sanitize_id("1abc") == "_1abc"
    assert model.sanitize_id("") == "_"


@pytest.mark.parametrize("name", ['evil $(touch /tmp/x) "q" ;x', "a&b<c>'d'", "ünïcödé node", "-rf"])
def test_location_xml_escapes_hostile_names(name):
    text = model.location_xml("loc-1", "rsc-1", name, "INFINITY")
    element = ET.fromstring(text)
    assert element.tag == "rsc_location"
    assert element.attrib == {"id": "loc-1", "rsc": "rsc-1", "node": name, "score": "INFINITY"}
    assert len(element) == 0


@pytest.mark.parametrize("name", ["", "a\nb", "a\x00b", "tab\there", "del\x7f"])
def test_unrepresentable_names_are_refused(name):
    with pytest.raises(RemotectlError):
        model.location_xml("loc-1", "rsc-1", name, "INFINITY")
    with pytest.raises(RemotectlError):
        values.check_name("node", name)


def test_delete_xml():
    assert model.delete_xml("rsc_location", 'x"y') == '<rsc_location id="x&quot;y" />'
    with pytest.raises(RemotectlError):
        model.delete_xml("primitive", "x")


def test_index_nodes_and_types():
    index = model.CibIndex(CIB)
    assert index.node_type("node1") == "cluster"
    assert index.node_type("node2") == "cluster"
    assert index.node_type("remote1") == "remote"
    assert index.node_type("remote2") is None  # a connection in a group: Pacemaker makes no node for it
    assert index.node_type("guest1") == "guest"
    assert index.node_type("httpd-bundle-0") == "bundle"
    assert index.node_type("httpd-bundle-1") == "bundle"
    assert index.node_type("httpd-bundle-2") is None
    assert index.node_type("remote3") is None  # only in the status section: crm_mon does not list it
    assert index.node_type("old-remote") == "remote"  # a stale <node type="remote"> entry: crm_mon lists it
    assert index.node_type("nope") is None
    assert index.node_names == {"node1", "node2", "remote1", "old-remote", "guest1", "httpd-bundle-0",
                                "httpd-bundle-1"}


DATA = Path(__file__).resolve().parents[1] / "data"


def test_index_has_no_nodes_pacemaker_does_not_make():
    # a bundle without a network, ocf:pacemaker:remote in a group, remote-node meta in a clone: crm_mon lists node1
    index = model.CibIndex((DATA / "cib" / "remote-placements-pacemaker-ignores.xml").read_bytes())
    assert index.node_names == {"node1"}
    for name in ("B-0", "B-1", "R", "guestX"):
        assert index.node_type(name) is None, name
    assert index.connections["R"].kind == "remote"  # still a connection resource, for the misuse warnings
    assert "vm" not in index.containers and "guestX" not in index.connections
    assert not index.has_resource("B-0") and not index.has_resource("B-podman-0")
    assert index.has_resource("B") and index.has_resource("R")


def test_index_node_types_follow_pacemaker():
    index = model.CibIndex((DATA / "cib-handwritten" / "node-types-as-pacemaker-reads-them.xml").read_bytes())
    assert {n: index.node_type(n) for n in index.node_names} == {
        "node1": "cluster", "old-remote": "remote", "R2": "remote", "guestY": "guest",
        "C-0": "bundle", "D-0": "bundle", "D-1": "bundle",
    }
    assert index.node_type("node2") is None  # type="normal": a ping node
    assert index.node_type("remote3") is None
    assert index.has_resource("C-docker-0") and index.has_resource("D-rkt-1") and index.has_resource("guestY")


def test_index_resources_and_connections():
    index = model.CibIndex(CIB)
    for rid in ("dummy1", "grp", "ip1", "dummy-clone", "dummy2", "httpd-bundle", "httpd", "remote1", "vm-guest1",
                "guest1", "httpd-bundle-podman-0", "httpd-bundle-1"):
        assert index.has_resource(rid), rid
    assert not index.has_resource("node1")
    assert index.connections["remote1"].kind == "remote"
    assert index.connections["guest1"] == model.ConnectionResource("guest1", "guest1", "guest", "vm-guest1")
    assert index.containers["vm-guest1"].node == "guest1"
    assert index.connections["httpd-bundle-0"].kind == "bundle"


def test_index_constraint_lookup():
    index = model.CibIndex(CIB)
    assert index.constraint("order-bad").tag == "rsc_order"
    assert index.constraint("ping-rule-r") is None  # a rule, not a constraint
    assert index.constraint("dummy1") is None


def test_connection_misuse():
    found = {(m.where, m.element_id, m.resource) for m in model.connection_misuse(CIB)}
    assert found == {
        ("group", "grp", "remote2"),
        ("order", "order-bad", "remote1"),
        ("colocation", "coloc-bad", "guest1"),  # the implicit connection of a guest node
        ("colocation", "coloc-set", "remote1"),  # once, although the set names it twice
    }
    messages = [m.message for m in model.connection_misuse(CIB)]
    assert all("connection resource" in m for m in messages)


def test_no_misuse_in_a_clean_cib():
    clean = CIB.split("<rsc_order")[0] + "</constraints></configuration><status/></cib>"
    clean = clean.replace('<primitive id="remote2" class="ocf" provider="pacemaker" type="remote"/>', "")
    assert model.connection_misuse(clean) == []


def test_same_placement(by_id):
    everything = model.location_constraints(CIB)
    assert [c.id for c in model.same_placement(everything, "dummy1", "remote1")] == ["location-dummy1-remote1-200"]
    assert model.same_placement(everything, "dummy1", "guest1") == []  # rule-based ones do not count


def test_hostile_cib_is_refused():
    with pytest.raises(RemotectlError):
        model.location_constraints('<!DOCTYPE x [<!ENTITY a "b">]><cib/>')
    with pytest.raises(RemotectlError):
        model.location_constraints("<cib><configuration>")


def test_cib_without_constraints():
    assert model.location_constraints("<cib><configuration/></cib>") == []
