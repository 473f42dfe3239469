"""tls push / verify for real: the remotectl CLI against three real sshd "hosts" (authkey_hosts.py), each with its
own private TLS directory and its own /etc/default, named r0, r1, r2 by an offline CIB and an ssh_config. The CA
and the certificates are made by `tls ca create` and `tls issue`."""

import json

import pytest

from tests.integration import authkey_helpers, authkey_hosts, cib_xml
from tests.integration.authkey_hosts import KEY_DIR
from tests.integration.conftest import require

REMOTE_DIR = f"{KEY_DIR}/tls"
NAMES = ("r0", "r1", "r2")
SERVERS = ("r0", "r1", "127.0.0.1")  # r2 is known by its IP address: an IP SubjectAltName
ENV = "/etc/default/pacemaker"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require(authkey_hosts.available(), "needs root, sshd, unshare and nsenter")
    workdir = tmp_path_factory.mktemp("tls-hosts")
    hosts = authkey_hosts.start_hosts(workdir, 3, private_env=True)
    try:
        config = workdir / "ssh_config"
        config.write_text("".join(f"Host {server}\n  HostName 127.0.0.1\n  Port {host.port}\n  User root\n"
                                  for server, host in zip(SERVERS, hosts.hosts)))
        resources = "".join(
            f'<primitive id="{name}" class="ocf" provider="pacemaker" type="remote"><instance_attributes '
            f'id="{name}-ia"><nvpair id="{name}-server" name="server" value="{server}"/></instance_attributes>'
            f'</primitive>' for name, server in zip(NAMES, SERVERS))
        cib = workdir / "cib.xml"
        cib.write_text(cib_xml.cib(resources, [], "", stonith_enabled=False))
        options = ["--ssh-config", str(config), "--identity", str(hosts.client_key), "--known-hosts",
                   str(hosts.known_hosts), "--cib", str(cib)]
        yield hosts, options, workdir
    finally:
        hosts.stop()


@pytest.fixture
def fresh(lab, tmp_path):
    hosts, options, _ = lab
    for host in hosts.hosts:
        host.clear()
        host.run(f'rm -f -- {ENV}')
    directory = tmp_path / "ca"

    def cli(*args):
        return authkey_helpers.remotectl(options, *args, timeout=120)

    assert cli("tls", "ca", "create", "--dir", str(directory)).returncode == 0
    issued = cli("tls", "issue", *NAMES, "--dir", str(directory))
    assert issued.returncode == 0, issued.stderr
    return hosts.hosts, cli, directory


def _push(cli, directory, *nodes):
    return cli("tls", "push", *(nodes or NAMES), "--dir", str(directory), "--remote-dir", REMOTE_DIR, "--json")


def _verify(cli, directory, *nodes):
    result = cli("tls", "verify", *(nodes or NAMES), "--dir", str(directory), "--remote-dir", REMOTE_DIR, "--json")
    return result.returncode, json.loads(result.stdout), result


def _x509(host, prefix=REMOTE_DIR):
    host.write(f"PCMK_ca_file={prefix}/ca.pem\nPCMK_cert_file={prefix}/cert.pem\nPCMK_key_file={prefix}/key.pem\n"
               .encode(), path=ENV, mode=0o644, owner="root:root")


def _secrets(directory):
    from tests.integration.authkey_helpers import leak_forms

    forms = []
    for name in ("ca",) + NAMES:
        text = (directory / f"{name}.key").read_bytes()
        body = b"".join(line for line in text.splitlines() if b"PRIVATE KEY" not in line)
        forms += [body[:40]] + leak_forms(text)[:1]
    return forms


def test_push_installs_with_modes_then_unchanged_and_verify_says_ready(fresh):
    hosts, cli, directory = fresh
    result = _push(cli, directory)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [n["status"] for n in doc["nodes"]] == ["written"] * 3
    assert [n["tls_mode"] for n in doc["nodes"]] == ["psk"] * 3
    for host, name in zip(hosts, NAMES):
        assert host.stat(REMOTE_DIR) == (0o750, "root", "haclient")
        assert host.stat(f"{REMOTE_DIR}/key.pem") == (0o440, "root", "haclient")
        assert host.stat(f"{REMOTE_DIR}/cert.pem") == (0o644, "root", "haclient")
        assert host.read(f"{REMOTE_DIR}/key.pem") == (directory / f"{name}.key").read_bytes()
        assert host.read(f"{REMOTE_DIR}/cert.pem") == (directory / f"{name}.pem").read_bytes()
        assert host.read(f"{REMOTE_DIR}/ca.pem") == (directory / "ca.pem").read_bytes()
        assert [n for n in host.listdir(REMOTE_DIR) if n.startswith(".remotectl")] == []
    again = _push(cli, directory)
    assert again.returncode == 0
    assert [n["status"] for n in json.loads(again.stdout)["nodes"]] == ["unchanged"] * 3
    code, doc, verify = _verify(cli, directory)
    assert code == 0, verify.stdout
    assert doc["mode"] == "psk" and doc["ok"] is True and doc["ca_source"] == "directory"
    assert [r["code"] for r in doc["reports"]] == ["tls-not-enabled"]
    nodes = {n["node"]: n for n in doc["nodes"]}
    assert nodes["r2"]["certificate"]["ip_addresses"] == ["127.0.0.1"] and nodes["r2"]["names"] == ["r2", "127.0.0.1"]
    assert all(n["problems"] == [] and n["days_left"] in (364, 365) for n in nodes.values())
    no_local_ca = cli("tls", "verify", *NAMES, "--dir", str(directory / "none"), "--remote-dir", REMOTE_DIR,
                      "--json")
    assert no_local_ca.returncode == 0 and json.loads(no_local_ca.stdout)["ca_source"] == "majority"
    human = cli("tls", "verify", *NAMES, "--dir", str(directory), "--remote-dir", REMOTE_DIR)
    assert human.returncode == 0 and b"mode: psk" in human.stdout
    for output in (result, again, verify, human):
        for form in _secrets(directory):
            assert form not in output.stdout and form not in output.stderr


def test_verify_catches_mixed_modes_mismatch_wrong_ca_and_a_readable_key(fresh, tmp_path):
    hosts, cli, directory = fresh
    assert _push(cli, directory).returncode == 0
    _x509(hosts[0])
    code, doc, _ = _verify(cli, directory)
    assert code == 3 and doc["mode"] == "mixed"
    assert "tls-mode-mixed" in [r["code"] for r in doc["reports"]]
    assert [n["tls_mode"] for n in doc["nodes"]] == ["x509", "psk", "psk"]
    for host in hosts[1:]:
        _x509(host)
    code, doc, _ = _verify(cli, directory)
    assert code == 0 and doc["mode"] == "x509", doc
    # r0: a certificate and key from another CA; r1: r2's key; r2: its key world-readable
    other = tmp_path / "other"
    assert cli("tls", "ca", "create", "--dir", str(other), "--name", "rogue").returncode == 0
    assert cli("tls", "issue", "r0", "--dir", str(other)).returncode == 0
    hosts[0].write((other / "r0.pem").read_bytes(), path=f"{REMOTE_DIR}/cert.pem", mode=0o644)
    hosts[0].write((other / "r0.key").read_bytes(), path=f"{REMOTE_DIR}/key.pem", mode=0o440)
    hosts[1].write((directory / "r2.key").read_bytes(), path=f"{REMOTE_DIR}/key.pem", mode=0o440)
    hosts[2].write((directory / "r2.key").read_bytes(), path=f"{REMOTE_DIR}/key.pem", mode=0o644)
    code, doc, _ = _verify(cli, directory)
    assert code == 3
    problems = {n["node"]: {p["code"] for p in n["problems"]} for n in doc["nodes"]}
    assert "tls-untrusted" in problems["r0"]
    assert problems["r1"] == {"tls-key-mismatch"}
    assert problems["r2"] == {"tls-key-world-readable"}
    assert [n["ok"] for n in doc["nodes"]] == [False, False, False]
    # push repairs r0..r2 (other content, other mode) and verify is happy again
    repaired = _push(cli, directory)
    assert [n["status"] for n in json.loads(repaired.stdout)["nodes"]] == ["written"] * 3
    assert _verify(cli, directory)[0] == 0


def test_incomplete_settings_missing_files_and_unreachable(fresh):
    hosts, cli, directory = fresh
    hosts[0].write(b"PCMK_ca_file=/x/ca.pem\n", path=ENV, mode=0o644, owner="root:root")
    code, doc, _ = _verify(cli, directory, "r0", "r1")
    assert code == 3
    problems = {n["node"]: {p["code"] for p in n["problems"]} for n in doc["nodes"]}
    assert "tls-settings-incomplete" in problems["r0"] and "tls-file-missing" in problems["r1"]
    from tests.integration.sshd import free_port

    dead = f"root@127.0.0.1:{free_port()}"
    result = cli("tls", "verify", dead, "--dir", str(directory), "--remote-dir", REMOTE_DIR, "--json")
    assert result.returncode == 1
    assert [r["code"] for r in json.loads(result.stdout)["reports"]] == ["node-unreachable"]
    (directory / "r1.pem").unlink()
    partial = _push(cli, directory, "r0", "r1")
    assert partial.returncode == 3
    rows = json.loads(partial.stdout)["nodes"]
    assert [n["status"] for n in rows] == ["written", "failed"] and "r1.pem" in rows[1]["error"]
    assert not hosts[1].exists(f"{REMOTE_DIR}/key.pem")


def test_verify_reads_the_files_the_settings_name(fresh):
    hosts, cli, directory = fresh
    elsewhere = f"{KEY_DIR}/elsewhere"
    for name, local in (("ca", "ca"), ("cert", "r2"), ("key", "r2")):
        suffix = ".key" if name == "key" else ".pem"
        hosts[2].write((directory / f"{local}{suffix}").read_bytes(), path=f"{elsewhere}/{name}.pem",
                       mode=0o440 if name == "key" else 0o644)
    _x509(hosts[2], elsewhere)
    code, doc, _ = _verify(cli, directory, "r2")
    assert code == 0 and doc["mode"] == "x509", doc
    node = doc["nodes"][0]
    assert [f["path"] for f in node["files"]] == [f"{elsewhere}/{n}.pem" for n in ("ca", "cert", "key")]
    assert node["settings"]["cert_file"] == f"{elsewhere}/cert.pem"
