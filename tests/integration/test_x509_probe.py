"""The X.509 safe probe against real GnuTLS servers (gnutls-serv on 127.0.0.1, requiring a client certificate as
pacemaker-remoted does in X.509 mode) with certificates issued by remotectl's own model: a trusted one, an expired
one, one with other names and one of another CA each get their own verdict; a PSK-only server is tls-not-x509.
Every probe ends at our first outgoing message after the ClientHello: the server never sees a certificate or
Finished of ours (gnutls-serv logs a failed handshake, never a completed one)."""

import json
import os
import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from remotectl.pacemaker import x509 as model
from remotectl.transport import x509_probe as xp
from tests.integration.authkey_helpers import remotectl as _remotectl
from tests.integration.conftest import require

ADDRESS = "127.0.0.1"


def _free_port():
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return sock.getsockname()[1]


class Servers(object):
    def __init__(self, directory):
        self.dir = directory
        self.procs = []

    def write(self, name, data):
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def start(self, argv, log):
        port = _free_port()
        proc = subprocess.Popen(["gnutls-serv", "-p", str(port), *argv], stdout=open(self.dir / log, "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (self.dir / log).read_text()
            try:
                socket.create_connection((ADDRESS, port), timeout=0.5).close()
                return port
            except OSError:
                assert time.monotonic() < deadline, "gnutls-serv did not listen"
                time.sleep(0.05)

    def x509(self, name, pair, ca_path):
        cert, key = self.write(f"{name}.pem", pair[1]), self.write(f"{name}.key", pair[0])
        return self.start(["--x509certfile", cert, "--x509keyfile", key, "--x509cafile", ca_path,
                           "--require-client-cert"], f"{name}.log")

    def close(self):
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    require(shutil.which("gnutls-serv") is not None and shutil.which("psktool") is not None,
            "gnutls-serv/psktool (gnutls-bin) not installed")
    s = Servers(tmp_path_factory.mktemp("x509-probe"))
    ca = model.new_ca("cluster", 30)
    other = model.new_ca("other", 30)
    s.ca = s.write("ca.pem", ca[1])
    past = datetime.now(timezone.utc) - timedelta(days=40)
    s.ports = {
        "trusted": s.x509("trusted", model.new_node_certificate(*ca, "spare1", ["spare1"], [ADDRESS], 30), s.ca),
        "expired": s.x509("expired", model.new_node_certificate(*ca, "spare1", ["spare1"], [ADDRESS], 2,
                                                                now=past), s.ca),
        "wrongname": s.x509("wrongname", model.new_node_certificate(*ca, "other", ["other"], ["127.0.0.9"], 30),
                            s.ca),
        "untrusted": s.x509("untrusted", model.new_node_certificate(*other, "spare1", ["spare1"], [ADDRESS], 30),
                            s.ca),
    }
    passwd = s.dir / "psk.passwd"
    subprocess.run(["psktool", "-u", "lrmd", "-p", str(passwd)], check=True, capture_output=True)
    s.ports["psk"] = s.start(["--pskpasswd", str(passwd), "--priority", "NORMAL:-KX-ALL:+PSK"], "psk.log")
    yield s
    s.close()


def remotectl(*args):
    done = _remotectl([], *args)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


EXPECTED = {"trusted": xp.X509_TRUSTED, "expired": xp.X509_EXPIRED, "wrongname": xp.X509_NAME_MISMATCH,
            "untrusted": xp.X509_UNTRUSTED, "psk": xp.TLS_NOT_X509}


def test_each_certificate_problem_gets_its_own_verdict_and_the_handshake_never_completes(servers):
    names = list(EXPECTED)
    results = xp.probe_many([(ADDRESS, servers.ports[n], [ADDRESS]) for n in names], servers.ca, timeout=5)
    assert {n: r.verdict for n, r in zip(names, results)} == EXPECTED
    by_name = dict(zip(names, results))
    for name in ("trusted", "expired", "wrongname", "untrusted"):
        result = by_name[name]
        assert result.tls_version == "TLS1.3" and result.gnutls_rc == xp.RC_CHECKED, result.to_dict()
        # we stopped at our own Certificate, after the server's CertificateVerify and Finished were verified
        assert result.events[-1] == "out:CERTIFICATE:pre" and "in:FINISHED:post" in result.events
        assert not [e for e in result.events if e.startswith("out:") and "CLIENT_HELLO" not in e][:-1]
    assert by_name["trusted"].ok and not any(r.ok for n, r in by_name.items() if n != "trusted")
    assert by_name["trusted"].subject == "CN=spare1" and by_name["trusted"].ip_addresses == (ADDRESS,)
    assert 28 <= by_name["trusted"].days_left <= 30
    assert by_name["expired"].days_left < 0
    assert by_name["untrusted"].issuer == "CN=other"
    # the node name counts too: a certificate naming "other" is trusted when that is the name expected
    assert xp.probe(ADDRESS, servers.ports["wrongname"], servers.ca, names=[ADDRESS, "other"]).verdict == \
        xp.X509_TRUSTED
    for name in ("trusted", "expired", "wrongname", "untrusted"):
        log = (servers.dir / f"{name}.log").read_text()
        assert "Error in handshake" in log and "Handshake was completed" not in log, log


def test_check_ca_cli_json_and_exit_codes(servers):
    trusted, expired = f"{ADDRESS}:{servers.ports['trusted']}", f"{ADDRESS}:{servers.ports['expired']}"
    ok = remotectl("check", "--ca", servers.ca, trusted, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["mode"] == "x509" and doc["ca"] == servers.ca and "key" not in doc
    entry = doc["results"][0]
    assert entry["verdict"] == "x509-trusted" and entry["ok"] is True
    assert entry["dns_names"] == ["spare1"] and entry["ip_addresses"] == [ADDRESS] and entry["days_left"] >= 28
    mixed = remotectl("check", "--ca", servers.ca, trusted, expired)
    assert mixed.returncode == 3 and "x509-expired" in mixed.stdout, mixed.stdout + mixed.stderr
    missing = remotectl("check", "--ca", str(servers.dir / "nope.pem"), trusted)
    assert missing.returncode == 1 and "cannot load the CA file" in missing.stderr
    assert "Traceback" not in missing.stderr
    both = remotectl("check", "--ca", servers.ca, "--key", servers.ca, trusted)
    assert both.returncode == 2 and "not with --key" in both.stderr
