"""X.509 after the first issue: the doctor's rules (expiry, modes, the 3.0.2/3.0.3 client-certificate warning),
a node's certificate judged from its bytes, `tls renew`'s selection and same-key renewal on real certificates in a
tmp CA directory, and the local PCMK_ca_file that `check` uses without --ca."""

import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from remotectl.actions.targets import Target
from remotectl.actions.tls import local, renew
from remotectl.actions.tls.node_certs import NodeCerts, judge
from remotectl.pacemaker import diagnosis as dx
from remotectl.pacemaker import tls_diagnosis as tdx
from remotectl.pacemaker import x509 as model
from remotectl.transport import tls_files

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
X509 = model.TlsSettings("x509", "/etc/pacemaker/tls/ca.pem", "/etc/pacemaker/tls/cert.pem",
                         "/etc/pacemaker/tls/key.pem")
PSK = model.TlsSettings("psk")


def findings(found):
    return sorted((f.check, f.severity, f.node) for f in found)


# --- doctor rules ----------------------------------------------------------------------------------------------------
def test_expiry_warning_critical_and_unknown():
    nodes = [tdx.NodeTls("r1", "remote", "x509", days_left=29, not_after="2026-06-30T00:00:00+00:00"),
             tdx.NodeTls("r2", "remote", "x509", days_left=-3, expired=True, not_after="2026-05-29T00:00:00+00:00"),
             tdx.NodeTls("r3", "remote", "x509", days_left=31),
             tdx.NodeTls("r4", "guest", "x509", error="its certificate cannot be read"),
             tdx.NodeTls("n1", "cluster", "x509", days_left=30),
             tdx.NodeTls("p1", "remote", "psk")]
    found = tdx.expiry_findings(nodes)
    assert findings(found) == [("cert-expiry", "critical", "r2"), ("cert-expiry", "warning", "n1"),
                               ("cert-expiry", "warning", "r1"), ("cert-expiry", "warning", "r4")]
    by_node = {f.node: f for f in found}
    assert by_node["r1"].fix == "remotectl tls renew r1" and by_node["r1"].fix_on == "here"
    assert "2026-05-29" in by_node["r2"].message and by_node["r4"].fix is None


def test_modes_mixed_and_a_psk_cluster_node_facing_an_x509_remote():
    same = [tdx.NodeTls("n1", "cluster", "x509"), tdx.NodeTls("r1", "remote", "x509")]
    assert tdx.mode_findings(same) == []
    mixed = [tdx.NodeTls("n1", "cluster", "x509"), tdx.NodeTls("n2", "cluster", "psk"),
             tdx.NodeTls("r1", "remote", "x509"), tdx.NodeTls("g1", "guest", "psk")]
    found = tdx.mode_findings(mixed)
    assert findings(found) == [("tls-mode-mismatch", "critical", "g1"), ("tls-mode-mismatch", "critical", "r1"),
                               ("tls-mode-mixed", "warning", None)]
    r1 = next(f for f in found if f.node == "r1")
    assert "r1 is set to X.509 but n2 to PSK" in r1.message and "fences r1" in r1.message and r1.fix is None
    # remotes that differ only from each other: every cluster node still faces one of them
    only_remotes = [tdx.NodeTls("n1", "cluster", "psk"), tdx.NodeTls("r1", "remote", "psk"),
                    tdx.NodeTls("r2", "remote", "x509")]
    assert findings(tdx.mode_findings(only_remotes)) == [("tls-mode-mismatch", "critical", "r2"),
                                                         ("tls-mode-mixed", "warning", None)]


def test_client_certificates_not_verified_on_3_0_2_and_3_0_3_only():
    assert [tdx.client_unverified(v) for v in [(3, 0, 1), (3, 0, 2), (3, 0, 3), (3, 0, 4), None]] == \
        [False, True, True, False, False]
    nodes = [tdx.NodeTls("r1", "remote", "x509", (3, 0, 3)), tdx.NodeTls("r2", "remote", "psk", (3, 0, 3)),
             tdx.NodeTls("n1", "cluster", "x509", (3, 0, 3)), tdx.NodeTls("g1", "guest", "x509", (3, 0, 2)),
             tdx.NodeTls("r3", "remote", "x509", (3, 0, 1))]
    found = tdx.client_auth_findings(nodes)
    assert findings(found) == [("x509-client-unverified", "warning", "g1"),
                               ("x509-client-unverified", "warning", "r1")]
    assert "any CA" in found[0].message and found[0].fix is None


def test_tls_checks_are_registered_live_checks():
    assert set(dx.TLS_CHECKS) <= set(dx.CHECKS) and set(dx.TLS_CHECKS) <= set(dx.LIVE_CHECKS)
    # the mode is no longer a config-drift finding: tls-mode-* say it once
    from remotectl.pacemaker.authkey import remote_settings

    x509_env = {"/etc/default/pacemaker": "PCMK_ca_file=/a\nPCMK_cert_file=/b\nPCMK_key_file=/c\n"}
    settings = {"n1": remote_settings({}), "r1": remote_settings(x509_env)}
    assert settings["r1"]["mode"] == "x509"
    assert dx.drift_findings(settings, {"n1": "cluster", "r1": "remote"}, {}) == []


# --- a node's certificate from its bytes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca():
    return model.new_ca("test CA", 3650, now=NOW - timedelta(days=400))


def _cert(ca, days, now):
    dns, ips = model.subject_alt_names("remote1", "192.0.2.7")
    return model.new_node_certificate(ca[0], ca[1], "remote1", dns, ips, days, now=now)


def test_judge_reads_expiry_mode_and_version(ca):
    target = Target("remote1", "192.0.2.7", node="remote1", type="remote")
    _, cert, _ = _cert(ca, 20, NOW)
    node = judge(target, NodeCerts(X509, (3, 0, 3), b"ca", cert), NOW)
    assert (node.mode, node.version, node.days_left, node.expired) == ("x509", (3, 0, 3), 20, False)
    _, old, _ = _cert(ca, 10, NOW - timedelta(days=30))
    assert judge(target, NodeCerts(X509, None, None, old), NOW).expired is True
    assert "cannot be read" in judge(target, NodeCerts(X509, None), NOW).error
    assert "no PEM certificate" in judge(target, NodeCerts(X509, None, None, b"junk"), NOW).error
    psk = judge(target, NodeCerts(PSK, (3, 0, 3)), NOW)
    assert (psk.mode, psk.days_left, psk.error) == ("psk", None, None)


# --- tls renew -------------------------------------------------------------------------------------------------------
def _ca_dir(tmp_path, ca, nodes):
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / model.CA_KEY_FILE).write_bytes(ca[0])
    (directory / model.CA_FILE).write_bytes(ca[1])
    for name, days, now in nodes:
        key, cert, _ = _cert(ca, days, now)
        (directory / f"{name}.key").write_bytes(key)
        (directory / f"{name}.pem").write_bytes(cert)
    return str(directory)


def test_due_window():
    info = model.CertInfo("CN=x", "CN=ca", "1", "", (NOW + timedelta(days=10)).isoformat(), 10, [], [], "sha256:")
    assert renew.due(info, 10, NOW) and renew.due(info, 30, NOW)
    assert not renew.due(info, 9, NOW) and not renew.due(info, 0, NOW)
    gone = model.CertInfo("CN=x", "CN=ca", "1", "", (NOW - timedelta(days=1)).isoformat(), -1, [], [], "sha256:")
    assert renew.due(gone, 0, NOW) and not renew.due(None, 30, NOW)


def test_renew_keeps_the_key_and_writes_only_due_certificates(tmp_path, ca):
    directory = _ca_dir(tmp_path, ca, [("remote1", 20, NOW), ("remote2", 200, NOW)])
    key_before = open(os.path.join(directory, "remote1.key"), "rb").read()
    other_before = open(os.path.join(directory, "remote2.pem"), "rb").read()
    requests = [local.IssueRequest("remote1", "remote", "192.0.2.7"), local.IssueRequest("remote2", "remote"),
                local.IssueRequest("remote3", "remote"), local.IssueRequest("b1", "bundle", skip="bundle replica")]
    dry = renew.reissue(requests, directory, days=365, within=30, dry_run=True, now=NOW)
    assert [(n.node, n.status) for n in dry.nodes] == [("remote1", "would-renew"), ("remote2", "current"),
                                                        ("remote3", "failed"), ("b1", "skipped")]
    assert "tls issue remote3" in dry.nodes[2].error and dry.exit_code() == 3
    done = renew.reissue(requests, directory, days=365, within=30, dry_run=False, now=NOW)
    assert [n.status for n in done.nodes] == ["renewed", "current", "failed", "skipped"]
    assert done.nodes[0].days_left == 20 and done.nodes[0].not_after.startswith("2027-06-01")
    cert = open(os.path.join(directory, "remote1.pem"), "rb").read()
    assert open(os.path.join(directory, "remote1.key"), "rb").read() == key_before
    assert open(os.path.join(directory, "remote2.pem"), "rb").read() == other_before
    assert stat.S_IMODE(os.stat(os.path.join(directory, "remote1.pem")).st_mode) == model.LOCAL_CERT_MODE
    check = model.check_node_files(ca[1], cert, key_before, names=["remote1", "192.0.2.7"], now=NOW)
    assert check.problems == [] and check.cert.fingerprint == done.nodes[0].fingerprint
    again = renew.reissue(requests[:1], directory, days=365, within=30, dry_run=False, now=NOW)
    assert again.nodes[0].status == "current"


def test_restart_steps_only_for_x509_nodes_whose_files_changed():
    rows = [renew.RenewedNode("r1", "remote", True, "renewed", restart="needed"),
            renew.RenewedNode("n1", "cluster", True, "renewed", restart="needed"),
            renew.RenewedNode("g1", "guest", True, "renewed", restart="needed"),
            renew.RenewedNode("r2", "remote", True, "current", push="unchanged")]
    result = renew.RenewResult("/d", 30, 365, False, rows)
    steps = renew.restart_steps(result)
    assert [(s.node, s.kind, " ".join(s.argv)) for s in steps] == [
        ("n1", "cluster", "systemctl restart pacemaker"), ("r1", "remote", "systemctl restart pacemaker_remote"),
        ("g1", "guest", "systemctl restart pacemaker_remote")]
    assert result.restart_needed == ["r1", "n1", "g1"] and result.exit_code() == 0
    rows[0].restart = "failed"
    assert result.exit_code() == 3


# --- check without --ca: this machine's PCMK_ca_file -----------------------------------------------------------------
def test_local_ca_from_the_env_files(tmp_path, ca):
    from remotectl.actions.check_x509 import local_ca

    sysconfig, default = tmp_path / "sysconfig", tmp_path / "default"
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca[1])
    files = (str(sysconfig), str(default))
    assert local_ca(files) is None  # no env file: PSK
    default.write_text(f'# comment\nPCMK_ca_file="{ca_path}"\nPCMK_cert_file=/c.pem\n')
    assert local_ca(files) is None  # not all three set: X.509 is off
    default.write_text(f'PCMK_ca_file="{ca_path}"\nPCMK_cert_file=/c.pem\nPCMK_key_file=/k.pem\n')
    assert tls_files.local_tls_settings(files).mode == "x509"
    assert local_ca(files) == (str(ca_path), ca[1])
    sysconfig.write_text(f"PCMK_ca_file={tmp_path / 'missing.pem'}\n")  # the first env file wins
    assert local_ca(files) is None


def test_push_then_restart_through_the_rotate_procedure(monkeypatch):
    """The push's outcome decides the restarts: X.509 nodes whose files were written, cluster nodes first, under
    maintenance (the authkey rotate --restart procedure, with its recording fake)."""
    from remotectl.actions.tls import push as push_module
    from tests.unit.test_authkey_actions import FakeRestarter

    pushed = {"n1": ("written", "x509"), "r1": ("written", "x509"), "r2": ("unchanged", "x509"),
              "r3": ("written", "psk"), "r4": ("failed", None)}

    def fake_push(targets, runner_factory, directory, remote_dir, on_done=None):
        nodes = [push_module.NodePushResult.of(t, ok=pushed[t.label][0] != "failed", status=pushed[t.label][0],
                                               error="no route" if pushed[t.label][0] == "failed" else None)
                 for t in targets]
        for n in nodes:
            n.tls_mode = pushed[n.node][1]
        return push_module.TlsPushResult(directory, remote_dir, "sha256:ca", nodes)

    monkeypatch.setattr(push_module, "push", fake_push)
    types = {"n1": "cluster", "r1": "remote", "r2": "remote", "r3": "remote", "r4": "remote"}
    rows = [renew.RenewedNode(name, types[name], True, "renewed" if name != "r2" else "current") for name in types]
    targets = [Target(name, name, type=types[name], node=name) for name in types]
    restarter = FakeRestarter()
    result = renew.push_and_restart(renew.RenewResult("/d", 30, 365, False, rows), targets, lambda d: None,
                                    "/etc/pacemaker/tls", restarter=restarter)
    by_node = {n.node: n for n in result.nodes}
    assert {n: (r.push, r.restart) for n, r in by_node.items()} == {
        "n1": ("written", "done"), "r1": ("written", "done"), "r2": ("unchanged", None), "r3": ("written", None),
        "r4": ("failed", None)}
    runs = [entry for entry in restarter.log if entry[0] == "run"]
    assert runs == [("run", "n1", "systemctl restart pacemaker"), ("run", "r1", "systemctl restart pacemaker_remote")]
    assert any("maintenance-mode" in " ".join(entry[1:]) for entry in restarter.log if entry[0] == "cluster")
    assert [r.code for r in result.reports] == ["tls-push-failed"] and result.exit_code() == 3
    assert result.restart_needed == [] and not by_node["r4"].ok
    # without a restarter: the nodes to restart are named
    rows = [renew.RenewedNode("r1", "remote", True, "renewed")]
    alone = renew.push_and_restart(renew.RenewResult("/d", 30, 365, False, rows), targets[1:2], lambda d: None,
                                   "/etc/pacemaker/tls")
    assert alone.restart_needed == ["r1"] and [r.code for r in alone.reports] == ["tls-restart-needed"]
    assert alone.exit_code() == 0


def test_an_interrupted_renewal_is_refused_until_resume_restarts_the_rest(monkeypatch, tmp_path):
    """Ctrl-C during r1's restart: the rerun finds the certificates current and the files unchanged, so only the
    journal says r1 still serves the old certificate and maintenance is on; every restart procedure refuses
    until `--resume`, which restarts r1 alone and puts maintenance back as it was before the interrupted run."""
    from remotectl.actions import authkey as actions
    from remotectl.actions.tls import push as push_module
    from remotectl.actions.tls import switch
    from remotectl.reports import RefusedError
    from tests.unit.test_authkey_actions import MM_OFF, FakeRestarter, Interrupted, factory, make_hosts, target

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status = {"value": "written"}

    def fake_push(targets, runner_factory, directory, remote_dir, on_done=None):
        nodes = [push_module.NodePushResult.of(t, ok=True, status=status["value"]) for t in targets]
        for n in nodes:
            n.tls_mode = "x509"
        return push_module.TlsPushResult(directory, remote_dir, "sha256:ca", nodes)

    monkeypatch.setattr(push_module, "push", fake_push)
    types = {"n1": "cluster", "r1": "remote"}
    targets = [Target(name, name, type=types[name], node=name) for name in types]

    def run(status_now, restarter, resume):
        status["value"] = status_now
        rows = [renew.RenewedNode(n, t, True, "renewed" if status_now == "written" else "current")
                for n, t in types.items()]
        return renew.push_and_restart(renew.RenewResult("/d", 30, 365, False, rows), targets, lambda d: None,
                                      "/etc/pacemaker/tls", restarter=restarter,
                                      journal=renew.journal_for(list(types), resume))

    with pytest.raises(KeyboardInterrupt):
        run("written", Interrupted("r1"), False)
    with pytest.raises(RefusedError, match=r"tls renew --restart --resume"):
        renew.journal_for(list(types), False)
    with pytest.raises(RefusedError, match="tls renew --restart"):
        switch._check_journals(list(types), "psk", False)
    with pytest.raises(RefusedError, match="tls renew --restart"):
        actions.rotate_key([target("n1", "cluster"), target("r1", "remote")],
                           factory(make_hosts("n1", "r1", version="Pacemaker 3.0.3")), restart=True,
                           restarter=FakeRestarter())
    restarter = FakeRestarter(maintenance="true", node_maintenance={"r1": "true"})
    result = run("unchanged", restarter, True)
    assert {n.node: (n.push, n.restart) for n in result.nodes} == {"n1": ("unchanged", "done"),
                                                                  "r1": ("unchanged", "done")}
    assert [entry[1] for entry in restarter.log if entry[0] == "run"] == ["r1"]  # n1 was restarted before
    assert MM_OFF in restarter.log and result.exit_code() == 0
    with pytest.raises(RefusedError, match="nothing to resume"):
        renew.journal_for(list(types), True)
