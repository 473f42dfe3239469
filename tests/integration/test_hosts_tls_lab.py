"""tls ca create / issue / push / verify against the hosts lab on Pacemaker 3.0 (LAB_PACEMAKER=3.0): certificates
for every node, pushed to /etc/pacemaker/tls and verified there, without enabling X.509, so the cluster keeps
running on its PSK key (checked before and after with `remotectl check` and crm_mon). The files are removed again."""

import json

import pytest

from tests.integration.authkey_helpers import remotectl

pytestmark = pytest.mark.hosts_lab

REMOTE_DIR = "/etc/pacemaker/tls"


def rctl(lab, *args):
    return remotectl([*lab.remotectl_ssh_options, "--cluster", "node1"], *args, timeout=240)


@pytest.fixture
def clean_tls(hosts_lab):
    if hosts_lab.variant != "3.0":
        pytest.skip("X.509 for remote nodes needs Pacemaker 3.0 (LAB_PACEMAKER=3.0)")
    for name in hosts_lab.node_names:
        hosts_lab.host_run(name, ["rm", "-rf", "--", REMOTE_DIR])
    yield hosts_lab
    for name in hosts_lab.node_names:
        hosts_lab.host_run(name, ["rm", "-rf", "--", REMOTE_DIR])


def _all_online(lab):
    doc = json.loads(rctl(lab, "nodes", "--json").stdout)
    return {n["name"]: n["online"] for n in doc["nodes"] if n["type"] != "bundle"}


def test_issue_push_verify_every_node_while_the_cluster_stays_on_psk(clean_tls, tmp_path):
    lab = clean_tls
    before = _all_online(lab)
    assert all(before.values()), before
    directory = str(tmp_path / "ca")
    created = rctl(lab, "tls", "ca", "create", "--dir", directory, "--json")
    assert created.returncode == 0, created.stderr
    issued = rctl(lab, "tls", "issue", "--all", "--dir", directory, "--json")
    assert issued.returncode == 0, issued.stderr
    issued_nodes = {n["node"]: n for n in json.loads(issued.stdout)["nodes"]}
    for name in ("remote1", "remote2", "guest1"):
        assert issued_nodes[name]["ip_addresses"] == [lab.host(name).address], issued_nodes[name]
    pushed = rctl(lab, "tls", "push", "--all", "--dir", directory, "--json")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    rows = json.loads(pushed.stdout)["nodes"]
    assert {n["node"]: n["status"] for n in rows} == {n: "written" for n in before}
    assert all(n["tls_mode"] == "psk" for n in rows)
    for name in before:
        stat = lab.host_run(name, ["stat", "-c", "%a %U %G", f"{REMOTE_DIR}/key.pem", REMOTE_DIR]).stdout.split()
        assert stat == ["440", "root", "haclient", "750", "root", "haclient"], (name, stat)
        readable = lab.host_run(name, ["runuser", "-u", "hacluster", "--", "cat", f"{REMOTE_DIR}/key.pem"])
        assert readable.returncode == 0, (name, readable.stderr)
    again = rctl(lab, "tls", "push", "--all", "--dir", directory, "--json")
    assert {n["status"] for n in json.loads(again.stdout)["nodes"]} == {"unchanged"}
    verified = rctl(lab, "tls", "verify", "--all", "--dir", directory, "--json")
    assert verified.returncode == 0, verified.stdout
    doc = json.loads(verified.stdout)
    assert doc["mode"] == "psk" and doc["ok"] is True
    assert [r["code"] for r in doc["reports"]] == ["tls-not-enabled"]
    for node in doc["nodes"]:
        assert node["problems"] == [] and node["days_left"] >= 364, node
        assert all(f["hacluster_can_read"] for f in node["files"]), node
    # still PSK: every remote's key matches and every node stayed online
    check = rctl(lab, "check", "--all", "--json", "--key", str(lab.authkey))
    assert check.returncode == 0, check.stdout
    assert all("match" in r["verdict"] and "mismatch" not in r["verdict"] for r in json.loads(check.stdout)["results"])
    assert _all_online(lab) == before
