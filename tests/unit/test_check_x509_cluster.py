"""check --from cluster for nodes in X.509 mode: which targets get the shipped X.509 probe on which cluster node,
with which CA, and how its answers become entries (fake SSH runners answering per shipped program)."""

import json

import pytest

from remotectl.actions import check as action
from remotectl.pacemaker.nodes import Node
from remotectl.reports import RemotectlError
from remotectl.transport import psk_probe, x509_node, x509_probe
from remotectl.transport.base import CommandResult, Runner

MEMBERS = [Node("a", "cluster", True, False, False, False), Node("b", "cluster", True, False, False, False),
           Node("remote1", "remote", True, False, False, False, "remote1", "127.0.0.2", 3121, "a"),
           Node("remote2", "remote", True, False, False, False, "remote2", "127.0.0.3", 3121, "a")]


def result(verdict):
    return {"target": "x", "address": "x", "port": 3121, "tcp": "open", "verdict": verdict,
            "ok": verdict in (psk_probe.MATCH, x509_probe.X509_TRUSTED), "hint": ""}


class ProgramRunner(Runner):
    """Answers the shipped PSK or X.509 program (told apart by the header's format) with a canned document."""

    def __init__(self, psk=None, x509=None, x509_error=None):
        self.psk, self.x509, self.x509_error, self.headers = psk, x509, x509_error, []

    def run(self, argv, *, stdin=None, timeout=None, env=None):
        header = json.loads(stdin.split(b"\n", 1)[0])
        self.headers.append(header)
        x509 = header["format"] == x509_node.FORMAT
        doc = {"format": header["format"], "results": [result(v) for v in (self.x509 if x509 else self.psk)],
               "error": self.x509_error if x509 else None, "key": None,
               "ca": {"source": "PCMK_ca_file", "path": "/etc/pki/ca.pem", "fingerprint": "sha256:cc"} if x509
               else None}
        return CommandResult(tuple(argv), 2 if doc["error"] else 0, json.dumps(doc) + "\n", "")


def test_tls_not_psk_targets_get_the_x509_probe_on_that_node_with_its_own_ca():
    plan = action.plan_check(lambda: MEMBERS, ["remote1", "remote2"], source="cluster")
    runners = {"a": ProgramRunner(psk=["tls-not-psk", "match"], x509=["x509-trusted"]),
               "b": ProgramRunner(psk=["tls-not-psk", "match"], x509=[], x509_error="no PCMK_ca_file in ...")}
    run = action.run_check(plan, runner_for=runners.__getitem__)
    assert run.matrix == {"a": {"remote1": "x509-trusted", "remote2": "match"},
                          "b": {"remote1": "tls-not-psk", "remote2": "match"}}
    shipped = runners["a"].headers[1]
    assert shipped["format"] == x509_node.FORMAT and shipped["ca"] is None  # the node's own PCMK_ca_file
    assert shipped["targets"] == [["127.0.0.2", 3121, ["127.0.0.2", "remote1"]]]  # only the X.509 target
    entry = run.entries[0]
    assert (entry.source, entry.ok, entry.ca) == ("a", True, "PCMK_ca_file of a")
    assert entry.to_dict()["subject"] is None and "subject" not in run.entries[1].to_dict()
    assert [r.code for r in run.reports if r.node == "b"] == ["check-ca-unknown"]
    assert run.to_json()["sources"]["a"]["ca"]["path"] == "/etc/pki/ca.pem"


def test_no_second_round_trip_when_no_node_sees_an_x509_target():
    plan = action.plan_check(lambda: MEMBERS, ["remote1"], source="cluster")
    runners = {"a": ProgramRunner(psk=["match"]), "b": ProgramRunner(psk=["mismatch"])}
    action.run_check(plan, runner_for=runners.__getitem__)
    assert [len(r.headers) for r in runners.values()] == [1, 1]


def test_with_ca_only_the_x509_probe_runs_and_the_ca_pem_goes_on_stdin(tmp_path):
    from remotectl.pacemaker import x509 as model

    pem = model.new_ca("cluster", 30)[1]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pem)
    plan = action.plan_check(lambda: MEMBERS, ["remote1"], source="cluster", ca_path=str(ca))
    assert plan.mode == "cluster" and plan.ca_path == str(ca)
    runners = {"a": ProgramRunner(x509=["x509-trusted"]), "b": ProgramRunner(x509=["x509-untrusted"])}
    run = action.run_check(plan, runner_for=runners.__getitem__)
    assert run.matrix == {"a": {"remote1": "x509-trusted"}, "b": {"remote1": "x509-untrusted"}}
    assert [len(r.headers) for r in runners.values()] == [1, 1]
    assert runners["a"].headers[0]["ca"] == pem.decode("ascii")
    assert all(e.ca == str(ca) for e in run.entries)


def test_with_ca_bad_file_is_an_error_before_anything_is_shipped(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_bytes(b"\xff\xfe not pem")
    plan = action.plan_check(lambda: MEMBERS, ["remote1"], source="cluster", ca_path=str(bad))
    runners = {"a": ProgramRunner(), "b": ProgramRunner()}
    with pytest.raises(RemotectlError, match="not PEM"):
        action.run_check(plan, runner_for=runners.__getitem__)
    assert not runners["a"].headers


def test_shipped_payload_is_the_three_modules_verbatim():
    argv, stdin = x509_node.remote_invocation([("h", 3121, ["h"])], ca_pem=b"-----BEGIN CERTIFICATE-----\n")
    header, blob = stdin.split(b"\n", 1)
    parts = json.loads(header)["parts"]
    assert [n for n, _ in parts] == list(x509_node.PARTS)
    sources = []
    for _name, size in parts:
        sources.append(blob[:size])
        blob = blob[size:]
    for module, source in zip((psk_probe, x509_probe, x509_node), sources[2:]):
        with open(module.__file__, "rb") as handle:
            assert handle.read() == source
    assert argv[:2] == ["python3", "-c"] and "BEGIN CERTIFICATE" not in " ".join(argv)


def test_node_ca_file_reads_the_env_files_in_order(tmp_path):
    first, second = tmp_path / "sysconfig", tmp_path / "default"
    second.write_text('export PCMK_ca_file="/etc/pki/ca.pem"\n')
    assert x509_node.node_ca_file([str(first), str(second)]) == "/etc/pki/ca.pem"
    first.write_text("PCMK_ca_file=/other.pem\n")
    assert x509_node.node_ca_file([str(first), str(second)]) == "/other.pem"
    assert x509_node.node_ca_file([str(tmp_path / "none")]) is None
