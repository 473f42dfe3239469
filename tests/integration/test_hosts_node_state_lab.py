"""standby / unstandby / maintenance on the hosts lab over SSH (--cluster node1), on the Pacemaker of
LAB_PACEMAKER, plus the --cib copy leaving the live CIB alone (ported from the netns lab's test_node_state_lab).
Every test puts back what it changed."""

import time
import xml.etree.ElementTree as ET

import pytest

from tests.integration.test_hosts_lab import as_json, remotectl

pytestmark = pytest.mark.hosts_lab

PIN_ID = "rctl-test-pin-dummy1-remote1"


def attribute(lab, node, name, lifetime="forever"):
    proc = lab.cluster_run(["crm_attribute", f"--node={node}", f"--name={name}", "--query",
                            f"--lifetime={lifetime}", "--quiet"], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def clear(lab, node, name):
    for lifetime in ("forever", "reboot"):
        lab.cluster_run(["crm_attribute", f"--node={node}", f"--name={name}", "--delete",
                         f"--lifetime={lifetime}"], check=False)


def where(lab, resource):
    return lab.crm_mon_resources().get(resource, {}).get("nodes", [])


@pytest.fixture
def clean(hosts_lab):
    yield hosts_lab
    hosts_lab.restore_baseline()


@pytest.fixture
def remote1_pinned(clean):
    """dummy1 running on remote1 (a temporary location constraint), remote1 out of standby; all undone after."""
    lab = clean
    clear(lab, "remote1", "standby")
    lab.cluster_run(["cibadmin", "--create", "--scope=constraints", "--xml-text",
                     f'<rsc_location id="{PIN_ID}" rsc="dummy1" node="remote1" score="INFINITY"/>'], check=False)
    lab.wait_for(lambda: where(lab, "dummy1") == ["remote1"], 60, "dummy1 to run on remote1")
    yield lab
    clear(lab, "remote1", "standby")
    lab.cluster_run(["cibadmin", "--delete", "--xml-text", f'<rsc_location id="{PIN_ID}"/>'], check=False)
    lab.wait_for(lambda: lab.crm_mon_nodes().get("remote1", {}).get("standby") is False, 30, "remote1 unstandby")


def test_standby_moves_resources_away_and_unstandby_restores(remote1_pinned):
    lab = remote1_pinned
    proc = remotectl(lab, "standby", "remote1", "--wait=90", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    change = as_json(proc)["changes"][0]
    assert (change["node"], change["attribute"], change["before"], change["after"]) == ("remote1", "standby", None,
                                                                                      "on")
    assert change["ok"] and change["settled"] is True
    assert change["state"]["standby"] is True and change["state"]["resources_running"] == 0
    assert lab.crm_mon_nodes()["remote1"]["standby"] is True
    assert "remote1" not in where(lab, "dummy1")
    assert attribute(lab, "remote1", "standby") == "on"
    assert 'uname="remote1"' in lab.cibadmin_query("nodes")

    proc = remotectl(lab, "unstandby", "remote1", "--wait=60")
    assert proc.returncode == 0, proc.stderr
    assert "remote1: standby on → (unset) (lifetime forever)" in proc.stdout
    assert "the cluster shows it out of standby" in proc.stdout
    assert lab.crm_mon_nodes()["remote1"]["standby"] is False
    assert attribute(lab, "remote1", "standby") is None
    lab.wait_for(lambda: where(lab, "dummy1") == ["remote1"], 60, "dummy1 back on remote1")

    # the text form and an unstandby without --wait
    proc = remotectl(lab, "standby", "remote1", "--wait=90")
    assert proc.returncode == 0, proc.stderr
    assert "remote1: standby (unset) → on (lifetime forever)" in proc.stdout
    proc = remotectl(lab, "unstandby", "remote1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)["changes"][0]["after"] is None
    lab.wait_for(lambda: lab.crm_mon_nodes()["remote1"]["standby"] is False, 30, "remote1 out of standby")


def test_transient_standby_of_a_guest_node(clean):
    lab = clean
    try:
        proc = remotectl(lab, "standby", "guest1", "--lifetime", "reboot", "--wait=90", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        change = as_json(proc)["changes"][0]
        assert change["lifetime"] == "reboot" and change["settled"] is True
        assert attribute(lab, "guest1", "standby", "reboot") == "on"
        assert attribute(lab, "guest1", "standby", "forever") is None
        assert lab.crm_mon_nodes()["guest1"]["standby"] is True
        proc = remotectl(lab, "unstandby", "guest1", "--lifetime", "reboot", "--wait=60")
        assert proc.returncode == 0, proc.stderr
        assert lab.crm_mon_nodes()["guest1"]["standby"] is False
    finally:
        clear(lab, "guest1", "standby")


def test_maintenance_on_and_off(clean):
    lab = clean
    try:
        proc = remotectl(lab, "maintenance", "remote2", "--wait=60", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert as_json(proc)["changes"][0]["settled"] is True
        assert lab.crm_mon_nodes()["remote2"]["maintenance"] is True
        proc = remotectl(lab, "maintenance", "--off", "remote2", "--wait=60")
        assert proc.returncode == 0, proc.stderr
        assert "remote2: maintenance on → (unset)" in proc.stdout
        assert lab.crm_mon_nodes()["remote2"]["maintenance"] is False
    finally:
        clear(lab, "remote2", "maintenance")


def test_partial_failure_exit_3(clean):
    lab = clean
    try:
        proc = remotectl(lab, "maintenance", "remote2", "no-such-node", "--json")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        changes = {c["node"]: c for c in as_json(proc)["changes"]}
        assert changes["remote2"]["ok"] and not changes["no-such-node"]["ok"]
    finally:
        clear(lab, "remote2", "maintenance")


def test_hostile_node_names_are_never_interpreted(hosts_lab):
    lab = hosts_lab
    mark = "/tmp/remotectl-pwned-standby"
    names = [f'evil $(touch {mark}) "q" ;x', f"a'b`touch {mark}`;c", "-rf --delete", f"x; touch {mark}"]
    for name in names:
        proc = remotectl(lab, "standby", "--json", "--", name)
        assert proc.returncode == 1, (name, proc.stdout + proc.stderr)
        assert "no such node" in as_json(proc)["changes"][0]["error"]
    for host in lab.cluster_names:
        assert lab.host_run(host, ["test", "-e", mark], check=False).returncode == 1, host
    nodes = lab.cibadmin_query("nodes")
    assert "evil" not in nodes and "touch" not in nodes


def _live_fingerprint(lab):
    root = ET.fromstring(lab.cibadmin_query())
    constraints = ET.tostring(root.find("./configuration/constraints"), encoding="unicode")
    nodes = ET.tostring(root.find("./configuration/nodes"), encoding="unicode")
    return (root.get("admin_epoch"), root.get("epoch")), constraints, nodes


def test_cib_copy_changes_only_the_file(hosts_lab, tmp_path):
    """A dump of the cluster's own version's CIB, edited by remotectl --cib on this machine."""
    lab = hosts_lab
    copy = tmp_path / "cib.xml"
    if not lab.pacemaker_versions()["node1"].startswith("2."):
        # remotectl edits a --cib copy with this machine's Pacemaker tools (2.1.5), which refuse a 3.x CIB's
        # schema: remotectl must say so and change neither the copy nor the live CIB
        copy.write_text(lab.cibadmin_query())
        original, before = copy.read_bytes(), _live_fingerprint(lab)
        proc = remotectl(lab, "--cib", copy, "standby", "remote1", cluster=None)
        assert proc.returncode != 0 and "does not conform to the configured schema" in proc.stderr, (
            proc.stdout + proc.stderr)
        assert copy.read_bytes() == original and _live_fingerprint(lab) == before
        return
    for attempt in range(3):  # retry if the cluster itself bumped the live CIB meanwhile
        copy.write_text(lab.cibadmin_query())
        before = _live_fingerprint(lab)
        assert remotectl(lab, "--cib", copy, "standby", "remote1", cluster=None).returncode == 0
        assert remotectl(lab, "--cib", copy, "maintenance", "guest1", cluster=None).returncode == 0
        proc = remotectl(lab, "--cib", copy, "constraint", "prefer", "dummy1", "remote2", "--score", "200", "--json",
                         cluster=None)
        assert proc.returncode == 0, proc.stderr
        constraint_id = as_json(proc)["changes"][0]["id"]
        after = _live_fingerprint(lab)
        root = ET.parse(copy).getroot()
        assert root.find(f"./configuration/constraints/rsc_location[@id='{constraint_id}']") is not None
        standby = root.find("./configuration/nodes/node[@uname='remote1']//nvpair[@name='standby']")
        assert standby is not None and standby.get("value") == "on"
        assert constraint_id not in after[1]
        assert attribute(lab, "remote1", "standby") != "on"
        assert attribute(lab, "guest1", "maintenance") is None
        if before == after:
            break
        time.sleep(2)
    assert before == after, "the live CIB changed while remotectl worked on a copy"
