"""`remotectl check` details on the hosts lab over SSH (--cluster node1), on the Pacemaker of LAB_PACEMAKER (ported
from the netns lab's test_check_lab; the 400 probes and the dropped pair are in test_hosts_lab.py). `--full`
completes a handshake and is never run against a connected node: on 3.0.3 a foreign client taking over a connected
remote gets that remote fenced."""

import pytest

from tests.integration.conftest import require_probe_servers
from tests.integration.probe_servers import ProbeLab
from tests.integration.test_hosts_lab import ACCEPTED_LINE, as_json, remotectl

pytestmark = pytest.mark.hosts_lab


def log_size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_since(path, mark):
    with open(path, "rb") as handle:
        handle.seek(mark)
        return handle.read().decode(errors="replace")


def test_full_is_refused_against_a_connected_node(hosts_lab):
    lab = hosts_lab
    log = lab.pacemaker_log("remote1")
    mark, remoted_mark = lab.log_mark(), log_size(log)
    address = lab.host("remote1").address
    for target in ("remote1", f"{address}:3121", address):
        proc = remotectl(lab, "check", "--full", target)
        assert proc.returncode == 4, (target, proc.stdout, proc.stderr)
        assert proc.stdout == "" and "refusing --full against" in proc.stderr and "fence" in proc.stderr
    assert lab.takeover_count(since=mark) == 0
    assert log_since(log, remoted_mark).count(ACCEPTED_LINE) == 0
    assert lab.crm_mon_nodes()["remote1"]["online"] is True


@pytest.fixture
def standalone(tmp_path):
    require_probe_servers()
    probes = ProbeLab(tmp_path / "standalone")
    try:
        yield probes
    finally:
        probes.close()


def test_full_on_a_standalone_remoted_reports_the_protocol_version(hosts_lab, standalone):
    """The guard asks the live cluster (over SSH), finds the host is none of its nodes, and lets the full check
    run against a remoted of this machine that no cluster uses."""
    remoted = standalone.remoted("vet", str(hosts_lab.authkey))
    target = "%s:%d" % (remoted.host, remoted.port)
    proc = remotectl(hosts_lab, "check", "--json", "--full", "--key", hosts_lab.authkey, target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = as_json(proc)["results"]
    assert (result["verdict"], result["ok"], result["tcp"]) == ("match", True, "open")
    assert result["protocol_version"] == "1.1" and result["lrmd_rc"] == 0 and result["node"] is None
    assert remoted.wait_count(ACCEPTED_LINE, 1) == 1


def test_from_cluster_sources_fields_and_the_human_matrix(hosts_lab):
    lab = hosts_lab
    here_proc = remotectl(lab, "check", "--all", "--json", "--key", lab.authkey)  # this machine is no node
    proc = remotectl(lab, "check", "--all", "--from", "cluster", "--json")
    assert proc.returncode == here_proc.returncode == 0, proc.stdout + proc.stderr
    here, doc = as_json(here_proc), as_json(proc)
    assert doc["mode"] == "cluster"
    here_verdicts = {r["target"]: r["verdict"] for r in here["results"]}
    for node in lab.cluster_names:
        assert doc["matrix"][node] == here_verdicts  # every cluster node's key is the lab's key
        source = doc["sources"][node]
        assert source["error"] is None and source["key"]["path"] == "/etc/pacemaker/authkey"
        assert source["key"]["fingerprint"] == here["key"]["fingerprint"]
    for result in doc["results"]:
        assert result["from"] in lab.cluster_names
        assert {"target", "address", "port", "tcp", "verdict", "tls_version", "cipher", "ok", "hint"} <= set(result)
    proc = remotectl(lab, "check", "remote1", "remote2", "--from", "cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = ["TARGET", "ADDRESS"] + [word for node in lab.cluster_names for word in ("FROM", node)]
    assert any(line.split() == header for line in lines), lines
    address = lab.host("remote1").address
    assert any(line.split() == ["remote1", f"{address}:3121", "match", "match"] for line in lines), lines
    assert lines[-1] == "4 pairs: 4 ok"
