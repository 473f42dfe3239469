"""Every remotectl command of today against the hosts lab, over SSH (--cluster node1), on the Pacemaker version of
LAB_PACEMAKER: authkey verify/push/rotate (and real `systemctl restart`s where 3.0.2+ needs them), constraint
prefer/avoid/list/remove. Standby, unstandby and maintenance are in test_hosts_node_state_lab.py, fence and fence
history in test_hosts_fence_lab.py. Each test undoes what it changed."""

import os
import xml.etree.ElementTree as ET

import pytest

from remotectl.pacemaker import authkey as model
from tests.integration.test_hosts_lab import as_json, remotectl

pytestmark = pytest.mark.hosts_lab


@pytest.fixture
def clean(hosts_lab):
    yield hosts_lab
    hosts_lab.restore_baseline()


def node_attr(lab, node, name):
    out = lab.cluster_run(["crm_attribute", "--node", node, "--name", name, "--query", "--quiet"],
                          check=False).stdout.strip()
    return out or None


def test_authkey_verify_all_and_a_wrong_key(clean):
    lab = clean
    proc = remotectl(lab, "authkey", "verify", "--all", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = as_json(proc)
    assert [n["node"] for n in doc["nodes"]] == lab.node_names
    # cluster nodes by name (their ssh_config entries), the others by the address in the CIB
    assert [n["target"] for n in doc["nodes"]] == [
        n if n in lab.cluster_names else lab.host(n).address for n in lab.node_names]
    fingerprint = model.fingerprint(lab.authkey.read_bytes())
    versions = lab.pacemaker_versions()
    for node in doc["nodes"]:
        assert node["fingerprint"] == fingerprint and node["path"] == model.DEFAULT_KEY_PATH, node
        assert versions[node["node"]].startswith(node["pacemaker_version"]), (node, versions)
    assert doc["consistent"] is True
    lab.fault("wrong-key", "remote2")
    proc = remotectl(lab, "authkey", "verify", "--all", "--json")
    assert proc.returncode == 1, proc.stdout
    fingerprints = {n["node"]: n.get("fingerprint") for n in as_json(proc)["nodes"]}
    assert len({fingerprints[n] for n in lab.node_names if n != "remote2"}) == 1
    assert fingerprints["remote2"] != fingerprints["node1"]


def test_authkey_push_to_a_spare_host(hosts_lab, tmp_path):
    """A fresh host: push the cluster's key, then enable pacemaker_remote and open 3121 as an operator would."""
    lab = hosts_lab
    key = lab.node_etc_pacemaker("spare1") / "authkey"
    try:
        proc = remotectl(lab, "authkey", "push", "--key", lab.authkey, "--json", "spare1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert key.read_bytes() == lab.authkey.read_bytes()
        st = os.stat(key)
        assert st.st_mode & 0o077 == 0
        lab.ssh("spare1", ["sh", "-c", "systemctl enable --now pacemaker_remote && "
                           "nft add rule inet filter input tcp dport 3121 accept"])
        lab.wait_for(lambda: lab._listening("spare1", 3121), 20, "remoted on spare1")
        target = f"{lab.host('spare1').address}:3121"
        proc = remotectl(lab, "check", "--json", "--from", "cluster", "--key", "/etc/pacemaker/authkey", target)
        assert {row[target] for row in as_json(proc)["matrix"].values()} == {"match"}, proc.stdout
    finally:
        lab.ssh("spare1", ["sh", "-c", "systemctl disable --now pacemaker_remote; rm -f /etc/pacemaker/authkey*; "
                           "systemctl restart nftables"], check=False)


def reads_key_once(version):
    """Pacemaker 3.0.2 and later read the authkey once per daemon (docs/pacemaker3.md)."""
    return tuple(int(x) for x in version.split("-")[0].split(".")[:3]) >= (3, 0, 2)


def test_authkey_rotate(clean, tmp_path):
    """A new key on every node, then proof that every connection uses it (check --from cluster).

    Up to 3.0.1 remoted re-reads the key within 60 s, so the new key is in use after that without restarts.
    3.0.2+ reads it once per daemon: without `--restart` (this test) rotate changes the files only, so on 3.0.2+
    it checks what rotate itself does (the new key on every node, consistent, the cluster undisturbed since
    every daemon still holds the old key in memory) and then pushes the old key back with `authkey push`.
    `rotate --restart` is test_hosts_rotate_lab.py."""
    lab = clean
    old = lab.authkey.read_bytes()
    versions = lab.pacemaker_versions()
    once = [n for n in lab.node_names if reads_key_once(versions[n])]
    mark = lab.log_mark()
    proc = remotectl(lab, "authkey", "rotate", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all((lab.node_etc_pacemaker(n) / "authkey").read_bytes() == old for n in lab.node_names)
    proc = remotectl(lab, "authkey", "rotate", "--bytes", "4096", "--json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = as_json(proc)
    assert doc["ok"] is True and doc["consistent"] is True and doc["rolled_back"] is False, doc
    keys = {name: (lab.node_etc_pacemaker(name) / "authkey").read_bytes() for name in lab.node_names}
    assert len(set(keys.values())) == 1 and old not in keys.values()
    if once:
        saved = tmp_path / "old-authkey"
        saved.write_bytes(old)
        saved.chmod(0o600)
        proc = remotectl(lab, "authkey", "push", "--all", "--key", saved, "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert all((lab.node_etc_pacemaker(n) / "authkey").read_bytes() == old for n in lab.node_names)
        assert lab.nodes_online()
    else:
        lab.adopt_cluster_key()

        # Up to 3.0.1 remoted keeps the key it read for 60 s: the new one is used once that has passed.
        def all_match():
            doc = as_json(remotectl(lab, "check", "--all", "--from", "cluster", "--json"))
            return all(v == "match" for row in doc["matrix"].values() for v in row.values())

        lab.wait_for(all_match, 100, "every cluster node's key to match every remoted", interval=5)
        proc = remotectl(lab, "check", "--all", "--json", "--key", lab.authkey)
        assert {r["verdict"] for r in as_json(proc)["results"]} == {"match"}, proc.stdout
    assert lab.takeover_count(since=mark) == 0
    assert lab.nodes_online()


def live_locations(lab):
    section = ET.fromstring(lab.cibadmin_query("constraints"))
    return {e.get("id"): dict(e.attrib) for e in section.iter("rsc_location")}


@pytest.fixture
def created(clean):
    """Ids of constraints a test made; deleted from the CIB afterwards whatever happened."""
    ids = []
    yield ids
    for constraint_id in ids:
        clean.cluster_run(["cibadmin", "--delete", "--xml-text",
                           ET.tostring(ET.Element("rsc_location", {"id": constraint_id}), encoding="unicode")],
                          check=False)


def test_constraint_prefer_list_remove(clean, created):
    lab = clean
    proc = remotectl(lab, "constraint", "prefer", "dummy1", "remote2", "--score", "200", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    change = as_json(proc)["changes"][0]
    cid = change["id"]
    created.append(cid)
    assert (cid, change["action"], change["before"]) == ("location-dummy1-remote2-200", "created", None)
    assert live_locations(lab)[cid] == {"id": cid, "rsc": "dummy1", "node": "remote2", "score": "200"}
    lab.wait_for(lambda: lab.crm_mon_resources()["dummy1"]["nodes"] == ["remote2"], 60, "dummy1 on remote2")
    listed = as_json(remotectl(lab, "constraint", "list", "--node", "remote2", "--json"))
    assert [c["id"] for c in listed["constraints"]].count(cid) == 1
    assert {"id": cid, "resource": "dummy1", "node": "remote2", "score": "200", "rule": None,
            "kind": "prefer"}.items() <= next(c for c in listed["constraints"] if c["id"] == cid).items()
    again = remotectl(lab, "constraint", "prefer", "dummy1", "remote2", "--score", "200")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr

    proc = remotectl(lab, "constraint", "avoid", "dummy1", "guest1", "--score", "500")
    assert proc.returncode == 0, proc.stderr
    avoid = "location-dummy1-guest1--500"
    created.append(avoid)
    assert proc.stdout.strip() == f"(none) → {avoid}: dummy1 avoids guest1 (score -500)"
    assert live_locations(lab)[avoid]["score"] == "-500"
    listed = remotectl(lab, "constraint", "list", "--resource", "dummy1")
    assert avoid in listed.stdout and "avoid" in listed.stdout
    assert remotectl(lab, "constraint", "remove", avoid).returncode == 0

    proc = remotectl(lab, "constraint", "remove", cid, "--json")
    assert proc.returncode == 0, proc.stderr
    removed = as_json(proc)["changes"][0]
    assert removed["before"]["node"] == "remote2" and removed["after"] is None
    assert not {cid, avoid} & set(live_locations(lab))
    listed = as_json(remotectl(lab, "constraint", "list", "--json"))
    assert cid not in {c["id"] for c in listed["constraints"]}


def test_constraint_refusals_leave_the_cib_alone(hosts_lab):
    lab = hosts_lab
    before = live_locations(lab)
    # an unknown resource or node; a connection resource or a guest's container can never run on a remote node
    for args in (["prefer", "no-such-rsc", "remote1"], ["prefer", "dummy1", "no-such-node"],
                 ["prefer", "remote1", "remote2"], ["prefer", "vm-guest1", "remote1"]):
        proc = remotectl(lab, "constraint", *args)
        assert proc.returncode == 4, (args, proc.stdout + proc.stderr)
        assert "--force" in proc.stderr
    assert live_locations(lab) == before


def test_constraint_hostile_node_name_over_ssh(clean, created):
    """Quoting through SSH and the cluster node's shell: nothing of the name is executed on either side."""
    lab = clean
    mark = "/tmp/remotectl-pwned"
    node = f'evil $(touch {mark}) "q" ;x `touch {mark}` -rf'
    proc = remotectl(lab, "constraint", "prefer", "--force", "--json", "--", "dummy1", node)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cid = as_json(proc)["changes"][0]["id"]
    created.append(cid)
    assert live_locations(lab)[cid]["node"] == node
    proc = remotectl(lab, "constraint", "remove", cid)
    assert proc.returncode == 0, proc.stderr
    assert cid not in live_locations(lab)
    for name in lab.cluster_names:
        assert lab.host_run(name, ["test", "-e", mark], check=False).returncode == 1, name
    assert not os.path.exists(mark)
