"""The safe PSK probe against real servers: standalone pacemaker-remoted instances (own netns, socat forwarder on
127.0.1.N), sshd, gnutls-serv with X.509, a GnuTLS server with a corrupted Finished, and plain TCP servers.

The safety property is checked in remoted's own log: a probe() never produces "Remote client connection accepted"
(the line that precedes the cluster's "unexpected client takeover"), while full_check() does."""

import glob
import json
import os
import subprocess
import sys
import time

import pytest

from remotectl.transport import lrmd_check
from remotectl.transport import psk_probe as pp
from tests.integration.conftest import require_probe_servers
from tests.integration.probe_servers import ACCEPTED_LINE, ProbeLab, call_in_netns, make_key

FAILED_110 = "The TLS connection was non-properly terminated. | rc=-110"
FAILED_55 = "An illegal parameter has been received. | rc=-55"
# remoted logs -54 (pull error) for the TLS1.2 abort when the client's close resets the connection, -110 when the
# forwarder turns it into a FIN: only check that the handshake failed
FAILED_ANY = "TLS handshake with remote client failed"
TLS12_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.2"


class Env(object):
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_probe_servers(need_sshd=True, need_gnutls_serv=True)
    work = tmp_path_factory.mktemp("psk-probe")
    e = Env()
    e.key4096_path = make_key(work / "key4096", 4096)
    e.key256_path = make_key(work / "key256", 256)
    e.wrong_path = make_key(work / "wrong4096", 4096)
    e.key4096, e.key256, e.wrong = (pp.read_key(p) for p in (e.key4096_path, e.key256_path, e.wrong_path))
    lab = ProbeLab(work / "lab")
    try:
        e.r4096 = lab.remoted("k4096", e.key4096_path)
        e.r256 = lab.remoted("k256", e.key256_path)
        e.r12 = lab.remoted("tls12", e.key4096_path, priorities=TLS12_ONLY)
        e.rfull = lab.remoted("full", e.key4096_path)
        e.rfull12 = lab.remoted("full12", e.key4096_path, priorities=TLS12_ONLY)
        e.sshd = lab.sshd()
        e.x509 = lab.gnutls_serv_x509()
        e.bad_finished = lab.bad_finished_server(e.key256_path)
        e.silent = lab.tcp_server("silent")
        e.echo = lab.tcp_server("echo")
        e.http400 = lab.tcp_server("http400")
        e.closed = lab.closed_port()
        e.lab = lab
        yield e
    finally:
        lab.close()


def assert_never_accepted(remoted):
    assert remoted.count(ACCEPTED_LINE) == 0, "a probe completed a handshake:\n" + remoted.log_text()[-3000:]


def probe_remoted(remoted, key, expect_line, **kw):
    """probe() a remoted, then check its log: one more failed handshake with the expected reason, no accept."""
    before = remoted.count(expect_line)
    result = pp.probe(remoted.host, remoted.port, key, **kw)
    assert remoted.wait_count(expect_line, before + 1) == before + 1, remoted.log_text()[-3000:]
    assert_never_accepted(remoted)
    return result


def test_match_4096_byte_key(env):
    result = probe_remoted(env.r4096, env.key4096, FAILED_110)
    assert result.verdict == "match" and result.ok
    assert (result.tcp, result.tls_version, result.kx, result.gnutls_rc) == ("open", "TLS1.3", "PSK", pp.RC_MATCH)
    assert result.cipher and result.address == env.r4096.host and result.port == env.r4096.port
    assert result.events[-1] == "out:FINISHED:pre" and "out:FINISHED:post" not in result.events


def test_match_256_byte_key(env):
    result = probe_remoted(env.r256, env.key256, FAILED_110)
    assert result.verdict == "match" and result.ok


def test_wrong_key_is_mismatch(env):
    result = probe_remoted(env.r4096, env.wrong, FAILED_55)
    assert result.verdict == "mismatch" and not result.ok
    assert result.gnutls_rc == -328 and result.tls_version is None
    assert "remotectl authkey verify" in result.hint
    # a 256-byte key against the 4096-byte node, too
    assert probe_remoted(env.r4096, env.key256, FAILED_55).verdict == "mismatch"


@pytest.mark.parametrize("which", ["right", "wrong"])
def test_tls12_only_remoted(env, which):
    key = env.key4096 if which == "right" else env.wrong
    result = probe_remoted(env.r12, key, FAILED_ANY)
    assert result.verdict == "tls12-only" and not result.ok
    assert result.tls_version == "TLS1.2" and result.gnutls_rc == pp.RC_NO_TLS13
    assert "without completing the handshake" in result.hint


def test_closed_port_is_refused(env):
    host, port = env.closed
    result = pp.probe(host, port, env.key4096, timeout=2)
    assert (result.verdict, result.tcp) == ("refused", "refused")
    assert "nothing listens on %d" % port in result.hint and "PCMK_remote_port" in result.hint


def test_sshd_is_not_tls(env):
    result = pp.probe(*env.sshd, key=env.key4096, timeout=3)
    assert result.verdict == "not-tls" and result.tcp == "open"


@pytest.mark.parametrize("kind", ["echo", "http400"])
def test_other_tcp_services_are_not_tls(env, kind):
    host, port = getattr(env, kind)
    assert pp.probe(host, port, env.key4096, timeout=3).verdict == "not-tls"


def test_silent_listener_times_out(env):
    host, port = env.silent
    start = time.monotonic()
    result = pp.probe(host, port, env.key4096, timeout=0.7)
    elapsed = time.monotonic() - start
    assert (result.verdict, result.tcp, result.gnutls_rc) == ("timeout", "open", -319)
    assert 0.6 < elapsed < 3.0


def test_x509_server_is_tls_not_psk(env):
    result = pp.probe(*env.x509, key=env.key4096, timeout=3)
    assert result.verdict == "tls-not-psk" and result.tls_version == "TLS1.3"
    assert "out:FINISHED:pre" not in result.events


def test_corrupted_server_finished(env):
    result = pp.probe(*env.bad_finished, key=env.key256, timeout=3)
    assert result.verdict == "bad-server-finished" and result.gnutls_rc == -18
    assert "in:FINISHED:post" in result.events and "out:FINISHED:pre" not in result.events
    # the same odd server with another key: plain mismatch
    assert pp.probe(*env.bad_finished, key=env.key4096, timeout=3).verdict == "mismatch"


def test_unresolved_and_unreachable(env):
    result = pp.probe("no-such-node.invalid", 3121, env.key4096, timeout=2)
    assert (result.verdict, result.tcp) == ("unresolved", "unresolved")
    # inside a netns with only lo there is no route to TEST-NET-1
    result = call_in_netns(env.r4096.netns, pp.probe, "192.0.2.1", 3121, env.key4096, timeout=2)
    assert (result.verdict, result.tcp) == ("unreachable", "unreachable")


def test_full_check_registers_and_reports_protocol(env):
    accepted = env.rfull.count(ACCEPTED_LINE)
    result = lrmd_check.full_check(env.rfull.host, env.rfull.port, env.key4096, timeout=5)
    assert result.verdict == "match" and result.ok, result.to_dict()
    assert result.protocol_version == "1.1" and result.lrmd_rc == 0 and result.gnutls_rc == 0
    assert result.tls_version == "TLS1.3"
    # this one DID complete the handshake (which is why callers must guard it against live nodes)
    assert env.rfull.wait_count(ACCEPTED_LINE, accepted + 1) == accepted + 1
    assert env.rfull.wait_count("Cleaning up after remote client remotectl-check disconnected", 1) >= 1


def test_full_check_wrong_key_and_tls12(env):
    result = lrmd_check.full_check(env.rfull.host, env.rfull.port, env.wrong, timeout=5)
    assert result.verdict == "mismatch" and not result.ok and result.lrmd_rc is None
    result = lrmd_check.full_check(env.rfull12.host, env.rfull12.port, env.key4096, timeout=5)
    assert result.verdict == "match" and result.tls_version == "TLS1.2" and result.protocol_version == "1.1"
    result = lrmd_check.full_check(env.rfull12.host, env.rfull12.port, env.wrong, timeout=5)
    assert result.verdict == "mismatch"


def test_200_concurrent_probes_against_one_remoted(env):
    """Straight to remoted inside its netns (no forwarder): its listen backlog is only 10."""
    remoted = env.r4096
    before = remoted.count(FAILED_110), remoted.count(FAILED_55)
    targets = [("127.0.0.1", remoted.inner_port)] * 200
    seen = []
    start = time.monotonic()
    good = call_in_netns(remoted.netns, pp.probe_many, targets, env.key4096, timeout=10, workers=200,
                         callback=seen.append)
    bad = call_in_netns(remoted.netns, pp.probe_many, targets, env.wrong, timeout=10, workers=200)
    elapsed = time.monotonic() - start
    assert [r.verdict for r in good] == ["match"] * 200
    assert [r.verdict for r in bad] == ["mismatch"] * 200
    assert len(seen) == 200 and sorted(map(id, seen)) == sorted(map(id, good))
    assert remoted.wait_count(FAILED_110, before[0] + 200) == before[0] + 200
    assert remoted.wait_count(FAILED_55, before[1] + 200) == before[1] + 200
    assert_never_accepted(remoted)
    assert remoted.proc.poll() is None
    assert elapsed < 30


def test_probe_many_keeps_input_order_across_servers(env):
    targets = [(env.r256.host, env.r256.port), env.closed, (env.r4096.host, env.r4096.port),
               "%s:%d" % env.silent, (env.r12.host, env.r12.port)] * 3
    results = pp.probe_many(targets, env.key4096, timeout=1.0, workers=8)
    assert [r.verdict for r in results] == ["mismatch", "refused", "match", "timeout", "tls12-only"] * 3
    assert [(r.target, r.port) for r in results] == [pp.parse_target(t) for t in targets]
    for remoted in (env.r256, env.r4096, env.r12):
        assert_never_accepted(remoted)


def _pythons():
    found = []
    for version in ("3.6", "3.13"):
        matches = sorted(glob.glob("/root/.pyenv/versions/%s.*/bin/python" % version))
        if matches:
            found.append(matches[-1])
    return found or [sys.executable]


@pytest.mark.parametrize("python", _pythons())
def test_remote_invocation_runs_like_on_a_node(env, python):
    """Exactly what the SSH code does: run argv with stdin, parse the one JSON document from stdout."""
    targets = [(env.r4096.host, env.r4096.port), (env.r256.host, env.r256.port), env.closed,
               (env.r12.host, env.r12.port), ("no-such-node.invalid", 3121)]
    argv, stdin = pp.remote_invocation(targets, env.key4096_path, timeout=2.0)
    assert argv[0] == "python3"
    argv[0] = python
    assert not any(env.key4096.hex()[:32] in a for a in argv)
    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout.decode())
    assert doc["format"] == pp.FORMAT and doc["error"] is None and doc["gnutls"]
    assert doc["key"]["path"] == env.key4096_path and doc["key"]["size"] == 4096
    assert doc["key"]["fingerprint"] == pp.key_fingerprint(env.key4096)
    assert [r["verdict"] for r in doc["results"]] == ["match", "mismatch", "refused", "tls12-only", "unresolved"]
    assert env.key4096.hex()[:32] not in proc.stdout.decode()
    if python != sys.executable:
        assert doc["python"] == os.path.basename(os.path.dirname(os.path.dirname(python)))  # pyenv: versions/X.Y.Z
    assert_never_accepted(env.r4096)
