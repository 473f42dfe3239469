"""Mixed Pacemaker versions on the hosts lab: every node's version where remotectl can know it, and the one
version rule (remotectl/pacemaker/lifecycle.py `version_compatibility`) as doctor applies it. On any variant;
on LAB_PACEMAKER=mixed (a 2.1 cluster with a 3.0 remote2) the interesting case: the lab works, and doctor warns
about remote2 only. Versions come from the lab (its hosts' packages), never from this file."""

import pytest

from tests.integration.test_hosts_lab import as_json, remotectl

pytestmark = pytest.mark.hosts_lab


def releases(lab):
    """host -> upstream release ("2.1.5") of the Pacemaker package in its root."""
    found = {host: version.split(":")[-1].split("-")[0].split("~")[0]
             for host, version in lab.pacemaker_versions().items()}
    for host, series in lab.versions().items():
        assert found[host].startswith(series + "."), (host, found[host], series)
    return found


def test_nodes_json_shows_the_dc_release_only(hosts_lab, tmp_path):
    """The status records the DC's release (and cluster nodes' feature sets), nothing for remote nodes: so
    `nodes` says null there rather than asking each node."""
    want = releases(hosts_lab)
    proc = remotectl(hosts_lab, "nodes", "--json")
    assert proc.returncode == 0, proc.stderr
    nodes = {n["name"]: n for n in as_json(proc)["nodes"]}
    dc = hosts_lab.cluster_run(["crmadmin", "--dc_lookup", "--quiet"], timeout=30).stdout.strip()
    assert dc in hosts_lab.cluster_names
    for name, node in nodes.items():
        assert node["pacemaker_version"] == (want[name] if name == dc else None), (name, node)
        if node["type"] == "cluster":
            assert node["feature_set"] and node["feature_set"].startswith("3."), node
        else:
            assert node["feature_set"] is None, node
    dump = tmp_path / "cib.xml"  # the same rule on a dump: dc-uuid's dc-version, #feature-set
    dump.write_text(hosts_lab.cluster_run(["cibadmin", "-Q"], timeout=30).stdout)
    offline = remotectl(hosts_lab, "--cib", dump, "nodes", "--json", cluster=None)
    assert {n["name"]: (n["pacemaker_version"], n["feature_set"]) for n in as_json(offline)["nodes"]} == \
        {n: (v["pacemaker_version"], v["feature_set"]) for n, v in nodes.items()}


def test_authkey_verify_shows_every_nodes_version(hosts_lab):
    want = releases(hosts_lab)
    proc = remotectl(hosts_lab, "authkey", "verify", "--all", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = {n["node"]: n["pacemaker_version"] for n in as_json(proc)["nodes"]}
    assert got == {name: want[name] for name in got} and set(got) >= {"node1", "node2", "remote1", "remote2"}
    table = remotectl(hosts_lab, "authkey", "verify", "--all")
    assert table.returncode == 0, table.stdout
    header, *rows = [line for line in table.stdout.splitlines() if line.split()[:1] and line.split()[0] in
                     ("NODE", *got)]
    assert header.split()[-1] == "PACEMAKER"
    for row in rows:
        assert row.split()[-1] == want[row.split()[0]], row


def test_check_all_matches_with_the_lab_key(hosts_lab):
    proc = remotectl(hosts_lab, "check", "--key", hosts_lab.authkey, "--all", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = {r["target"]: r["verdict"] for r in as_json(proc)["results"]}
    assert set(verdicts) == {"remote1", "remote2", "guest1"} and set(verdicts.values()) == {"match"}, verdicts


def test_doctor_version_skew_follows_the_one_rule(hosts_lab):
    """mixed: remote2 (3.0) under a 2.1 cluster is a warning, nothing else; one version everywhere: silence."""
    hosts_lab.restore_baseline()
    proc = remotectl(hosts_lab, "doctor", "--json")
    doc = as_json(proc)
    skew = [(f["severity"], f["node"]) for f in doc["findings"] if f["check"] == "version-skew"]
    newer = sorted(h for h, series in hosts_lab.versions().items()
                   if h in ("remote1", "remote2", "guest1") and series > hosts_lab.versions()["node1"])
    assert skew == [("warning", h) for h in newer], doc["findings"]
    others = [f for f in doc["findings"] if f["severity"] in ("critical", "warning") and f["check"] != "version-skew"]
    assert others == [], others
