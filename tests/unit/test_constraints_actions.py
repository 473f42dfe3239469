"""remotectl.actions.constraint against an in-memory cluster that answers cibadmin like the real one."""

import xml.etree.ElementTree as ET

import pytest

from remotectl.jsonable import jsonable
from remotectl.actions import constraint as actions
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Severity
from remotectl.transport.cluster import ClusterClient, ClusterError
from tests.fakes import FakePacemaker, scripted_cluster

CIB = """\
<cib epoch="3" num_updates="0" admin_epoch="0">
  <configuration>
    <nodes><node id="1" uname="node1"/></nodes>
    <resources>
      <primitive id="remote1" class="ocf" provider="pacemaker" type="remote"/>
      <primitive id="remote2" class="ocf" provider="pacemaker" type="remote"/>
      <primitive id="vm-guest1" class="ocf" provider="pacemaker" type="Dummy">
        <meta_attributes id="m"><nvpair id="m-rn" name="remote-node" value="guest1"/></meta_attributes>
      </primitive>
      <primitive id="dummy1" class="ocf" provider="pacemaker" type="Dummy"/>
    </resources>
    <constraints>
      <rsc_location id="location-dummy1-remote2-200" rsc="dummy1" node="remote2" score="200"/>
      <rsc_order id="order-remote1-dummy1" first="remote1" then="dummy1"/>
      <rsc_location id="stale" rsc="gone" node="node9" score="5"/>
    </constraints>
  </configuration>
  <status/>
</cib>
"""


def cluster(cib=CIB, **kwargs):
    """cibadmin --query / --create --scope constraints / --delete on an in-memory CIB."""
    return scripted_cluster(cib=cib, **kwargs)


def test_list_everything_with_warnings():
    result = actions.list_constraints(cluster())
    assert [c.id for c in result.constraints] == ["location-dummy1-remote2-200", "stale"]
    messages = [(r.severity, r.message) for r in result.reports]
    assert any(s is Severity.WARNING and "order-remote1-dummy1" in m and "connection resource" in m
               for s, m in messages)
    assert any("resource gone" in m for _, m in messages)
    assert any("node node9" in m for _, m in messages)
    document = jsonable(result)
    assert list(document) == ["constraints", "reports"]
    assert document["constraints"][0]["node"] == "remote2"


def test_list_filtered():
    result = actions.list_constraints(cluster(), node="remote2")
    assert [c.id for c in result.constraints] == ["location-dummy1-remote2-200"]
    assert actions.list_constraints(cluster(), resource="remote1").constraints == []


def test_prefer_creates_with_readable_unique_id_and_reads_back():
    fake = cluster()
    result = actions.add_location(fake, "dummy1", "remote1", "200")
    assert result.exit_code is ExitCode.OK
    change = result.changes[0]
    assert change.action == "created" and change.ok
    assert change.id == "location-dummy1-remote1-200"
    assert change.before is None
    assert change.after["node"] == "remote1" and change.after["score"] == "200" and change.after["kind"] == "prefer"
    create = fake.runner.writes()[0]
    assert create[:4] == ["cibadmin", "--create", "--scope", "constraints"]
    assert ET.fromstring(create[5]).attrib == {
        "id": "location-dummy1-remote1-200", "rsc": "dummy1", "node": "remote1", "score": "200",
    }


def test_prefer_again_is_unchanged_and_writes_nothing():
    fake = cluster()
    result = actions.add_location(fake, "dummy1", "remote2", "200")
    assert result.changes[0].action == "unchanged"
    assert result.changes[0].id == "location-dummy1-remote2-200"
    assert fake.runner.writes() == []


def test_other_score_for_same_placement_warns_and_gets_a_new_id():
    fake = cluster()
    result = actions.add_location(fake, "dummy1", "remote2", "300")
    assert result.changes[0].id == "location-dummy1-remote2-300"
    assert any("adds the scores up" in r.message for r in result.reports)


def test_id_collision_gets_a_suffix():
    cib = CIB.replace('<rsc_location id="stale"', '<rsc_location id="location-dummy1-node1-INFINITY" rsc="dummy1" '
                      'node="node1" role="Promoted" score="INFINITY"/><rsc_location id="stale"')
    result = actions.add_location(cluster(cib), "dummy1", "node1")
    assert result.changes[0].id == "location-dummy1-node1-INFINITY-1"


def test_avoid_negates_and_defaults_to_infinity():
    fake = cluster()
    result = actions.add_location(fake, "dummy1", "guest1", avoid=True)
    assert result.changes[0].after["score"] == "-INFINITY"
    assert result.changes[0].after["kind"] == "avoid"
    result = actions.add_location(fake, "dummy1", "node1", "50", avoid=True)
    assert result.changes[0].id == "location-dummy1-node1--50"
    with pytest.raises(RemotectlError):
        actions.add_location(fake, "dummy1", "node1", "-50", avoid=True)


@pytest.mark.parametrize(
    "resource, node, reason",
    [
        ("nosuch", "node1", "resource nosuch does not exist"),
        ("dummy1", "nosuch", "node nosuch is not known"),
        ("remote1", "remote2", "connection resources run on cluster nodes only"),
        ("vm-guest1", "remote1", "container of guest node guest1"),
        ("guest1", "node1", "implicit connection resource of guest node guest1"),
    ],
)
def test_refusals_exit_4_without_writing(resource, node, reason):
    fake = cluster()
    with pytest.raises(RefusedError) as info:
        actions.add_location(fake, resource, node)
    assert info.value.exit_code == ExitCode.REFUSED
    assert reason in info.value.message and "--force" in info.value.message
    assert fake.runner.writes() == []


def test_force_overrides_with_a_warning():
    fake = cluster()
    result = actions.add_location(fake, "dummy1", "nosuch", force=True)
    assert result.changes[0].ok
    assert any(r.severity is Severity.WARNING and "--force" in r.message for r in result.reports)


def test_avoiding_a_remote_node_for_a_connection_is_fine():
    result = actions.add_location(cluster(), "remote1", "remote2", avoid=True)
    assert result.changes[0].ok


def test_connection_on_cluster_node_explains_itself():
    result = actions.add_location(cluster(), "remote1", "node1", "100")
    assert any(r.severity is Severity.INFO and "hosts the connection" in r.message for r in result.reports)


def test_hostile_names_are_one_attribute_each():
    fake = cluster()
    node = 'x $(touch /tmp/pwned) "q" ;<y>&'
    result = actions.add_location(fake, "dummy1", node, force=True)
    created = ET.fromstring(fake.runner.writes()[0][5])
    assert created.get("node") == node
    assert result.changes[0].after["node"] == node


def test_create_failure_is_a_cluster_error():
    with pytest.raises(ClusterError) as info:
        actions.add_location(cluster(fail_create=True), "dummy1", "node1")
    assert "does not conform" in info.value.message


def test_remove_location():
    fake = cluster()
    result = actions.remove_constraint(fake, "location-dummy1-remote2-200")
    change = result.changes[0]
    assert change.ok and change.action == "removed"
    assert change.before["score"] == "200" and change.after is None
    assert fake.runner.writes()[0] == ["cibadmin", "--delete", "--xml-text",
                                        '<rsc_location id="location-dummy1-remote2-200" />']


def test_remove_other_constraint_types():
    fake = cluster()
    result = actions.remove_constraint(fake, "order-remote1-dummy1")
    assert result.changes[0].before["type"] == "rsc_order"
    assert fake.runner.writes()[0][3].startswith("<rsc_order ")


def test_remove_missing_or_not_a_constraint():
    fake = cluster()
    with pytest.raises(RemotectlError, match="no constraint with id nope"):
        actions.remove_constraint(fake, "nope")
    with pytest.raises(RemotectlError, match="is a <primitive>, not a constraint"):
        actions.remove_constraint(fake, "dummy1")
    assert fake.runner.writes() == []


class StubbornPacemaker(FakePacemaker):
    """cibadmin --delete says it worked but removes nothing."""

    def _cibadmin(self, argv):
        if "--delete" in argv:
            return 0, "", ""
        return super()._cibadmin(argv)


def test_remove_is_verified():
    result = actions.remove_constraint(ClusterClient(StubbornPacemaker(cib=CIB)), "location-dummy1-remote2-200")
    assert not result.changes[0].ok
    assert result.exit_code is ExitCode.FAILURE
    assert "still in the CIB" in result.changes[0].error
