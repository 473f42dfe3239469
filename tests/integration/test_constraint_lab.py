"""constraint prefer / avoid / list / remove on the real lab, locally and over SSH (--cluster node1). Every
constraint a test creates is removed in teardown (the lab is shared)."""

import functools
import json
import xml.etree.ElementTree as ET

import pytest

from tests.integration.lab_cli import run_remotectl

pytestmark = pytest.mark.lab

remotectl = functools.partial(run_remotectl, timeout=120)


def live_locations(lab):
    section = ET.fromstring(lab.cibadmin_query("constraints"))
    return {e.get("id"): dict(e.attrib) for e in section.iter("rsc_location")}


@pytest.fixture
def created(lab):
    """Ids of constraints a test made; deleted afterwards whatever happened."""
    ids = []
    yield ids
    for constraint_id in ids:
        lab.run(["cibadmin", "--delete", "--xml-text",
                 ET.tostring(ET.Element("rsc_location", {"id": constraint_id}), encoding="unicode")], check=False)


def test_prefer_list_remove_local(lab, created):
    lab.wait_online(["remote2"], timeout=120)
    result = remotectl("constraint", "prefer", "dummy1", "remote2", "--score", "200", "--json", lab=lab)
    assert result.returncode == 0, result.stderr
    change = json.loads(result.stdout)["changes"][0]
    created.append(change["id"])
    assert change["id"] == "location-dummy1-remote2-200"
    assert change["action"] == "created" and change["before"] is None
    assert live_locations(lab)[change["id"]] == {"id": change["id"], "rsc": "dummy1", "node": "remote2",
                                                  "score": "200"}
    # and the cluster acts on it
    lab.wait_for(lambda: lab.crm_mon_resources().get("dummy1", {}).get("nodes") == ["remote2"], 60,
                 "dummy1 to move to remote2")

    listed = json.loads(remotectl("constraint", "list", "--node", "remote2", "--json", lab=lab).stdout)
    assert {"id": change["id"], "resource": "dummy1", "node": "remote2", "score": "200", "rule": None,
            "kind": "prefer"}.items() <= listed["constraints"][0].items()
    assert [c["id"] for c in listed["constraints"]] .count(change["id"]) == 1

    again = remotectl("constraint", "prefer", "dummy1", "remote2", "--score", "200", lab=lab)
    assert again.returncode == 0 and "unchanged" in again.stdout

    result = remotectl("constraint", "remove", change["id"], "--json", lab=lab)
    assert result.returncode == 0, result.stderr
    removed = json.loads(result.stdout)["changes"][0]
    assert removed["before"]["node"] == "remote2" and removed["after"] is None
    assert change["id"] not in live_locations(lab)


def test_avoid_list_remove_over_ssh(lab, created):
    result = remotectl("constraint", "avoid", "dummy1", "guest1", "--score", "500", lab=lab, ssh=True)
    assert result.returncode == 0, result.stderr
    constraint_id = "location-dummy1-guest1--500"
    created.append(constraint_id)
    assert result.stdout.strip() == f"(none) → {constraint_id}: dummy1 avoids guest1 (score -500)"
    assert live_locations(lab)[constraint_id]["score"] == "-500"
    listed = remotectl("constraint", "list", "--resource", "dummy1", lab=lab, ssh=True)
    assert constraint_id in listed.stdout and "avoid" in listed.stdout
    result = remotectl("constraint", "remove", constraint_id, lab=lab, ssh=True)
    assert result.returncode == 0, result.stderr
    assert constraint_id not in live_locations(lab)


def test_refusals_live(lab):
    before = live_locations(lab)
    for args in (["prefer", "no-such-rsc", "remote1"], ["prefer", "dummy1", "no-such-node"],
                 ["prefer", "remote1", "remote2"], ["prefer", "vm-guest1", "remote1"]):
        result = remotectl("constraint", *args, lab=lab)
        assert result.returncode == 4, (args, result.stderr)
        assert "--force" in result.stderr
    assert live_locations(lab) == before


@pytest.mark.parametrize("ssh", [False, True], ids=["local", "ssh"])
def test_hostile_names_live(lab, created, tmp_path, ssh):
    mark = tmp_path / "pwned"
    node = f'evil $(touch {mark}) "q" ;x `touch {mark}` -rf'
    result = remotectl("constraint", "prefer", "--force", "--json", "--", "dummy1", node, lab=lab, ssh=ssh)
    assert result.returncode == 0, result.stderr
    constraint_id = json.loads(result.stdout)["changes"][0]["id"]
    created.append(constraint_id)
    assert live_locations(lab)[constraint_id]["node"] == node
    result = remotectl("constraint", "remove", constraint_id, lab=lab, ssh=ssh)
    assert result.returncode == 0, result.stderr
    assert constraint_id not in live_locations(lab)
    assert not mark.exists()
