"""`check` without --ca against real GnuTLS servers: the key probe first, then the certificate probe for the
servers that answer tls-not-psk, with the PCMK_ca_file of this machine's env files (here: files in a tmp dir)."""

from remotectl.actions import check, check_x509
from remotectl.reports import Reporter
from remotectl.transport import psk_probe, x509_probe
from tests.integration.test_x509_probe import ADDRESS, servers  # noqa: F401 - the fixture


def _plan(servers, names):  # noqa: F811
    return check.plan_check(lambda: [], [f"{ADDRESS}:{servers.ports[n]}" for n in names], timeout=5)


def test_x509_servers_get_the_certificate_probe_with_the_local_ca(servers, tmp_path):  # noqa: F811
    names = ["trusted", "untrusted", "psk"]
    plan = _plan(servers, names)
    key = b"k" * 32
    first = [check.entry_from_probe(t, r.to_dict()) for t, r in
             zip(plan.targets, psk_probe.probe_many([(t.host, t.port) for t in plan.targets], key, timeout=5))]
    assert [e.verdict for e in first] == ["tls-not-psk", "tls-not-psk", "mismatch"]
    env = (str(tmp_path / "sysconfig"), str(tmp_path / "default"))
    reporter = Reporter()
    # no PCMK_ca_file here and the targets are no nodes: the entries stay, with a warning each
    assert check_x509.follow_x509(plan, first, None, reporter, env_files=env) == first
    assert [r.code for r in reporter.reports] == ["check-ca-unknown", "check-ca-unknown"]
    (tmp_path / "default").write_text(f"PCMK_ca_file={servers.ca}\nPCMK_cert_file=/c\nPCMK_key_file=/k\n")
    followed = check_x509.follow_x509(plan, first, None, Reporter(), env_files=env)
    assert [e.verdict for e in followed] == [x509_probe.X509_TRUSTED, x509_probe.X509_UNTRUSTED, "mismatch"]
    assert followed[0].ok and followed[0].ca == servers.ca and followed[2] is first[2]
    doc = followed[0].to_dict()
    assert doc["ca"] == servers.ca and doc["subject"] == "CN=spare1" and "days_left" in doc
    assert "ca" not in followed[2].to_dict()
    # no authkey here: every target gets the certificate probe
    only = check_x509.x509_only(plan, lambda _pending: None, env_files=env)
    assert [e.verdict for e in only] == [x509_probe.X509_TRUSTED, x509_probe.X509_UNTRUSTED,
                                         x509_probe.TLS_NOT_X509]
