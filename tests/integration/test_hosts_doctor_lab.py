"""`remotectl doctor` on the hosts lab (LAB_PACEMAKER 2.1 or 3.0): quiet on the healthy lab (and no takeover in
the cluster's logs), and for each fault the lab injects (tests/lab/faults.py) the right check and node, the cause
mark when the node is offline, and a fix that, run where it says, brings the lab back to healthy. One lab per
session; every test undoes what it did (`clean`)."""

import shlex
import time

import pytest

from tests.integration.test_hosts_lab import as_json, remotectl

pytestmark = pytest.mark.hosts_lab


@pytest.fixture
def clean(hosts_lab):
    hosts_lab.restore_baseline()  # what an earlier outage left (a late fail count) is not this test's finding
    yield hosts_lab
    hosts_lab.restore_baseline()


def doctor(lab, *args):
    proc = remotectl(lab, "doctor", "--json", *args)
    doc = as_json(proc)
    assert proc.returncode == {True: 0}.get(doc["healthy"], proc.returncode), proc.stderr
    return proc.returncode, doc


def problems(doc):
    return [f for f in doc["findings"] if f["severity"] in ("critical", "warning")]


def finding(doc, check, node):
    found = [f for f in doc["findings"] if f["check"] == check and f["node"] == node]
    assert found, (check, node, doc["findings"])
    return found[0]


def run_fix(lab, item):
    """Run a finding's fix where it says (remotectl fixes are not run here: they change every node)."""
    assert item["fix"] and item["fix_on"] != "here", item
    argv = ["sh", "-c", item["fix"]]
    if item["fix_on"] == "cluster":
        lab.cluster_run(argv, timeout=60)
    else:
        lab.host_run(item["fix_on"], argv, timeout=60)


def wait_healthy(lab, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        code, doc = doctor(lab)
        if code == 0 and not problems(doc):
            return doc
        assert time.monotonic() < deadline, problems(doc)
        time.sleep(2)


def test_healthy_lab_is_quiet_in_every_format(hosts_lab):
    lab = hosts_lab
    parser = pytest.importorskip("prometheus_client.parser")
    mark = lab.log_mark()
    for _ in range(4):  # runs in a row without a warning or critical finding (and 3 more formats below)
        code, doc = doctor(lab)
        assert code == 0 and problems(doc) == [] and doc["skipped"] == [], doc
        assert {n["node"] for n in doc["nodes"]} == set(lab.remote_names + lab.guest_names)
        assert all(n["online"] and n["key_match"] and all(n["port_open"].values()) for n in doc["nodes"])
    proc = remotectl(lab, "doctor")
    assert proc.returncode == 0 and proc.stdout.startswith("healthy: no problem found"), proc.stdout + proc.stderr
    proc = remotectl(lab, "doctor", "--format", "nagios")
    assert proc.returncode == 0 and proc.stdout.startswith("REMOTECTL DOCTOR OK - "), proc.stdout
    proc = remotectl(lab, "doctor", "--format", "prometheus")
    assert proc.returncode == 0, proc.stderr
    families = {f.name: f for f in parser.text_string_to_metric_families(proc.stdout)}
    assert {s.value for s in families["remotectl_node_online"].samples} == {1}
    assert lab.takeover_count(since=mark) == 0


def test_support_dump_of_the_lab(hosts_lab, tmp_path):
    dump = tmp_path / "cib.xml"
    dump.write_text(hosts_lab.cibadmin_query())
    proc = remotectl(hosts_lab, "--cib", dump, "doctor", "--json", cluster=None)
    doc = as_json(proc)
    assert proc.returncode == 0 and doc["source"] == "cib-file" and doc["findings"] == [], proc.stderr
    assert {s["check"] for s in doc["skipped"]} >= {"key-mismatch", "service-down"}


def test_wrong_key_on_a_remote(clean):
    lab = clean
    lab.fault("wrong-key", "remote1")
    lab.wait_offline("remote1", timeout=60)
    code, doc = doctor(lab)
    item = finding(doc, "key-mismatch", "remote1")
    assert code == 1 and item["severity"] == "critical" and item["cause"] is True
    assert item["fix"] == "remotectl authkey rotate --restart" and item["fix_on"] == "here"  # all nodes: not run here
    lab.clear_faults()
    lab.restore_baseline()
    wait_healthy(lab)


def test_remoted_stopped(clean):
    lab = clean
    lab.fault("remoted-stopped", "remote2")
    lab.wait_offline("remote2", timeout=60)
    code, doc = doctor(lab)
    item = finding(doc, "service-down", "remote2")
    assert code == 1 and item["cause"] is True and item["fix_on"] == "remote2"
    assert not [f for f in doc["findings"] if f["check"] == "port-unreachable"]  # explained by the service
    run_fix(lab, item)
    lab.wait_for(lambda: lab._listening("remote2", 3121), 20, "remoted of remote2 to listen")
    # the cluster may not reconnect by itself: after a clean stop (3.0.3) doctor says so with a refresh, after a
    # lost connection (2.1.5) it names the failed connection with a cleanup
    deadline = time.monotonic() + 60
    while not lab.nodes_online(["remote2"]) and time.monotonic() < deadline:
        code, doc = doctor(lab)
        causes = [f for f in doc["findings"] if f["node"] == "remote2" and f["cause"]]
        if not causes:  # it came online between the two looks
            time.sleep(2)
            continue
        (item,) = causes
        assert item["check"] in ("node-offline", "failed-connection") and item["fix_on"] == "cluster", item
        assert shlex.split(item["fix"])[:2] in (["crm_resource", "--refresh"], ["crm_resource", "--cleanup"])
        run_fix(lab, item)
        break
    lab.wait_online(["remote2"], timeout=90)
    doc = wait_healthy_after_cleanup(lab, "remote2")
    assert finding_absent(doc, "service-down", "remote2")


def wait_healthy_after_cleanup(lab, node):
    """After an outage the connection's fail count remains: doctor says so with a cleanup, which is run."""
    code, doc = doctor(lab)
    for item in [f for f in problems(doc) if f["check"] == "failed-connection" and f["node"] == node]:
        assert item["severity"] == "warning" and item["fix"].startswith("crm_resource --cleanup"), item
        run_fix(lab, item)
    return wait_healthy(lab)


def finding_absent(doc, check, node):
    return not [f for f in doc["findings"] if f["check"] == check and f["node"] == node]


def test_port_dropped_from_one_cluster_node(clean):
    lab = clean
    lab.fault("drop-3121", "remote1", "node2")
    code, doc = doctor(lab)
    item = finding(doc, "port-unreachable", "remote1")
    assert code == 1 and item["fix"] is None and "needs a person" in item["message"] and "node2" in item["message"]
    assert item["cause"] is False  # remote1 stays online through node1
    health = {n["node"]: n for n in doc["nodes"]}["remote1"]
    assert health["port_open"] == {"node1": True, "node2": False}
    lab.clear_faults()
    wait_healthy(lab)


def test_cluster_node_key_unreadable(clean):
    lab = clean
    lab.fault("key-unreadable", "node1")
    code, doc = doctor(lab)
    item = finding(doc, "key-unreadable", "node1")
    assert code == 1 and item["severity"] == "critical" and item["fix_on"] == "node1"
    run_fix(lab, item)
    wait_healthy(lab)
    lab.clear_faults()


@pytest.mark.parametrize("fault,args,check,node", [
    ("no-reconnect-interval", ("remote1",), "no-reconnect-interval", "remote1"),
    ("stale-node", (), "stale-node", "remote9"),
])
def test_cib_faults_are_fixed_by_their_command(clean, fault, args, check, node):
    lab = clean
    lab.fault(fault, *args)
    code, doc = doctor(lab)
    item = finding(doc, check, node)
    assert code == 3 and item["severity"] == "warning" and item["fix_on"] == "cluster"
    assert problems(doc) == [item]
    run_fix(lab, item)
    wait_healthy(lab)
    lab.clear_faults()


def test_failed_connection_left_after_the_cause_is_gone(clean):
    """The failure is injected with the cause already gone (the cluster recovers the connection). 3.0 expires a
    connection's fail count after reconnect_interval, so doctor is asked as soon as the fail count is there."""
    lab = clean
    lab.fault("failed-connection", "remote1")
    code, doc = doctor(lab)
    item = finding(doc, "failed-connection", "remote1")
    online = {n["node"]: n for n in doc["nodes"]}["remote1"]["online"]
    assert code in (1, 3) and item["severity"] == ("warning" if online else "critical")
    assert item["cause"] is (not online)
    assert shlex.split(item["fix"])[:3] == ["crm_resource", "--cleanup", "--resource=remote1"]
    assert {n["node"]: n for n in doc["nodes"]}["remote1"]["fail_count"] >= 1
    run_fix(lab, item)
    lab.wait_online(["remote1"], timeout=90)
    wait_healthy(lab)
    lab.clear_faults()


def _key_stats(lab):
    """(owner, group, mode, sha256 of the bytes) of every lab host's authkey, read through its mounted root."""
    import hashlib
    import os

    stats = {}
    for name in lab.cluster_names + lab.remote_names:
        key = lab.node_etc_pacemaker(name) / "authkey"
        info = os.stat(key)
        stats[name] = (info.st_uid, info.st_gid, info.st_mode & 0o7777, hashlib.sha256(key.read_bytes()).hexdigest())
    return stats


def _configuration(lab):
    """The CIB's configuration section without what the cluster itself bumps (versions, last-lrm-refresh)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(lab.cibadmin_query("configuration"))
    for parent in root.iter():
        for child in [c for c in parent if c.get("name") == "last-lrm-refresh"]:
            parent.remove(child)
    for element in root.iter():
        element.text = element.tail = None
    return ET.tostring(root).decode()


def test_fix_applies_the_safe_fixes(clean):
    """doctor --fix --yes --json on the three faults whose fix is safe and reversible: each applied, the lab
    healthy afterwards, nothing else changed, no takeover."""
    lab = clean
    config, keys = _configuration(lab), _key_stats(lab)
    mark = lab.log_mark()
    proc = remotectl(lab, "doctor", "--fix", "--json")  # --json never asks: refused before anything is contacted
    assert proc.returncode == 4 and proc.stdout == "" and "--yes" in proc.stderr, proc.stderr
    lab.fault("stale-node")
    lab.fault("key-unreadable", "node1")
    lab.fault("failed-connection", "remote1")  # offline on 3.0 (until reconnect_interval), soon online on 2.1
    proc = remotectl(lab, "doctor", "--fix", "--yes", "--json")
    doc = as_json(proc)
    fixes = {(f["check"], f["node"]): f for f in doc["fixes"]}
    for key in (("stale-node", "remote9"), ("key-unreadable", "node1"), ("failed-connection", "remote1")):
        assert fixes.get(key, {}).get("status") == "applied", (key, doc["fixes"], doc["findings"])
    assert proc.returncode == 0 and doc["healthy"] and problems(doc) == [], (doc, proc.stderr)
    assert remotectl(lab, "doctor", "--json").returncode == 0
    # nothing else changed: the configuration is what it was before the faults, every other key file is untouched,
    # node1's key has its bytes and the owner and mode authkey push gives a key
    assert _configuration(lab) == config
    after = _key_stats(lab)
    assert {n: s for n, s in after.items() if n != "node1"} == {n: s for n, s in keys.items() if n != "node1"}
    _uid, _gid, mode, digest = after["node1"]
    assert digest == keys["node1"][3] and mode == 0o400
    owner = lab.host_run("node1", ["stat", "-c", "%U:%G", "/etc/pacemaker/authkey"]).stdout.strip()
    assert owner == "hacluster:haclient"
    assert not any(counts.get("remote1") for counts in lab.fail_counts().values())
    assert lab.takeover_count(since=mark) == 0
    lab.clear_faults()
