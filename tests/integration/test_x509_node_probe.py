"""The X.509 probe as ``check --from cluster`` ships it: the payload of x509_node.remote_invocation run by a bare
``python3 -I`` (no remotectl, no cryptography importable: what a cluster node has) against real GnuTLS servers that
require a client certificate. Verdicts come from GnuTLS alone, details are null, and no handshake completes."""

import glob
import json
import os
import subprocess
import sys

import pytest

from remotectl.transport import x509_node
from remotectl.transport import x509_probe as xp
from tests.integration.test_x509_probe import ADDRESS, EXPECTED, servers  # noqa: F401 - the fixture

NAMES = list(EXPECTED)


PYTHONS = ["/usr/bin/python3"] + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3")))[:1]


def _run_shipped(argv, stdin, tmp_path, python="/usr/bin/python3"):
    # what a node has: -I (no user site, no cwd on sys.path, so no remotectl) and no cryptography importable
    assert argv[1] == "-c"
    argv = [python, "-I", "-c", "import sys;sys.modules['cryptography']=None\n" + argv[2]] + argv[3:]
    done = subprocess.run(argv, input=stdin, capture_output=True, cwd=str(tmp_path), timeout=60)
    assert done.stderr == b"", done.stderr
    return done.returncode, json.loads(done.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("python", PYTHONS)
def test_shipped_payload_gives_gnutls_verdicts_with_the_ca_from_stdin(servers, tmp_path, python):  # noqa: F811
    jobs = [(ADDRESS, servers.ports[n], [ADDRESS]) for n in NAMES]
    with open(servers.ca, "rb") as handle:
        pem = handle.read()
    argv, stdin = x509_node.remote_invocation(jobs, ca_pem=pem, timeout=5)
    assert servers.ca not in " ".join(argv) and ADDRESS not in " ".join(argv)
    rc, doc = _run_shipped(argv, stdin, tmp_path, python)
    assert rc == 0 and doc["error"] is None, doc
    assert doc["format"] == x509_node.FORMAT and doc["ca"]["source"] == "--ca"
    assert doc["ca"]["fingerprint"] == x509_node.ca_fingerprint(pem)
    assert {n: r["verdict"] for n, r in zip(NAMES, doc["results"])} == EXPECTED
    for name, result in zip(NAMES, doc["results"]):
        assert result["subject"] is None and result["days_left"] is None  # no cryptography on the node
        if name != "psk":
            assert result["gnutls_rc"] == xp.RC_CHECKED and result["events"][-1] == "out:CERTIFICATE:pre", result
            log = (servers.dir / f"{name}.log").read_text()
            assert "Handshake was completed" not in log, log
    # a truncated transfer is reported, not run
    rc, doc = _run_shipped(argv, stdin[:-10], tmp_path, python)
    assert rc == 2 and doc["error"] == "probe modules corrupted in transit"


def test_shipped_payload_without_ca_uses_the_nodes_pcmk_ca_file(servers, tmp_path):  # noqa: F811
    env = tmp_path / "pacemaker"
    env.write_text(f"PCMK_ca_file={servers.ca}\n")
    doc_ok = _main_with_env([str(env)], servers)
    assert doc_ok["ca"] == {"source": "PCMK_ca_file", "path": servers.ca,
                            "fingerprint": x509_node.ca_fingerprint(open(servers.ca, "rb").read())}
    assert [r["verdict"] for r in doc_ok["results"]] == [xp.X509_TRUSTED, xp.X509_UNTRUSTED]
    psk_node = tmp_path / "psk"
    psk_node.write_text("PCMK_authkey_location=/etc/pacemaker/authkey\n")
    doc_psk = _main_with_env([str(psk_node)], servers)
    assert doc_psk["results"] == [] and "not in X.509 mode" in doc_psk["error"]


def _main_with_env(env_files, servers):  # noqa: F811
    header = {"targets": [[ADDRESS, servers.ports["trusted"], [ADDRESS]], [ADDRESS, servers.ports["untrusted"],
                                                                           [ADDRESS]]]}
    code = ("import sys,json; from remotectl.transport import x509_node as n;"
            "sys.exit(n.main([], header=json.loads(sys.argv[1]), env_files=json.loads(sys.argv[2])))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(header), json.dumps(env_files)],
                          capture_output=True, timeout=60)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def test_check_from_cluster_with_ca_runs_the_shipped_probe_on_each_node(servers):  # noqa: F811
    """run_check as `check --from cluster --ca FILE` does, with a local runner standing in for SSH to two nodes:
    the argv and stdin that would go over SSH run here."""
    from remotectl.actions import check
    from remotectl.actions.targets import Target
    from remotectl.transport.local import LocalRunner

    targets = [Target(label=n, host=ADDRESS, port=servers.ports[n]) for n in NAMES]
    plan = check.CheckPlan(targets, "cluster", 5.0, 4, ca_path=servers.ca, sources=["node1", "node2"])
    seen = []

    def runner_for(name):
        seen.append(name)
        return LocalRunner()

    run = check.run_check(plan, runner_for=runner_for)
    assert sorted(seen) == ["node1", "node2"]
    assert run.matrix == {"node1": EXPECTED, "node2": EXPECTED}
    doc = run.to_json()
    assert doc["mode"] == "cluster" and doc["sources"]["node1"]["ca"]["source"] == "--ca"
    trusted = [r for r in doc["results"] if r["target"] == "trusted"]
    assert [r["from"] for r in trusted] == ["node1", "node2"] and all(r["ok"] for r in trusted)
    assert all(r["ca"] == servers.ca for r in doc["results"]), doc["results"]
    assert run.exit_code() == check.ExitCode.PARTIAL
