"""The pure X.509 checks (remotectl/pacemaker/x509.py) on real certificates built with cryptography, and the
local `tls ca create` / `tls issue` files in tmp dirs."""

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from remotectl.pacemaker import x509 as model

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def ca():
    return model.new_ca("test CA", 3650, now=NOW - timedelta(days=1))


def _node(ca, name="remote1", address="192.0.2.7", days=365, now=NOW, **kw):
    dns, ips = model.subject_alt_names(name, address)
    key, cert, _ = model.new_node_certificate(ca[0], ca[1], name, dns, ips, days, now=now, **kw)
    return key, cert


def codes(check):
    return sorted(p.code for p in check.problems)


def test_a_good_node_has_no_problem_and_its_names(ca):
    key, cert = _node(ca)
    check = model.check_node_files(ca[1], cert, key, names=["remote1", "192.0.2.7"], reference_ca_pem=ca[1],
                                   now=NOW)
    assert check.problems == []
    assert check.cert.dns_names == ["remote1"] and check.cert.ip_addresses == ["192.0.2.7"]
    assert check.cert.days_left == 365 and check.cert.subject == "CN=remote1"
    assert check.ca_fingerprint == model.fingerprint_der(model.load_certificates(ca[1], "ca")[0])


def test_expired_and_expiring_and_not_yet_valid(ca):
    key, cert = _node(ca, days=10, now=NOW - timedelta(days=20))
    assert "tls-expired" in codes(model.check_node_files(ca[1], cert, key, now=NOW))
    key, cert = _node(ca, days=20)
    check = model.check_node_files(ca[1], cert, key, now=NOW)
    assert codes(check) == ["tls-expires-soon"] and check.problems[0].severity == "warning"
    key, cert = _node(ca, now=NOW + timedelta(days=3))
    assert codes(model.check_node_files(ca[1], cert, key, now=NOW)) == ["tls-not-yet-valid"]


def test_a_certificate_from_another_ca(ca):
    other = model.new_ca("rogue CA", 3650, now=NOW)
    key, cert = _node(other)
    check = model.check_node_files(ca[1], cert, key, reference_ca_pem=ca[1], now=NOW)
    assert codes(check) == ["tls-untrusted", "tls-untrusted"]
    # the node trusts its own (other) CA, but that is not the cluster's
    check = model.check_node_files(other[1], cert, key, reference_ca_pem=ca[1], now=NOW)
    assert codes(check) == ["tls-ca-differs", "tls-untrusted"]


def test_same_subject_different_key_is_still_untrusted(ca):
    impostor = model.new_ca("test CA", 3650, now=NOW)  # same name as the real CA, other key
    key, cert = _node(impostor)
    assert "tls-untrusted" in codes(model.check_node_files(ca[1], cert, key, now=NOW))


def test_name_mismatch_is_a_warning(ca):
    key, cert = _node(ca, name="remote1", address="192.0.2.7")
    check = model.check_node_files(ca[1], cert, key, names=["remote1", "192.0.2.8", "REMOTE1"], now=NOW)
    assert codes(check) == ["tls-name-mismatch"]
    assert check.problems[0].severity == "warning" and "192.0.2.8" in check.problems[0].message


def test_key_mismatch_encrypted_and_garbage(ca):
    key1, cert1 = _node(ca)
    key2, _ = _node(ca)
    assert codes(model.check_node_files(ca[1], cert1, key2, now=NOW)) == ["tls-key-mismatch"]
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key1, None)
    encrypted = loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(b"pw"))
    assert codes(model.check_node_files(ca[1], cert1, encrypted, now=NOW)) == ["tls-key-encrypted"]
    assert codes(model.check_node_files(b"junk", b"junk", b"junk", now=NOW)) == ["tls-pem-invalid"] * 3
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert codes(model.check_node_files(None, broken, None, now=NOW)) == ["tls-pem-invalid"]


def test_a_leaf_in_the_ca_file_is_flagged(ca):
    key, cert = _node(ca)
    assert "tls-not-a-ca" in codes(model.check_node_files(cert, cert, key, now=NOW))


def test_rsa_and_p384_keys(ca):
    for key_type in ("rsa-3072", "ec-p384"):
        key, cert = _node(ca, key_type=key_type)
        assert model.check_node_files(ca[1], cert, key, now=NOW).problems == []


def test_lifetime_limits_and_the_ca_end(ca):
    with pytest.raises(model.CertificateError):
        _node(ca, days=826)
    short_ca = model.new_ca("short", 10, now=NOW)
    dns, ips = model.subject_alt_names("n", None)
    _, cert, notes = model.new_node_certificate(short_ca[0], short_ca[1], "n", dns, ips, 365, now=NOW)
    assert notes and "ends with the CA" in notes[0]
    assert model.describe(model.load_certificates(cert, "c")[0], NOW).days_left == 10
    with pytest.raises(model.CertificateError, match="does not belong"):
        model.new_node_certificate(short_ca[0], ca[1], "n", dns, ips, 30, now=NOW)


def test_subject_alt_names_and_file_stems():
    assert model.subject_alt_names("r1", "10.0.0.1") == (["r1"], ["10.0.0.1"])
    assert model.subject_alt_names("r1", "r1") == (["r1"], [])
    assert model.subject_alt_names("r1", "r1.example.com") == (["r1", "r1.example.com"], [])
    assert model.subject_alt_names("r1", "fe80:0::1") == (["r1"], ["fe80::1"])
    assert model.subject_alt_names("r 1", "bad/host") == ([], [])
    for bad in ("../x", ".hidden", "a/b", "", "ca", "x" * 300, "é"):
        with pytest.raises(model.CertificateError):
            model.file_stem(bad)
    assert model.file_stem("node-1.example") == "node-1.example"


def test_settings_and_modes():
    sysconfig, default = "/etc/sysconfig/pacemaker", "/etc/default/pacemaker"
    assert model.tls_settings({}).mode == "psk"
    full = 'PCMK_ca_file=/a\nPCMK_cert_file="/b"\nexport PCMK_key_file=/c\n# PCMK_crl_file=/d\n'
    settings = model.tls_settings({default: full})
    assert (settings.mode, settings.ca_file, settings.cert_file, settings.key_file, settings.crl_file) == \
        ("x509", "/a", "/b", "/c", None)
    partial = model.tls_settings({default: "PCMK_ca_file=/a\nPCMK_key_file=\n"})
    assert partial.mode == "psk" and partial.missing == ("PCMK_cert_file", "PCMK_key_file")
    both = model.tls_settings({default: full, sysconfig: "PCMK_ca_file=/other\n"})
    assert both.ca_file == "/other" and both.notes
    assert model.cluster_mode(["x509", "x509"]) == "x509"
    assert model.cluster_mode(["x509", "psk"]) == "mixed" and model.cluster_mode([]) == "unknown"


def test_permission_problems():
    from remotectl.pacemaker.authkey import FileFacts

    good = FileFacts("/k", True, 10, 0o440, "root", "haclient", "x", reader_can_read=True)
    assert model.permission_problems("key", good) == []
    world = FileFacts("/k", True, 10, 0o644, "root", "root", "x", reader_can_read=True)
    assert [p.code for p in model.permission_problems("key", world)] == ["tls-key-world-readable"]
    assert model.permission_problems("cert", world) == []
    other_group = FileFacts("/k", True, 10, 0o640, "root", "users", "x", reader_can_read=False)
    assert [p.code for p in model.permission_problems("key", other_group)] == \
        ["tls-key-group-readable", "tls-unreadable-by-hacluster"]
    writable = FileFacts("/c", True, 10, 0o666, "root", "root", "x")
    assert "tls-writable-by-others" in [p.code for p in model.permission_problems("cert", writable)]


# -- the CLI's local commands ---------------------------------------------------------------------------------------
class _Result:
    def __init__(self, code, captured):
        self.exit_code, self.output, self.stderr = code, captured.out, captured.err


@pytest.fixture
def cli(capsys):
    from remotectl.cli import run

    def invoke(*args):
        code = run(list(args))
        return _Result(code, capsys.readouterr())
    return invoke


def test_ca_create_modes_refusals_and_force(tmp_path, cli):
    directory = tmp_path / "ca"
    first = cli("tls", "ca", "create", "--dir", str(directory), "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.output)
    assert doc["ca"]["subject"] == "CN=remotectl cluster CA" and doc["key_type"] == "ec-p256"
    assert stat.S_IMODE(os.stat(directory / "ca.key").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert b"PRIVATE KEY" not in first.output.encode()
    again = cli("tls", "ca", "create", "--dir", str(directory))
    assert again.exit_code == 4
    before = (directory / "ca.pem").read_bytes()
    forced = cli("tls", "ca", "create", "--dir", str(directory), "--force", "--name", "second")
    assert forced.exit_code == 0 and (directory / "ca.pem").read_bytes() != before
    (directory / "ca.pem").unlink()
    os.symlink("/etc/passwd", directory / "ca.pem")
    symlink = cli("tls", "ca", "create", "--dir", str(directory), "--force")
    assert symlink.exit_code == 4 and "not a regular file" in symlink.stderr
    assert os.path.islink(directory / "ca.pem")


def test_issue_from_a_cib_file(tmp_path, cli):
    from pathlib import Path

    cib = Path(__file__).resolve().parents[2] / "examples" / "cib.xml"
    directory = tmp_path / "ca"
    assert cli("tls", "ca", "create", "--dir", str(directory)).exit_code == 0
    result = cli("--cib", str(cib), "tls", "issue", "--all", "--dir", str(directory), "--json", "--days", "60")
    assert result.exit_code == 0, result.output
    nodes = {n["node"]: n for n in json.loads(result.output)["nodes"]}
    assert nodes["remote1"]["status"] == "issued"
    assert nodes["remote1"]["dns_names"] == ["remote1"] and nodes["remote1"]["ip_addresses"] == ["127.0.0.2"]
    assert nodes["node1"]["ip_addresses"] == []
    for name in nodes:
        assert stat.S_IMODE(os.stat(directory / f"{name}.key").st_mode) == 0o400
        key, cert = (directory / f"{name}.key").read_bytes(), (directory / f"{name}.pem").read_bytes()
        ca_pem = (directory / "ca.pem").read_bytes()
        assert model.check_node_files(ca_pem, cert, key).problems == []
    unchanged = cli("--cib", str(cib), "tls", "issue", "remote1", "--dir", str(directory), "--json")
    assert json.loads(unchanged.output)["nodes"][0]["status"] == "exists"
    unknown = cli("--cib", str(cib), "tls", "issue", "nosuch", "--dir", str(directory))
    assert unknown.exit_code == 1 and "not a node" in unknown.stderr
    too_long = cli("--cib", str(cib), "tls", "issue", "remote1", "--dir", str(directory), "--days", "900")
    assert too_long.exit_code == 2
    no_ca = cli("--cib", str(cib), "tls", "issue", "remote1", "--dir", str(tmp_path / "none"))
    assert no_ca.exit_code == 1 and "does not exist" in no_ca.stderr
