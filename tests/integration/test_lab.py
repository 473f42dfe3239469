"""The Pacemaker lab itself, checked through the cluster's own verdicts and the SSH setup remotectl will use."""

import hashlib
import os
import signal

import pytest

pytestmark = pytest.mark.lab

CRM_MON_TYPES = {"node1": "member", "remote1": "remote", "remote2": "remote", "guest1": "remote"}


def test_all_nodes_online_with_their_crm_mon_types(lab):
    lab.settle()
    nodes = lab.crm_mon_nodes()
    assert set(nodes) == set(CRM_MON_TYPES)
    for name, node_type in CRM_MON_TYPES.items():
        assert nodes[name]["online"] is True, name
        assert nodes[name]["type"] == node_type, name
    assert nodes["guest1"]["id_as_resource"] == "vm-guest1"
    assert "id_as_resource" not in nodes["remote1"]
    assert nodes["node1"]["is_dc"] is True


def test_fencing_and_dummy_resources_are_started(lab):
    lab.settle()
    resources = lab.crm_mon_resources()
    for rsc in ("fence-dummy", "dummy1", "vm-guest1", "remote1", "remote2"):
        assert resources[rsc]["role"] == "Started", rsc
    assert resources["fence-dummy"]["nodes"] == ["node1"]
    assert 'name="stonith-enabled" value="true"' in lab.cibadmin_query("crm_config")


@pytest.mark.parametrize("name", list(CRM_MON_TYPES))
def test_ssh_reaches_the_node_and_sees_its_own_authkey_file(lab, name):
    """The file seen over SSH is the node's own (same inode as its host-side /etc/pacemaker) and holds the lab key."""
    out = lab.ssh(name, ["sh", "-c", "stat -c %d:%i /etc/pacemaker/authkey; sha256sum < /etc/pacemaker/authkey"])
    identity, digest = out.stdout.split()[:2]
    host_file = os.stat(lab.node_etc_pacemaker(name) / "authkey")
    assert identity == f"{host_file.st_dev}:{host_file.st_ino}"
    assert digest == hashlib.sha256(lab.authkey.read_bytes()).hexdigest()
    assert len(lab.authkey.read_bytes()) == lab.authkey_bytes


def test_every_node_has_a_distinct_etc_pacemaker(lab):
    files = {os.stat(lab.node_etc_pacemaker(name) / "authkey").st_ino for name in lab.node_names}
    assert len(files) == len(lab.node_names)
    marker = "lab-test-marker"
    try:
        lab.ssh("remote1", ["touch", f"/etc/pacemaker/{marker}"])
        assert (lab.node_etc_pacemaker("remote1") / marker).exists()
        for other in ("node1", "remote2", "guest1"):
            assert lab.ssh(other, ["test", "-e", f"/etc/pacemaker/{marker}"], check=False).returncode == 1, other
    finally:
        (lab.node_etc_pacemaker("remote1") / marker).unlink(missing_ok=True)


@pytest.mark.parametrize("name", list(CRM_MON_TYPES))
def test_ssh_by_address_checks_the_lab_known_hosts(lab, name):
    node = lab.node(name)
    result = lab.run(["ssh", "-F", str(lab.ssh_config), "-p", str(node.ssh_port), node.address, "crm_node", "-n"])
    assert result.stdout.strip() == name


@pytest.mark.parametrize("name", ["node1", "remote2"])
def test_netns_run_runs_as_on_the_node(lab, name):
    assert lab.netns_run(name, ["crm_node", "-n"]).stdout.strip() == name
    digest = lab.netns_run(name, ["sha256sum", "/etc/pacemaker/authkey"]).stdout.split()[0]
    assert digest == hashlib.sha256(lab.authkey.read_bytes()).hexdigest()


def test_paramiko_accepts_the_lab_known_hosts(lab):
    paramiko = pytest.importorskip("paramiko")
    for name in lab.node_names:
        node = lab.node(name)
        client = paramiko.SSHClient()
        client.load_host_keys(str(lab.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(node.address, port=node.ssh_port, username="root", key_filename=str(lab.identity),
                           look_for_keys=False, allow_agent=False, timeout=10)
            _, stdout, _ = client.exec_command("crm_node -n")
            assert stdout.read().decode().strip() == name
        finally:
            client.close()


def test_standby_round_trip_on_remote1_is_visible_in_crm_mon(lab):
    standby = ["crm_attribute", "--node", "remote1", "--name", "standby"]
    try:
        lab.run(standby + ["--update", "on"])
        lab.wait_for(lambda: lab.crm_mon_nodes()["remote1"]["standby"] is True, 20, "remote1 in standby")
    finally:
        lab.run(standby + ["--delete"], check=False)
    lab.wait_for(lambda: lab.crm_mon_nodes()["remote1"]["standby"] is False, 20, "remote1 out of standby")
    assert lab.crm_mon_nodes()["remote1"]["online"] is True


def test_gracefully_stopped_remoted_goes_offline_and_comes_back(lab):
    mark = lab.log_mark()
    try:
        lab.stop_remoted("remote2", signal.SIGTERM)
        lab.wait_offline("remote2")
        lab.start_remoted("remote2")
        assert lab.crm_mon_nodes()["remote2"]["online"] is True
    finally:
        lab.restore_baseline()
    assert lab.takeover_count(since=mark) == 0


def test_blocked_forwarder_is_a_lost_connection_with_a_fail_count(lab):
    try:
        lab.block_forwarder("remote2")
        lab.wait_offline("remote2")
        lab.wait_for(lambda: lab.fail_counts().get("node1", {}).get("remote2", 0) >= 1, 20,
                     "a fail count for the remote2 connection on node1")
    finally:
        lab.restore_baseline()
    assert "remote2" not in lab.fail_counts().get("node1", {})
    assert lab.nodes_online()
