"""`check --timeout` is one deadline per target (TCP connect + handshake), enforced inside the GnuTLS transport:
a slowloris server (it reads the ClientHello, then trickles a TLS record, one byte every 2 s) gets a `timeout`
verdict after the deadline and never holds back the healthy targets' results. Real servers only: standalone
pacemaker-remoted instances behind socat forwarders (ten healthy endpoints), the slowloris server from
probe_servers, the CLI as a subprocess, and the probe's remote invocation on Python 3.6 as on a cluster node."""

import glob
import json
import subprocess
import sys
import threading
import time

import pytest

from remotectl.transport import lrmd_check
from remotectl.transport import psk_probe as pp
from tests.integration.conftest import require_probe_servers
from tests.integration.lab_cli import run_remotectl
from tests.integration.probe_servers import ACCEPTED_LINE, ProbeLab, make_key


class Env(object):
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_probe_servers()
    work = tmp_path_factory.mktemp("check-deadline")
    e = Env()
    e.key_path = make_key(work / "key4096", 4096)
    e.key = pp.read_key(e.key_path)
    lab = ProbeLab(work / "lab", first_host=120)
    try:
        e.remoteds = [lab.remoted("dl%d" % n, e.key_path) for n in range(2)]
        # ten healthy endpoints: five forwarders to each real remoted
        e.healthy = [lab.forward(r.netns, r.inner_port) for r in e.remoteds for _ in range(5)]
        e.slow = lab.tcp_server("slowloris")
        yield e
    finally:
        lab.close()


def endpoint(pair):
    return "%s:%d" % tuple(pair)


def never_accepted(env):
    for remoted in env.remoteds:
        assert remoted.count(ACCEPTED_LINE) == 0, remoted.log_text()[-3000:]


def test_slowloris_among_ten_healthy_targets_through_the_cli(env):
    targets = [endpoint(p) for p in env.healthy[:5]] + [endpoint(env.slow)] + [endpoint(p) for p in env.healthy[5:]]
    start = time.monotonic()
    proc = run_remotectl("check", "--json", "--timeout", "3", "--key", env.key_path, *targets, timeout=120)
    elapsed = time.monotonic() - start
    doc = json.loads(proc.stdout)
    verdicts = [(r["target"], r["verdict"], r["tcp"]) for r in doc["results"]]
    assert proc.returncode == 3, (proc.stderr, verdicts)
    slow = doc["results"][5]
    assert (slow["target"], slow["verdict"], slow["tcp"], slow["ok"]) == (endpoint(env.slow), "timeout", "open",
                                                                          False)
    assert "within 3.0s" in slow["hint"] and "GNUTLS_E_TIMEDOUT" in slow["detail"]
    healthy = doc["results"][:5] + doc["results"][6:]
    assert [(r["verdict"], r["ok"]) for r in healthy] == [("match", True)] * 10
    assert elapsed < 10, "check --timeout 3 took %.1f s" % elapsed  # the acceptance bound (the deadline is 3 s)
    never_accepted(env)


def test_healthy_results_arrive_before_the_slow_one(env):
    """probe_many hands each result over as it comes: the ten matches come first, the slowloris' timeout last."""
    targets = [env.slow] + env.healthy
    seen = []
    box = {}

    def run():
        box["results"] = pp.probe_many(targets, env.key, timeout=3, workers=11, callback=seen.append)

    thread = threading.Thread(target=run, daemon=True)  # daemon: a regression must fail here, not hang pytest
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "probe_many still running after 60 s with timeout=3"
    assert [r.verdict for r in seen] == ["match"] * 10 + ["timeout"]
    assert [r.verdict for r in box["results"]] == ["timeout"] + ["match"] * 10
    never_accepted(env)


def test_full_check_is_bounded_too(env):
    box = {}
    thread = threading.Thread(target=lambda: box.update(r=lrmd_check.full_check(*env.slow, key=env.key, timeout=3)),
                              daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "full_check still running after 60 s with timeout=3"
    assert (box["r"].verdict, box["r"].tcp) == ("timeout", "open")


def _python36():
    found = sorted(glob.glob("/root/.pyenv/versions/3.6.*/bin/python"))
    return found[-1] if found else None


@pytest.mark.parametrize("python", [_python36(), sys.executable], ids=["python3.6", "this-python"])
def test_remote_invocation_on_a_cluster_node_is_bounded(env, python):
    """--from cluster runs this module on each cluster node (Python >= 3.6): the same deadline holds there."""
    if python is None:
        pytest.skip("no Python 3.6 under /root/.pyenv/versions")
    targets = [env.slow] + env.healthy[:4]
    argv, stdin = pp.remote_invocation(targets, env.key_path, timeout=3.0)
    argv[0] = python
    try:
        proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the probe on the node ran for over 60 s with --timeout 3")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout.decode())
    assert [r["verdict"] for r in doc["results"]] == ["timeout"] + ["match"] * 4
    never_accepted(env)
