"""authkey push / verify / rotate on the hosts lab over each host's sshd, on the Pacemaker of LAB_PACEMAKER
(ported from the netns lab's test_authkey_lab). The tests work on TEST_PATH (/etc/pacemaker/authkey.remotectl-test)
of every Pacemaker node and remove it; the cluster's own key is rotated by test_hosts_commands_lab.py. Owners are
read inside the hosts (their hacluster/haclient ids are their own)."""

import json
import os
import random
import signal
import threading
import time

import pytest

from remotectl.pacemaker import authkey as model
from tests.integration.authkey_helpers import key_file, leak_forms, remotectl, wait_for_remote_writers

pytestmark = pytest.mark.hosts_lab

TEST_PATH = "/etc/pacemaker/authkey.remotectl-test"
NAME = os.path.basename(TEST_PATH)


def rctl(lab, *args, popen=False):
    return remotectl([*lab.remotectl_ssh_options, "--cluster", "node1"], *args, popen=popen, timeout=180)


def host_file(lab, name, filename=NAME):
    """The host's /etc/pacemaker/<filename> as seen from this machine (through its mounted root)."""
    return lab.node_etc_pacemaker(name) / filename


def owner_of(lab, name, filename=NAME):
    mode, owner, group = lab.host_run(name, ["stat", "-c", "%a %U %G", f"/etc/pacemaker/{filename}"]).stdout.split()
    return int(mode, 8), owner, group


def put(lab, name, data, mode="640", owner="root", group="haclient"):
    host_file(lab, name).write_bytes(data)
    lab.host_run(name, ["sh", "-c", f'chown {owner}:{group} "$1" && chmod {mode} "$1"', "-", TEST_PATH])


@pytest.fixture
def test_files(hosts_lab):
    """Every node starts with an 'old' test key at TEST_PATH; all test files are removed afterwards."""
    old = os.urandom(4096)
    for name in hosts_lab.node_names:
        put(hosts_lab, name, old)
    yield old
    for name in hosts_lab.node_names:
        directory = hosts_lab.node_etc_pacemaker(name)
        for entry in os.listdir(directory):
            if entry == NAME or entry.startswith(NAME + ".bak-"):
                (directory / entry).unlink()


def test_push_to_all_nodes_then_unchanged_then_one_unreachable(hosts_lab, test_files, tmp_path):
    lab = hosts_lab
    new = os.urandom(256)
    first = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new), "--path", TEST_PATH, "--all", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    doc = json.loads(first.stdout)
    assert sorted((n["node"], n["status"]) for n in doc["nodes"]) == sorted((n, "written") for n in lab.node_names)
    for entry in doc["nodes"]:
        assert host_file(lab, entry["node"]).read_bytes() == new
        assert owner_of(lab, entry["node"]) == (0o400, "hacluster", "haclient")
        assert (entry["mode"], entry["owner"], entry["group"]) == ("0400", "hacluster", "haclient")
        backup = os.path.basename(entry["backup"])
        assert host_file(lab, entry["node"], backup).read_bytes() == test_files
        assert owner_of(lab, entry["node"], backup)[0] & 0o077 == 0
    second = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new), "--path", TEST_PATH, "--all", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    assert [n["status"] for n in json.loads(second.stdout)["nodes"]] == ["unchanged"] * len(lab.node_names)
    newer = os.urandom(256)
    lab.block_forwarder("remote2", 22)  # remote2's firewall drops new SSH connections; remoted is not touched
    try:
        third = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, newer, "k3"), "--path", TEST_PATH, "--all",
                     "--json")
    finally:
        lab.unblock_forwarder("remote2", 22)
    assert third.returncode == 3, third.stdout + third.stderr
    statuses = {n["node"]: n["status"] for n in json.loads(third.stdout)["nodes"]}
    assert statuses == {n: ("failed" if n == "remote2" else "written") for n in lab.node_names}
    assert host_file(lab, "remote2").read_bytes() == new
    assert all(host_file(lab, n).read_bytes() == newer for n in lab.node_names if n != "remote2")
    for output in (first, second, third):
        for form in leak_forms(new) + leak_forms(newer):
            assert form not in output.stdout and form not in output.stderr


def test_verify_detects_one_byte_difference_and_mode_0644(hosts_lab, test_files, tmp_path):
    lab = hosts_lab
    good = os.urandom(256)
    pushed = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, good), "--path", TEST_PATH, "--all")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    ok = rctl(lab, "authkey", "verify", "--path", TEST_PATH, "--all", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["consistent"] is True
    put(lab, "remote1", good[:-1] + bytes([good[-1] ^ 0x01]), "400", "hacluster", "haclient")
    lab.host_run("guest1", ["chmod", "0644", TEST_PATH])
    bad = rctl(lab, "authkey", "verify", "--path", TEST_PATH, "--all", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    doc = json.loads(bad.stdout)
    nodes = {n["node"]: n for n in doc["nodes"]}
    assert doc["consistent"] is False and doc["differing"] == ["remote1"]
    assert nodes["remote1"]["matches"] is False
    assert nodes["guest1"]["mode"] == "0644" and nodes["guest1"]["matches"] is True
    assert "world-readable" in [p["code"] for p in nodes["guest1"]["problems"]]
    assert all(nodes[n]["ok"] for n in lab.node_names if n not in ("remote1", "guest1"))
    human = rctl(lab, "authkey", "verify", "--path", TEST_PATH, "--all")
    assert b"DIFFERS" in human.stdout and b"world-readable" in human.stdout
    for form in leak_forms(good):
        assert form not in bad.stdout and form not in human.stdout


def test_key_is_never_on_a_command_line_during_a_push(hosts_lab, test_files, tmp_path):
    """This machine's /proc shows the processes of every host too (their PID namespaces are children of ours)."""
    lab = hosts_lab
    new = os.urandom(65536)
    forms = leak_forms(new)
    found, scans, stop = [], [0], threading.Event()

    def scan():
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as handle:
                            data = handle.read()
                    except OSError:
                        continue
                    if any(form in data for form in forms):
                        found.append(pid)
            scans[0] += 1

    thread = threading.Thread(target=scan)
    thread.start()
    try:
        result = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new), "--path", TEST_PATH, "--all")
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert scans[0] > 1 and found == []
    assert all(host_file(lab, n).read_bytes() == new for n in lab.node_names)


def test_sigkill_midway_leaves_old_or_new(hosts_lab, test_files, tmp_path):
    lab = hosts_lab
    rng = random.Random(11)
    start = time.monotonic()
    assert rctl(lab, "authkey", "push", "--key", key_file(tmp_path, os.urandom(65536), "p"), "--path", TEST_PATH,
                "--all", "--no-backup").returncode == 0
    duration = time.monotonic() - start
    previous = {n: host_file(lab, n).read_bytes() for n in lab.node_names}
    seen = {"old": 0, "new": 0}
    for round_number in range(8):
        new = os.urandom(65536)
        process = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new, f"k{round_number}"), "--path",
                       TEST_PATH, "--all", "--no-backup", popen=True)
        time.sleep(rng.uniform(0.1, duration))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        wait_for_remote_writers(TEST_PATH)  # the hosts' processes are in this machine's /proc too
        for name in lab.node_names:
            content = host_file(lab, name).read_bytes()
            assert content in (previous[name], new), name
            seen["new" if content == new else "old"] += 1
            assert owner_of(lab, name)[0] in (0o400, 0o640)
            for entry in os.listdir(lab.node_etc_pacemaker(name)):
                if entry.startswith(".remotectl."):
                    assert (lab.node_etc_pacemaker(name) / entry).stat().st_mode & 0o077 == 0
            previous[name] = content
    final = os.urandom(256)
    assert rctl(lab, "authkey", "push", "--key", key_file(tmp_path, final, "f"), "--path", TEST_PATH, "--all",
                "--no-backup").returncode == 0
    for name in lab.node_names:
        assert host_file(lab, name).read_bytes() == final
    print(f"\nhosts lab SIGKILL: push {duration:.2f}s, targets old={seen['old']} new={seen['new']}")
    assert seen["old"] and seen["new"]


def test_rotate_on_a_test_path_of_every_node(hosts_lab, test_files):
    """rotate without TARGETs works on every node the cluster knows (here at TEST_PATH, so the cluster's own key
    is not touched): plan first, same new key everywhere, old key kept as a backup on each node."""
    lab = hosts_lab
    result = rctl(lab, "authkey", "rotate", "--path", TEST_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.decode()
    assert out.index("Plan:") < out.index("rotated: every node has")
    for name in lab.node_names:
        assert f"- {name}" in out
    new = host_file(lab, "node1").read_bytes()
    assert len(new) == 256 and new != test_files
    for name in lab.node_names:
        assert host_file(lab, name).read_bytes() == new
        assert owner_of(lab, name) == (0o400, "hacluster", "haclient")
        backups = [e for e in os.listdir(lab.node_etc_pacemaker(name)) if e.startswith(NAME + ".bak-")]
        assert len(backups) == 1 and host_file(lab, name, backups[0]).read_bytes() == test_files
    assert model.fingerprint(new) in out
    for form in leak_forms(new):
        assert form not in result.stdout and form not in result.stderr
