"""standby / unstandby / maintenance on the real lab: locally (this machine is node1) and over SSH (--cluster node1
with the lab's ssh_config), plus the --cib copy leaving the live CIB alone. The lab is shared: every test puts back
what it changed."""

import functools
import json
import time
import xml.etree.ElementTree as ET

import pytest

from tests.integration.lab_cli import run_remotectl

pytestmark = pytest.mark.lab

PIN_ID = "rctl-test-pin-dummy1-remote1"

remotectl = functools.partial(run_remotectl, timeout=180)


def attribute(lab, node, name, lifetime="forever"):
    result = lab.run(["crm_attribute", f"--node={node}", f"--name={name}", "--query", f"--lifetime={lifetime}",
                      "--quiet"], check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def clear(lab, node, name):
    for lifetime in ("forever", "reboot"):
        lab.run(["crm_attribute", f"--node={node}", f"--name={name}", "--delete", f"--lifetime={lifetime}"],
                check=False)


def where(lab, resource):
    return lab.crm_mon_resources().get(resource, {}).get("nodes", [])


@pytest.fixture
def remote1_pinned(lab):
    """dummy1 running on remote1 (a temporary location constraint), remote1 out of standby; all undone after."""
    lab.wait_online(["remote1", "remote2", "guest1"], timeout=120)
    clear(lab, "remote1", "standby")
    lab.run(["cibadmin", "--create", "--scope=constraints", "--xml-text",
             f'<rsc_location id="{PIN_ID}" rsc="dummy1" node="remote1" score="INFINITY"/>'], check=False)
    lab.wait_for(lambda: where(lab, "dummy1") == ["remote1"], 60, "dummy1 to run on remote1")
    yield
    clear(lab, "remote1", "standby")
    lab.run(["cibadmin", "--delete", "--xml-text", f'<rsc_location id="{PIN_ID}"/>'], check=False)
    lab.wait_for(lambda: lab.crm_mon_nodes().get("remote1", {}).get("standby") is False, 30, "remote1 unstandby")


def test_standby_moves_resources_away_and_unstandby_restores(lab, remote1_pinned):
    result = remotectl("standby", "remote1", "--wait=90", "--json", lab=lab)
    assert result.returncode == 0, result.stderr
    change = json.loads(result.stdout)["changes"][0]
    assert (change["node"], change["attribute"], change["before"], change["after"]) == ("remote1", "standby", None,
                                                                                      "on")
    assert change["ok"] and change["settled"] is True
    assert change["state"]["standby"] is True and change["state"]["resources_running"] == 0
    # the cluster's own view
    assert lab.crm_mon_nodes()["remote1"]["standby"] is True
    assert "remote1" not in where(lab, "dummy1")
    assert attribute(lab, "remote1", "standby") == "on"
    assert "<node " in lab.cibadmin_query("nodes") and 'uname="remote1"' in lab.cibadmin_query("nodes")

    result = remotectl("unstandby", "remote1", "--wait=60", lab=lab)
    assert result.returncode == 0, result.stderr
    assert "remote1: standby on → (unset) (lifetime forever)" in result.stdout
    assert "the cluster shows it out of standby" in result.stdout
    assert lab.crm_mon_nodes()["remote1"]["standby"] is False
    assert attribute(lab, "remote1", "standby") is None
    lab.wait_for(lambda: where(lab, "dummy1") == ["remote1"], 60, "dummy1 back on remote1")


def test_standby_over_ssh(lab, remote1_pinned):
    result = remotectl("standby", "remote1", "--wait=90", lab=lab, ssh=True)
    assert result.returncode == 0, result.stderr
    assert "remote1: standby (unset) → on (lifetime forever)" in result.stdout
    assert lab.crm_mon_nodes()["remote1"]["standby"] is True
    assert "remote1" not in where(lab, "dummy1")
    result = remotectl("unstandby", "remote1", "--json", lab=lab, ssh=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changes"][0]["after"] is None
    lab.wait_for(lambda: lab.crm_mon_nodes()["remote1"]["standby"] is False, 30, "remote1 out of standby")


def test_transient_standby_of_a_guest_node(lab):
    lab.wait_online(["guest1"], timeout=120)
    try:
        result = remotectl("standby", "guest1", "--lifetime", "reboot", "--wait=90", "--json", lab=lab)
        assert result.returncode == 0, result.stderr
        change = json.loads(result.stdout)["changes"][0]
        assert change["lifetime"] == "reboot" and change["settled"] is True
        assert attribute(lab, "guest1", "standby", "reboot") == "on"
        assert attribute(lab, "guest1", "standby", "forever") is None
        assert lab.crm_mon_nodes()["guest1"]["standby"] is True
        result = remotectl("unstandby", "guest1", "--lifetime", "reboot", "--wait=60", lab=lab)
        assert result.returncode == 0, result.stderr
        assert lab.crm_mon_nodes()["guest1"]["standby"] is False
    finally:
        clear(lab, "guest1", "standby")


def test_maintenance_on_and_off(lab):
    lab.wait_online(["remote2"], timeout=120)
    try:
        result = remotectl("maintenance", "remote2", "--wait=60", "--json", lab=lab, ssh=True)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["changes"][0]["settled"] is True
        assert lab.crm_mon_nodes()["remote2"]["maintenance"] is True
        result = remotectl("maintenance", "--off", "remote2", "--wait=60", lab=lab)
        assert result.returncode == 0, result.stderr
        assert "remote2: maintenance on → (unset)" in result.stdout
        assert lab.crm_mon_nodes()["remote2"]["maintenance"] is False
    finally:
        clear(lab, "remote2", "maintenance")


def test_partial_failure_exit_3(lab):
    lab.wait_online(["remote2"], timeout=120)
    try:
        result = remotectl("maintenance", "remote2", "no-such-node", "--json", lab=lab)
        assert result.returncode == 3, result.stderr
        changes = {c["node"]: c for c in json.loads(result.stdout)["changes"]}
        assert changes["remote2"]["ok"] and not changes["no-such-node"]["ok"]
    finally:
        clear(lab, "remote2", "maintenance")


@pytest.mark.parametrize("ssh", [False, True], ids=["local", "ssh"])
def test_hostile_node_names_are_never_interpreted(lab, tmp_path, ssh):
    mark = tmp_path / "pwned"
    names = [f'evil $(touch {mark}) "q" ;x', f"a'b`touch {mark}`;c", "-rf --delete", f"x; touch {mark}"]
    for name in names:
        result = remotectl("standby", "--json", "--", name, lab=lab, ssh=ssh)
        assert result.returncode == 1, (name, result.stderr)
        assert "no such node" in json.loads(result.stdout)["changes"][0]["error"]
    assert not mark.exists()
    nodes = lab.cibadmin_query("nodes")
    assert "evil" not in nodes and "touch" not in nodes


def _live_fingerprint(lab):
    root = ET.fromstring(lab.cibadmin_query())
    constraints = ET.tostring(root.find("./configuration/constraints"), encoding="unicode")
    nodes = ET.tostring(root.find("./configuration/nodes"), encoding="unicode")
    return (root.get("admin_epoch"), root.get("epoch")), constraints, nodes


def test_cib_copy_changes_only_the_file(lab, tmp_path):
    lab.wait_online(["remote1", "remote2"], timeout=120)
    copy = tmp_path / "cib.xml"
    for attempt in range(3):  # the lab is shared: retry if someone else changed the live CIB meanwhile
        copy.write_text(lab.cibadmin_query())
        before = _live_fingerprint(lab)
        assert remotectl("standby", "remote1", cib=copy).returncode == 0
        assert remotectl("maintenance", "guest1", cib=copy).returncode == 0
        result = remotectl("constraint", "prefer", "dummy1", "remote2", "--score", "200", "--json", cib=copy)
        assert result.returncode == 0, result.stderr
        constraint_id = json.loads(result.stdout)["changes"][0]["id"]
        after = _live_fingerprint(lab)
        # the copy has every change ...
        root = ET.parse(copy).getroot()
        assert root.find(f"./configuration/constraints/rsc_location[@id='{constraint_id}']") is not None
        standby = root.find("./configuration/nodes/node[@uname='remote1']//nvpair[@name='standby']")
        assert standby is not None and standby.get("value") == "on"
        # ... and the live CIB none of them
        assert constraint_id not in after[1]
        assert attribute(lab, "remote1", "standby") != "on"
        assert attribute(lab, "guest1", "maintenance") is None
        if before == after:
            break
        time.sleep(2)
    assert before == after, "the live CIB changed while remotectl worked on a copy"
