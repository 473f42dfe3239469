"""authkey push / verify / rotate on the real Pacemaker lab (node1, remote1, remote2, guest1 over their sshd).

The lab is shared: every test here works on TEST_PATH (/etc/pacemaker/authkey.remotectl-test) and removes it, except
test_rotate_the_real_key_keeps_the_cluster_online, which replaces the key the cluster uses on every node and puts
the lab's key back afterwards. While it runs (about 2.5 minutes), other tests that compare node keys with the lab's
key file (PSK checks) would see a different key, so it only runs with REMOTECTL_LAB_DISRUPTIVE=1.
"""

import grp
import json
import os
import pwd
import random
import signal
import stat
import threading
import time

import pytest

from remotectl.pacemaker import authkey as model
from tests.integration.authkey_helpers import key_file, leak_forms, remotectl, wait_for_remote_writers

pytestmark = pytest.mark.lab

TEST_PATH = "/etc/pacemaker/authkey.remotectl-test"
NAME = os.path.basename(TEST_PATH)


def rctl(lab, *args, popen=False):
    return remotectl(lab.remotectl_ssh_options, *args, popen=popen, timeout=180)


def host_file(lab, name, filename=NAME):
    """The node's /etc/pacemaker/<filename> as seen from the host."""
    return lab.node_etc_pacemaker(name) / filename


def owner_of(path):
    st = path.stat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def put(path, data, mode=0o640, owner="root", group="haclient"):
    path.write_bytes(data)
    os.chown(path, pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)
    path.chmod(mode)


@pytest.fixture
def test_files(lab):
    """Every node starts with an 'old' test key at TEST_PATH; all test files are removed afterwards."""
    old = os.urandom(4096)
    for name in lab.node_names:
        put(host_file(lab, name), old)
    yield old
    for name in lab.node_names:
        directory = lab.node_etc_pacemaker(name)
        for entry in os.listdir(directory):
            if entry == NAME or entry.startswith(NAME + ".bak-"):
                (directory / entry).unlink()


def test_verify_the_real_key_by_name_read_only(lab):
    result = rctl(lab, "authkey", "verify", "--all", "--json")
    doc = json.loads(result.stdout)
    assert [n["node"] for n in doc["nodes"]] == ["node1", "remote1", "remote2", "guest1"]
    assert [n["target"] for n in doc["nodes"]] == ["node1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    fp = model.fingerprint(lab.authkey.read_bytes())
    assert all(n["fingerprint"] == fp for n in doc["nodes"])
    assert all(n["pacemaker_version"] == "2.1.5" and n["path"] == model.DEFAULT_KEY_PATH for n in doc["nodes"])
    assert doc["consistent"] is True
    assert result.returncode == 0, result.stdout


def test_push_to_all_nodes_then_unchanged_then_one_unreachable(lab, test_files, tmp_path):
    new = os.urandom(256)
    first = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new), "--path", TEST_PATH, "--all", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert [(n["node"], n["status"]) for n in doc["nodes"]] == [
        ("node1", "written"), ("remote1", "written"), ("remote2", "written"), ("guest1", "written")]
    for entry in doc["nodes"]:
        path = host_file(lab, entry["node"])
        assert path.read_bytes() == new
        assert owner_of(path) == (0o400, "hacluster", "haclient")
        assert (entry["mode"], entry["owner"], entry["group"]) == ("0400", "hacluster", "haclient")
        backup = host_file(lab, entry["node"], os.path.basename(entry["backup"]))
        assert backup.read_bytes() == test_files and owner_of(backup)[0] & 0o077 == 0
    second = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new), "--path", TEST_PATH, "--all", "--json")
    assert second.returncode == 0
    assert [n["status"] for n in json.loads(second.stdout)["nodes"]] == ["unchanged"] * 4
    newer = os.urandom(256)
    lab.block_forwarder("remote2", 22)  # only remote2's sshd; its remoted and the cluster are not touched
    try:
        third = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, newer, "k3"), "--path", TEST_PATH, "--all",
                     "--json")
    finally:
        lab.unblock_forwarder("remote2", 22)
    assert third.returncode == 3, third.stderr
    statuses = {n["node"]: n["status"] for n in json.loads(third.stdout)["nodes"]}
    assert statuses == {"node1": "written", "remote1": "written", "remote2": "failed", "guest1": "written"}
    assert host_file(lab, "remote2").read_bytes() == new
    assert all(host_file(lab, n).read_bytes() == newer for n in ("node1", "remote1", "guest1"))
    for output in (first, second, third):
        for form in leak_forms(new) + leak_forms(newer):
            assert form not in output.stdout and form not in output.stderr


def test_verify_detects_one_byte_difference_and_mode_0644(lab, test_files, tmp_path):
    good = os.urandom(256)
    pushed = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, good), "--path", TEST_PATH, "--all")
    assert pushed.returncode == 0, pushed.stderr
    ok = rctl(lab, "authkey", "verify", "--path", TEST_PATH, "--all", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["consistent"] is True
    put(host_file(lab, "remote1"), good[:-1] + bytes([good[-1] ^ 0x01]), 0o400, "hacluster", "haclient")
    host_file(lab, "guest1").chmod(0o644)
    bad = rctl(lab, "authkey", "verify", "--path", TEST_PATH, "--all", "--json")
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    nodes = {n["node"]: n for n in doc["nodes"]}
    assert doc["consistent"] is False and doc["differing"] == ["remote1"]
    assert nodes["remote1"]["matches"] is False
    assert nodes["guest1"]["mode"] == "0644" and nodes["guest1"]["matches"] is True
    assert "world-readable" in [p["code"] for p in nodes["guest1"]["problems"]]
    assert nodes["node1"]["ok"] and nodes["remote2"]["ok"]
    human = rctl(lab, "authkey", "verify", "--path", TEST_PATH, "--all")
    assert b"DIFFERS" in human.stdout and b"world-readable" in human.stdout
    for form in leak_forms(good):
        assert form not in bad.stdout and form not in human.stdout


def test_key_is_never_on_a_command_line_during_a_push(lab, test_files, tmp_path):
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
    assert result.returncode == 0, result.stderr
    assert scans[0] > 1 and found == []
    assert all(host_file(lab, n).read_bytes() == new for n in lab.node_names)


def test_sigkill_midway_on_the_lab_leaves_old_or_new(lab, test_files, tmp_path):
    rng = random.Random(11)
    start = time.monotonic()
    assert rctl(lab, "authkey", "push", "--key", key_file(tmp_path, os.urandom(65536), "p"), "--path", TEST_PATH,
                "--all", "--no-backup").returncode == 0
    duration = time.monotonic() - start
    previous = {n: host_file(lab, n).read_bytes() for n in lab.node_names}
    seen = {"old": 0, "new": 0}
    for round_number in range(12):
        new = os.urandom(65536)
        process = rctl(lab, "authkey", "push", "--key", key_file(tmp_path, new, f"k{round_number}"), "--path",
                       TEST_PATH, "--all", "--no-backup", popen=True)
        time.sleep(rng.uniform(0.1, duration))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        wait_for_remote_writers(TEST_PATH)
        for name in lab.node_names:
            content = host_file(lab, name).read_bytes()
            assert content in (previous[name], new), name
            seen["new" if content == new else "old"] += 1
            assert owner_of(host_file(lab, name))[0] in (0o400, 0o640)
            for entry in os.listdir(lab.node_etc_pacemaker(name)):
                if entry.startswith(".remotectl."):
                    assert owner_of(lab.node_etc_pacemaker(name) / entry)[0] & 0o077 == 0
            previous[name] = content
    final = os.urandom(256)
    assert rctl(lab, "authkey", "push", "--key", key_file(tmp_path, final, "f"), "--path", TEST_PATH, "--all",
                "--no-backup").returncode == 0
    for name in lab.node_names:
        assert host_file(lab, name).read_bytes() == final
    print(f"\nlab SIGKILL: push {duration:.2f}s, targets old={seen['old']} new={seen['new']}")
    assert seen["old"] and seen["new"]


def test_rotate_on_a_test_path_of_every_node(lab, test_files):
    """rotate without TARGETs works on every node the cluster knows (here at TEST_PATH, so the cluster's own key
    is not touched): plan first, same new key everywhere, old key kept as a backup on each node."""
    result = rctl(lab, "authkey", "rotate", "--path", TEST_PATH)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.index("Plan:") < out.index("rotated: every node has")
    for name in ("node1", "remote1", "remote2", "guest1"):
        assert f"- {name}" in out
    new = host_file(lab, "node1").read_bytes()
    assert len(new) == 256 and new != test_files
    for name in lab.node_names:
        assert host_file(lab, name).read_bytes() == new
        assert owner_of(host_file(lab, name)) == (0o400, "hacluster", "haclient")
        backups = [e for e in os.listdir(lab.node_etc_pacemaker(name)) if e.startswith(NAME + ".bak-")]
        assert len(backups) == 1 and host_file(lab, name, backups[0]).read_bytes() == test_files
    assert model.fingerprint(new) in out
    for form in leak_forms(new):
        assert form not in result.stdout and form not in result.stderr


@pytest.mark.skipif(os.environ.get("REMOTECTL_LAB_DISRUPTIVE") != "1" and os.environ.get("CI") != "true",
                    reason="changes the key the lab cluster uses on every node for ~2.5 minutes; runs in CI (the lab "
                           "is CI's alone there); set REMOTECTL_LAB_DISRUPTIVE=1 when nobody else is using the lab")
def test_rotate_the_real_key_keeps_the_cluster_online(lab):
    original = lab.authkey.read_bytes()
    originals = {n: (host_file(lab, n, "authkey").read_bytes(), owner_of(host_file(lab, n, "authkey")))
                 for n in lab.node_names}
    assert all(data == original for data, _ in originals.values())
    lab.wait_online()
    backups = []
    try:
        dry = rctl(lab, "authkey", "rotate", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert all(host_file(lab, n, "authkey").read_bytes() == original for n in lab.node_names)
        result = rctl(lab, "authkey", "rotate", "--restart", "--json")
        rotated_at = time.monotonic()
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        backups = [n["backup"] for n in doc["nodes"]]
        assert doc["consistent"] is True and doc["ok"] is True
        assert all(r["status"] == "not-needed" for r in doc["restarts"])  # 2.1.5 re-reads the key within 60 s
        new = host_file(lab, "node1", "authkey").read_bytes()
        assert new != original and len(new) == 256
        assert all(host_file(lab, n, "authkey").read_bytes() == new for n in lab.node_names)
        for form in leak_forms(new):
            assert form not in result.stdout and form not in result.stderr
        # past the 60 s key cache on both sides, the cluster still has every node...
        time.sleep(max(0.0, model.CACHE_SECONDS + 5 - (time.monotonic() - rotated_at)))
        assert lab.nodes_online(), lab.crm_mon_nodes()
        # ...and a fresh connection (new TLS handshake, keys re-read on both sides) works with the new key
        lab.stop_remoted("remote1", signal.SIGTERM)
        lab.start_remoted("remote1", reconnect=True, timeout=90)
        lab.wait_online(timeout=60)
        verify = rctl(lab, "authkey", "verify", "--all", "--json")
        assert json.loads(verify.stdout)["consistent"] is True
    finally:
        from remotectl.transport.localfiles import write_secret_file

        for name, (data, (mode, owner, group)) in originals.items():
            ids = (pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)
            write_secret_file(str(host_file(lab, name, "authkey")), data, mode=mode, owner=ids, overwrite=True)
        for name in lab.node_names:
            for backup in backups:
                if backup:
                    host_file(lab, name, os.path.basename(backup)).unlink(missing_ok=True)
        # the daemons may hold the rotated key for up to 60 s; then prove a fresh connection uses the lab's key
        time.sleep(model.CACHE_SECONDS + 5)
        try:
            lab.stop_remoted("remote1", signal.SIGTERM)
            lab.start_remoted("remote1", reconnect=True, timeout=90)
            lab.wait_online(timeout=90)
        except Exception:
            lab.restore_baseline(timeout=120)
            raise
    assert all(host_file(lab, n, "authkey").read_bytes() == original for n in lab.node_names)
