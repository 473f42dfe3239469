"""`tls enable` then `tls disable` for real on the hosts lab (LAB_PACEMAKER=3.0): from the PSK cluster, `tls ca
create`, `issue --all`, `push --all`, `enable` → every remote online over X.509 (the PSK probe now finds no PSK:
`check` says x509-trusted); while in X.509 mode, `tls renew --restart` gives every node a new certificate for the
same key and restarts its daemon, which then serves it (a second renew finds nothing to do); `disable` → PSK again
(match), the env files exactly as they were. Throughout: quorum on every sample, no unclean node, nothing fenced
(logs and fenced's history), no guest recovered, every resource where it was. One test for all of it: each switch,
and the renewal, restarts every daemon of the lab once."""

import pytest

from remotectl.pacemaker import x509 as model
from tests.integration.test_hosts_lab import as_json, remotectl
from tests.integration.test_hosts_rotate_lab import QuorumSampler, assert_cluster_undisturbed, placement

pytestmark = [pytest.mark.hosts_lab, pytest.mark.lab_pacemaker("3.0")]  # deselected on other versions

REMOTE_DIR = "/etc/pacemaker/tls"
ENV_FILE = "/etc/default/pacemaker"


def _env(lab):
    return {name: lab.host_run(name, ["cat", ENV_FILE]).stdout for name in lab.node_names}


def _psk_verdicts(lab):
    proc = remotectl(lab, "check", "--all", "--json", "--key", str(lab.authkey))
    return {r["target"]: r["verdict"] for r in as_json(proc)["results"]}


def _fence_events(lab):
    proc = lab.cluster_run(["stonith_admin", "--history", "*", "--output-as=xml"], check=False)
    return proc.stdout.count("<fence_event ")


def _node_certs(lab):
    """Each node's (certificate fingerprint, sha256 of key.pem) as the node holds them."""
    out = {}
    for name in lab.node_names:
        pem = lab.host_run(name, ["cat", f"{REMOTE_DIR}/cert.pem"]).stdout.encode()
        key = lab.host_run(name, ["sha256sum", f"{REMOTE_DIR}/key.pem"]).stdout.split()[0]
        out[name] = (model.describe(model.load_certificates(pem, name)[0]).fingerprint, key)
    return out


def _renew(lab, directory, *extra):
    """`tls renew --all` over the certificates `issue` gave (365 days): --within 400 takes them all, and the new
    ones (--days 500) fall outside it."""
    proc = remotectl(lab, "tls", "renew", "--all", "--within", "400", "--days", "500", "--dir", directory,
                     "--json", *extra, timeout=900)
    doc = as_json(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return doc


def _renew_restarts_every_node(lab, directory, peers, cache):
    before = _node_certs(lab)
    doc = _renew(lab, directory, "--restart")
    rows = {n["node"]: n for n in doc["nodes"]}
    assert {n: (r["status"], r["push"], r["tls_mode"], r["restart"]) for n, r in rows.items()} == {
        n: ("renewed", "written", "x509", "done") for n in lab.node_names}, doc
    assert doc["restart_needed"] == [] and not list(cache.rglob("tls-renew-*.json"))  # nothing left to --resume
    assert {r["node"] for r in doc["restarts"] if r["kind"] in ("cluster", "remote", "guest")
            and r["status"] == "done"} == set(lab.node_names)
    after = _node_certs(lab)
    for name in lab.node_names:
        assert after[name][0] == rows[name]["fingerprint"] != before[name][0]  # the new certificate is on the node
        assert after[name][1] == before[name][1]  # the same key, byte for byte
    assert lab.nodes_online()
    probed = as_json(remotectl(lab, "check", "--all", "--json", "--ca", f"{directory}/ca.pem"))["results"]
    assert {r["target"]: r["verdict"] for r in probed} == {n: "x509-trusted" for n in peers}
    # each restarted remoted serves its new certificate (500 days; the old one had 365)
    assert {r["target"]: r["not_after"][:19] for r in probed} == {n: rows[n]["not_after"][:19] for n in peers}

    again = _renew(lab, directory, "--restart")
    assert {n["node"]: (n["status"], n["push"], n["restart"]) for n in again["nodes"]} == {
        n: ("current", "unchanged", None) for n in lab.node_names}, again
    assert again["restarts"] == [] and again["restart_needed"] == []
    assert _node_certs(lab) == after


@pytest.fixture
def psk_lab(hosts_lab, tmp_path, monkeypatch):
    """The lab on PSK; afterwards PSK again (`tls disable` if the test stopped half-way), the env files as they
    were, no certificate or backup left. Its own remotectl cache: the switch's journal is nobody else's."""
    lab = hosts_lab
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lab.restore_baseline()
    lab.settle()
    before = _env(lab)
    yield lab
    if _env(lab) != before:
        remotectl(lab, "tls", "disable", "--yes", timeout=900)
    for name, text in before.items():
        lab.host_run(name, ["sh", "-c", 'cat > "$1"', "-", ENV_FILE], input=text)
        lab.host_run(name, ["sh", "-c", 'rm -rf -- "$1" "$2".bak-*', "-", REMOTE_DIR, ENV_FILE])
    lab.restore_baseline()


def test_enable_then_disable_switches_every_node_without_fencing(psk_lab, tmp_path):
    lab = psk_lab
    directory = str(tmp_path / "ca")
    env_before = _env(lab)
    where = placement(lab)
    boots = {name: lab.boots(name) for name in lab.node_names}
    fenced = _fence_events(lab)
    mark = lab.log_mark()
    peers = lab.remote_names + lab.guest_names
    for args in (("ca", "create"), ("issue", "--all"), ("push", "--all")):
        proc = remotectl(lab, "tls", *args, "--dir", directory)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    with QuorumSampler(lab) as sampler:
        enabled = remotectl(lab, "tls", "enable", "--dir", directory, "--yes", "--json", timeout=900)
        doc = as_json(enabled)
        assert enabled.returncode == 0 and doc["ok"] is True, enabled.stdout + enabled.stderr
        assert doc["mode"] == "x509" and doc["rolled_back"] is False
        assert {n["node"]: n["status"] for n in doc["nodes"]} == {n: "edited" for n in lab.node_names}
        assert {r["node"] for r in doc["restarts"] if r["kind"] in ("cluster", "remote", "guest")
                and r["status"] == "done"} == set(lab.node_names)
        assert {p["node"]: p["verdict"] for p in doc["probes"]} == {n: "x509-trusted" for n in peers}
        assert "tls-client-auth-bypass" in [r["code"] for r in doc["reports"]]  # the lab runs 3.0.3
        assert lab.nodes_online()
        # no remoted speaks PSK any more: each answers the key probe with tls-not-psk, so `check` gives it the
        # certificate probe (with the node's own PCMK_ca_file; docs/json.md)
        assert set(_psk_verdicts(lab).values()) == {"x509-trusted"}
        for name in lab.node_names:
            assert "PCMK_cert_file=/etc/pacemaker/tls/cert.pem" in lab.host_run(name, ["cat", ENV_FILE]).stdout
        listed = as_json(remotectl(lab, "nodes", "--tls", "--json"))
        assert listed["tls_mode"] == "x509" and {n["name"]: n["tls_mode"] for n in listed["nodes"]} == {
            n: "x509" for n in lab.node_names}, listed

        _renew_restarts_every_node(lab, directory, peers, tmp_path / "cache")

        disabled = remotectl(lab, "tls", "disable", "--yes", "--json", timeout=900)
        doc = as_json(disabled)
        assert disabled.returncode == 0 and doc["ok"] is True, disabled.stdout + disabled.stderr
        assert {p["node"]: p["verdict"] for p in doc["probes"]} == {n: "match" for n in peers}
    assert _env(lab) == env_before  # disable gives back the files enable edited
    assert set(_psk_verdicts(lab).values()) == {"match"}

    assert _fence_events(lab) == fenced
    assert_cluster_undisturbed(lab, sampler, boots=boots, mark=mark, placed=where)
