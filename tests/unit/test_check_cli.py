"""`remotectl check` CLI plumbing without sockets: psk_probe.probe_many is replaced by a fake that returns fixed
verdicts, so option handling, exit codes, the JSON document and the tables are checked in isolation."""

import json

import pytest

from remotectl.actions import check as action
from remotectl.cli import main
from remotectl.transport import psk_probe


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "authkey"
    path.write_bytes(b"k" * 256)
    return str(path)


@pytest.fixture
def fake_probe(monkeypatch):
    """Verdict by port: 1 refused, 2 mismatch, 3 tcp-timeout, anything else match."""
    calls = []

    def probe_many(targets, key, timeout=5.0, workers=16, callback=None, family=0):
        assert isinstance(key, bytes) and len(key) == 256
        calls.append({"targets": list(targets), "timeout": timeout, "workers": workers})
        results = []
        for host, port in targets:
            verdict, tcp = {1: ("refused", "refused"), 2: ("mismatch", "open"), 3: ("tcp-timeout", "timeout")}.get(
                port, ("match", "open"))
            result = psk_probe.ProbeResult(target=host, address=host, port=port, tcp=tcp, verdict=verdict,
                                           tls_version="TLS1.3" if verdict == "match" else None,
                                           cipher="CHACHA20-POLY1305" if verdict == "match" else None,
                                           hint=psk_probe.hint_for(verdict, host, port, host, timeout))
            if callback:
                callback(result)
            results.append(result)
        return results

    monkeypatch.setattr(psk_probe, "probe_many", probe_many)
    return calls


def test_json_document_and_exit_codes(capsys, key, fake_probe):
    code, out, err = run_cli(capsys, "check", "--json", "--key", key, "10.0.0.1:3121", "10.0.0.2:2")
    assert code == 3
    doc = json.loads(out)
    assert [(r["target"], r["verdict"], r["tcp"], r["ok"]) for r in doc["results"]] == [
        ("10.0.0.1:3121", "match", "open", True), ("10.0.0.2:2", "mismatch", "open", False)]
    assert doc["key"]["size"] == 256 and doc["key"]["fingerprint"].startswith("sha256:")
    assert ("k" * 32) not in out and err == ""
    assert run_cli(capsys, "check", "--json", "--key", key, "10.0.0.1")[0] == 0
    assert run_cli(capsys, "check", "--json", "--key", key, "10.0.0.1:1", "10.0.0.1:3")[0] == 1


def test_options_reach_the_probe(capsys, key, fake_probe):
    code, _, _ = run_cli(capsys, "check", "--key", key, "--timeout", "2.5", "--workers", "7", "--port", "3999",
                         "10.0.0.1", "10.0.0.2:4000", "[fe80::1]")
    assert code == 0
    assert fake_probe[-1] == {"targets": [("10.0.0.1", 3999), ("10.0.0.2", 4000), ("fe80::1", 3999)],
                              "timeout": 2.5, "workers": 7}


def test_human_table(capsys, key, fake_probe):
    code, out, _ = run_cli(capsys, "check", "--key", key, "10.0.0.1", "10.0.0.2:1")
    assert code == 3
    lines = out.splitlines()
    assert lines[0].split() == ["TARGET", "ADDRESS", "TCP", "VERDICT", "TLS", "HINT"]
    assert lines[2].split()[:5] == ["10.0.0.1", "10.0.0.1:3121", "open", "match", "TLS1.3"]
    assert lines[3].split()[:5] == ["10.0.0.2:1", "10.0.0.2:1", "refused", "refused", "-"]
    assert "nothing listens on 1" in lines[3]
    assert lines[-1] == "2 probes: 1 ok, 1 refused"


@pytest.mark.parametrize("args, words", [
    ((), "give TARGET... or --all"),
    (("a", "--all"), "not both"),
    (("a", "--force"), "--force only applies to --full"),
    (("a", "--full", "--from", "cluster"), "--full runs from here only"),
    (("a:0",), "invalid port"),
    (("--timeout", "0", "a"), "--timeout"),
])
def test_usage_errors_exit_2(capsys, args, words):
    code, out, err = run_cli(capsys, "check", *args)
    assert code == 2 and out == "" and words in err


def test_full_refused_without_a_cluster_is_exit_4(capsys, key, tmp_path, fake_probe):
    code, out, err = run_cli(capsys, "--cib", str(tmp_path / "none.xml"), "check", "--full", "--key", key,
                             "10.0.0.1")
    assert code == 4 and out == ""
    assert "cannot tell whether a cluster is connected" in err and fake_probe == []


def test_parallel_is_the_option_and_workers_its_alias(capsys, key, fake_probe):
    assert run_cli(capsys, "check", "--key", key, "--parallel", "9", "10.0.0.1")[0] == 0
    assert fake_probe[-1]["workers"] == 9
    assert run_cli(capsys, "check", "--key", key, "--workers", "5", "10.0.0.1")[0] == 0
    assert fake_probe[-1]["workers"] == 5


def test_default_parallel_fits_the_open_file_limit(capsys, key, fake_probe, monkeypatch):
    from remotectl.transport import limits

    monkeypatch.setattr(limits, "soft_nofile", lambda: 10000)
    assert run_cli(capsys, "check", "--key", key, "10.0.0.1")[0] == 0
    assert fake_probe[-1]["workers"] == action.DEFAULT_WORKERS
    monkeypatch.setattr(limits, "soft_nofile", lambda: 64)
    monkeypatch.setattr(limits, "open_fds", lambda: 20)
    assert run_cli(capsys, "check", "--key", key, "10.0.0.1")[0] == 0
    assert fake_probe[-1]["workers"] == 64 - 20 - limits.RESERVE
