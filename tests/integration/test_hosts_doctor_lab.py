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
    for _ in range(3):
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
    assert shlex.split(item["fix"])[:4] == ["crm_resource", "--cleanup", "--resource", "remote1"]
    assert {n["node"]: n for n in doc["nodes"]}["remote1"]["fail_count"] >= 1
    run_fix(lab, item)
    lab.wait_online(["remote1"], timeout=90)
    wait_healthy(lab)
    lab.clear_faults()
