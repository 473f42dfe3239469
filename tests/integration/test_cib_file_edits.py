"""standby / maintenance / constraint commands on a CIB file, end to end: the real CLI in a subprocess, the real
crm_attribute / cibadmin / crm_mon with CIB_file=. Hostile names must stay single arguments."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.integration import cib_xml
from tests.integration.conftest import require

RESOURCES = """\
      <primitive class="stonith" id="fence-dummy" type="fence_dummy">
        <instance_attributes id="fence-dummy-ia">
          <nvpair id="fence-dummy-ia-hosts" name="pcmk_host_list" value="node1 remote1 remote2"/>
        </instance_attributes>
      </primitive>
      <primitive class="ocf" id="remote1" provider="pacemaker" type="remote">
        <instance_attributes id="remote1-ia"><nvpair id="remote1-ia-server" name="server" value="127.0.0.2"/>
        </instance_attributes>
      </primitive>
      <primitive class="ocf" id="remote2" provider="pacemaker" type="remote">
        <instance_attributes id="remote2-ia"><nvpair id="remote2-ia-server" name="server" value="127.0.0.3"/>
        </instance_attributes>
      </primitive>
      <primitive class="ocf" id="vm-guest1" provider="pacemaker" type="Dummy">
        <meta_attributes id="vm-guest1-meta">
          <nvpair id="vm-guest1-meta-remote-node" name="remote-node" value="guest1"/>
          <nvpair id="vm-guest1-meta-remote-addr" name="remote-addr" value="127.0.0.4"/>
        </meta_attributes>
      </primitive>
      <primitive class="ocf" id="dummy1" provider="pacemaker" type="Dummy"/>"""


def build_cib() -> str:
    """node1 online running the connections (remote1, remote2, guest1 online); dummy1 runs on guest1."""
    return cib_xml.cib(
        RESOURCES,
        [
            ("fence-dummy", "stonith", None, "fence_dummy"),
            ("remote1", "ocf", "pacemaker", "remote"),
            ("remote2", "ocf", "pacemaker", "remote"),
            ("vm-guest1", "ocf", "pacemaker", "Dummy"),
            ("guest1", "ocf", "pacemaker", "remote"),
        ],
        '<node_state id="remote1" uname="remote1" remote_node="true" in_ccm="true"/>'
        '<node_state id="remote2" uname="remote2" remote_node="true" in_ccm="true"/>'
        '<node_state id="guest1" uname="guest1" remote_node="true" in_ccm="true"><lrm id="guest1"><lrm_resources>'
        f'{cib_xml.started("dummy1", "ocf", "pacemaker", "Dummy")}</lrm_resources></lrm></node_state>',
        stonith_enabled=True,
    )


HOSTILE = [
    'evil $(touch {mark}) "q" ;x',
    "a'b`touch {mark}`;c",
    "-rf --delete",
    "sp ace|&& touch {mark}",
]


@pytest.fixture(scope="module", autouse=True)
def tools():
    require(all(shutil.which(t) for t in ("crm_attribute", "cibadmin", "crm_mon")), "Pacemaker's tools not installed")


@pytest.fixture
def cib(tmp_path):
    path = tmp_path / "cib.xml"
    path.write_text(build_cib())
    return path


def remotectl(cib, *args, env=None):
    full_env = dict(os.environ, NO_COLOR="1")
    full_env.pop("REMOTECTL_CLUSTER", None)
    full_env.pop("CIB_file", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "remotectl", "--cib", str(cib), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )


def crm_mon_nodes(cib):
    out = subprocess.run(["crm_mon", "--one-shot", "--output-as=xml"], capture_output=True, text=True, check=True,
                         env=dict(os.environ, CIB_file=str(cib))).stdout
    return {n.get("name"): n.attrib for n in ET.fromstring(out).find("nodes")}


def nodes_section(cib):
    return ET.parse(cib).getroot().find("./configuration/nodes")


def test_standby_remote_node_without_node_entry_and_back(cib):
    assert nodes_section(cib).find("node[@uname='remote1']") is None  # no <node type="remote"> yet
    result = remotectl(cib, "standby", "remote1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "remote1: standby (unset) → on (lifetime forever)"
    entry = nodes_section(cib).find("node[@uname='remote1']")
    assert entry is not None and entry.get("type") == "remote"
    assert entry.find("instance_attributes/nvpair[@name='standby']").get("value") == "on"
    assert crm_mon_nodes(cib)["remote1"]["standby"] == "true"

    result = remotectl(cib, "unstandby", "remote1", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == {"changes": [{
        "node": "remote1", "attribute": "standby", "before": "on", "after": None, "lifetime": "forever",
        "changed": True, "ok": True, "error": None, "effective": False, "settled": None, "state": None,
    }], "reports": []}
    assert crm_mon_nodes(cib)["remote1"]["standby"] == "false"


def test_standby_guest_and_cluster_nodes_json(cib):
    result = remotectl(cib, "standby", "guest1", "node1", "--json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert [(c["node"], c["before"], c["after"], c["ok"]) for c in changes] == [
        ("guest1", None, "on", True), ("node1", None, "on", True)]
    states = crm_mon_nodes(cib)
    assert states["guest1"]["standby"] == "true" and states["node1"]["standby"] == "true"
    again = json.loads(remotectl(cib, "standby", "guest1", "--json").stdout)["changes"][0]
    assert again["changed"] is False and again["before"] == "on"


def test_transient_standby(cib):
    result = remotectl(cib, "standby", "remote2", "--lifetime", "reboot")
    assert result.returncode == 0, result.stderr
    root = ET.parse(cib).getroot()
    assert root.find("./status/node_state[@id='remote2']/transient_attributes//nvpair[@name='standby']") is not None
    assert nodes_section(cib).find("node[@uname='remote2']") is None  # not permanent
    assert crm_mon_nodes(cib)["remote2"]["standby"] == "true"
    # clearing the permanent one leaves the transient one in force: say so
    result = remotectl(cib, "unstandby", "remote2")
    assert result.returncode == 0
    assert "stays in standby" in result.stderr
    assert remotectl(cib, "unstandby", "remote2", "--lifetime", "reboot").returncode == 0
    assert crm_mon_nodes(cib)["remote2"]["standby"] == "false"


def test_maintenance_on_and_off(cib):
    result = remotectl(cib, "maintenance", "remote2", "guest1")
    assert result.returncode == 0, result.stderr
    states = crm_mon_nodes(cib)
    assert states["remote2"]["maintenance"] == "true" and states["guest1"]["maintenance"] == "true"
    result = remotectl(cib, "maintenance", "--off", "remote2", "guest1", "--json")
    assert [c["after"] for c in json.loads(result.stdout)["changes"]] == [None, None]
    states = crm_mon_nodes(cib)
    assert states["remote2"]["maintenance"] == "false" and states["guest1"]["maintenance"] == "false"


def test_unknown_node_partial_and_total_failure(cib):
    result = remotectl(cib, "standby", "remote1", "nosuch")
    assert result.returncode == 3
    assert "nosuch: no such node" in result.stderr
    result = remotectl(cib, "standby", "nosuch", "--json")
    assert result.returncode == 1
    change = json.loads(result.stdout)["changes"][0]
    assert change["ok"] is False and "no such node" in change["error"]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_node_names_are_single_arguments(cib, tmp_path, template):
    mark = tmp_path / "pwned"
    name = template.format(mark=mark)
    before = cib.read_bytes()
    # "--" ends the options, so even a name starting with "-" is a NODE
    for command in (["standby", "--json", "--", name], ["maintenance", "--json", "--", name],
                    ["unstandby", "--lifetime", "reboot", "--json", "--", name]):
        result = remotectl(cib, *command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "no such node" in json.loads(result.stdout)["changes"][0]["error"]
    assert not mark.exists()
    assert cib.read_bytes() == before


def test_constraint_prefer_list_remove(cib):
    result = remotectl(cib, "constraint", "prefer", "dummy1", "remote2", "--score", "200", "--json")
    assert result.returncode == 0, result.stderr
    change = json.loads(result.stdout)["changes"][0]
    assert change["id"] == "location-dummy1-remote2-200" and change["action"] == "created"
    assert change["before"] is None and change["after"]["score"] == "200"
    element = ET.parse(cib).getroot().find("./configuration/constraints/rsc_location")
    assert element.attrib == {"id": "location-dummy1-remote2-200", "rsc": "dummy1", "node": "remote2", "score": "200"}

    listed = json.loads(remotectl(cib, "constraint", "list", "--node", "remote2", "--json").stdout)
    assert listed["constraints"] == [{
        "id": "location-dummy1-remote2-200", "resource": "dummy1", "node": "remote2", "score": "200", "rule": None,
        "kind": "prefer", "role": None, "resource_pattern": None, "resource_set": None, "score_attribute": None,
        "resource_discovery": None,
    }]
    assert json.loads(remotectl(cib, "constraint", "list", "--node", "remote1", "--json").stdout) == {
        "constraints": [], "reports": []}

    human = remotectl(cib, "constraint", "list")
    assert "location-dummy1-remote2-200" in human.stdout and "prefer" in human.stdout

    result = remotectl(cib, "constraint", "avoid", "dummy1", "remote1")
    assert result.returncode == 0
    assert "location-dummy1-remote1--INFINITY" in result.stdout and "avoids remote1" in result.stdout

    for constraint_id in ("location-dummy1-remote2-200", "location-dummy1-remote1--INFINITY"):
        result = remotectl(cib, "constraint", "remove", constraint_id)
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith("→ (none)")
    assert ET.parse(cib).getroot().find("./configuration/constraints/rsc_location") is None
    result = remotectl(cib, "constraint", "remove", "location-dummy1-remote2-200")
    assert result.returncode == 1 and "no constraint with id" in result.stderr


def test_crm_resource_move_constraints_are_listed(cib):
    subprocess.run(["crm_resource", "--move", "--resource", "dummy1", "--node", "remote1", "--lifetime", "PT1H"],
                   check=True, capture_output=True, env=dict(os.environ, CIB_file=str(cib)))
    subprocess.run(["crm_resource", "--ban", "--resource", "dummy1", "--node", "remote2"],
                   check=True, capture_output=True, env=dict(os.environ, CIB_file=str(cib)))
    listed = json.loads(remotectl(cib, "constraint", "list", "--resource", "dummy1", "--json").stdout)["constraints"]
    by_kind = {c["kind"]: c for c in listed}
    assert by_kind["cli-prefer"]["node"] == "remote1"
    assert by_kind["cli-prefer"]["rule"].startswith("#uname eq remote1 and date lt ")
    assert by_kind["cli-ban"]["id"] == "cli-ban-dummy1-on-remote2" and by_kind["cli-ban"]["score"] == "-INFINITY"


def test_constraint_refusals_leave_the_file_alone(cib):
    before = cib.read_bytes()
    for args in (["prefer", "nosuch", "remote1"], ["prefer", "dummy1", "nosuch"], ["prefer", "remote1", "remote2"],
                 ["avoid", "vm-guest1", "nosuch"]):
        result = remotectl(cib, "constraint", *args)
        assert result.returncode == 4, (args, result.stderr)
        assert "--force" in result.stderr
    assert cib.read_bytes() == before


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_names_in_constraints(cib, tmp_path, template):
    mark = tmp_path / "pwned"
    node = template.format(mark=mark)
    result = remotectl(cib, "constraint", "prefer", "--force", "--json", "--", "dummy1", node)
    assert result.returncode == 0, result.stderr
    change = json.loads(result.stdout)["changes"][0]
    element = ET.parse(cib).getroot().find(f"./configuration/constraints/rsc_location[@id='{change['id']}']")
    assert element.get("node") == node  # escaped on the way in, exactly this string in the CIB
    assert change["after"]["node"] == node
    assert remotectl(cib, "constraint", "remove", change["id"]).returncode == 0
    assert ET.parse(cib).getroot().find("./configuration/constraints/rsc_location") is None
    # a hostile resource name does not exist, so it is refused before anything runs
    assert remotectl(cib, "constraint", "prefer", "--", node, "remote1").returncode == 4
    assert not mark.exists()


def test_list_warns_about_connection_resources_in_order_constraints(cib):
    subprocess.run(["cibadmin", "--create", "--scope", "constraints", "--xml-text",
                    '<rsc_order id="order-remote1-dummy1" first="remote1" then="dummy1"/>'],
                   check=True, capture_output=True, env=dict(os.environ, CIB_file=str(cib)))
    result = remotectl(cib, "constraint", "list", "--json")
    reports = json.loads(result.stdout)["reports"]
    assert any("order-remote1-dummy1" in r["message"] and r["severity"] == "warning" for r in reports)
    human = remotectl(cib, "constraint", "list")
    assert "Warning: remote1: order constraint order-remote1-dummy1 uses remote1" in human.stderr
    assert remotectl(cib, "constraint", "remove", "order-remote1-dummy1").returncode == 0


def test_fencing_needs_a_live_cluster(cib):
    before = cib.read_bytes()
    for args in (["fence", "remote1", "--yes"], ["fence", "history"], ["fence", "history", "remote1", "--json"]):
        result = remotectl(cib, *args)
        assert result.returncode == 1, args
        assert "live cluster" in result.stderr
    assert cib.read_bytes() == before
