"""`remotectl nodes` against the real lab cluster, locally and over SSH."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.lab

REMOTECTL = [sys.executable, "-m", "remotectl"]


def remotectl(*args):
    return subprocess.run([*REMOTECTL, *args], capture_output=True, text=True, timeout=60)


def by_name(document):
    return {node["name"]: node for node in document["nodes"]}


def test_lists_cluster_remote_and_guest_nodes_with_addresses(lab):
    lab.settle()
    result = remotectl("--cluster", "local", "nodes", "--json")
    assert result.returncode == 0, result.stderr
    nodes = by_name(json.loads(result.stdout))
    assert nodes["node1"]["type"] == "cluster" and nodes["node1"]["online"] is True
    assert (nodes["remote1"]["type"], nodes["remote1"]["address"], nodes["remote1"]["port"]) == ("remote", "127.0.0.2", 3121)
    assert (nodes["remote2"]["type"], nodes["remote2"]["address"]) == ("remote", "127.0.0.3")
    assert nodes["remote1"]["resource"] == "remote1" and nodes["remote1"]["host"] == "node1"
    guest = nodes["guest1"]
    assert (guest["type"], guest["resource"], guest["address"], guest["host"]) == ("guest", "vm-guest1", "127.0.0.4", "node1")
    assert all(node["online"] and not node["unclean"] for node in nodes.values())
    for node in nodes.values():
        assert set(node) == {"name", "type", "online", "standby", "maintenance", "unclean", "resource", "address",
                             "port", "host"}


def test_standby_set_by_crm_attribute_shows_over_ssh(lab):
    lab.settle()
    lab.run(["crm_attribute", "--node", "remote1", "--name", "standby", "--update", "on"])
    try:
        result = remotectl(*lab.remotectl_ssh_options, "--cluster", "node1", "nodes", "--json", "--type", "remote")
        assert result.returncode == 0, result.stderr
        nodes = by_name(json.loads(result.stdout))
        assert set(nodes) == {"remote1", "remote2"}
        assert nodes["remote1"]["standby"] is True and nodes["remote2"]["standby"] is False
    finally:
        lab.run(["crm_attribute", "--node", "remote1", "--name", "standby", "--delete"])


def test_live_listing_agrees_with_offline_model_of_the_same_cib(lab, tmp_path):
    """The pure model on a cibadmin -Q dump must say what the live path (crm_mon) says."""
    lab.settle()
    dump = tmp_path / "cib.xml"
    dump.write_text(lab.cibadmin_query())
    live = remotectl("--cluster", "local", "nodes", "--json")
    offline = remotectl("--cib", str(dump), "nodes", "--json")
    assert live.returncode == offline.returncode == 0, live.stderr + offline.stderr
    assert json.loads(live.stdout) == json.loads(offline.stdout)

