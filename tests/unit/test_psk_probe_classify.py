"""Pure tests of the PSK probe: verdict classification, hook decisions (fail closed), results, key location,
remote-invocation packaging, and Python 3.6 compatibility of the shipped module."""

import ast
import glob
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remotectl.transport import lrmd_check
from remotectl.transport import psk_probe as pp

MODULE = Path(pp.__file__)

MATCH_TRACE = ("out:CLIENT_HELLO:pre", "out:CLIENT_HELLO:post", "in:SERVER_HELLO:pre", "in:SERVER_HELLO:post",
               "in:ENCRYPTED_EXTENSIONS:pre", "in:ENCRYPTED_EXTENSIONS:post", "in:FINISHED:pre",
               "in:FINISHED:post", "out:FINISHED:pre")
HELLO_ONLY = ("out:CLIENT_HELLO:pre", "out:CLIENT_HELLO:post")

# (rc, server_hello_seen, events, alert) -> verdict; the rows of safe-probe.md's measured table plus edge cases.
CASES = [
    (pp.RC_MATCH, True, MATCH_TRACE, None, "match"),
    (pp.RC_MATCH, False, MATCH_TRACE, None, "probe-bug"),                # MATCH code without a ServerHello
    (pp.RC_MATCH, True, MATCH_TRACE[:-1], None, "probe-bug"),            # ... or without the Finished hook
    (-328, False, HELLO_ONLY, None, "mismatch"),                         # remoted, wrong key
    (-110, False, HELLO_ONLY, None, "mismatch"),
    (-54, False, HELLO_ONLY, None, "mismatch"),
    (-12, False, HELLO_ONLY, 47, "mismatch"),                            # illegal_parameter alert
    (-12, False, HELLO_ONLY, 51, "mismatch"),                            # decrypt_error
    (-12, False, HELLO_ONLY, 40, "tls-not-psk"),                         # handshake_failure: no PSK suites
    (pp.RC_NO_TLS13, True, MATCH_TRACE[:4], None, "tls12-only"),          # ServerHello chose TLS 1.2
    (-8, True, MATCH_TRACE[:4], None, "tls12-only"),                     # TLS1.3-only client vs TLS1.2 server
    (-8, False, HELLO_ONLY, None, "not-tls"),
    (-15, False, HELLO_ONLY, None, "not-tls"),                           # sshd, HTTP 400
    (-19, False, HELLO_ONLY, None, "not-tls"),                           # echo server
    (-9, False, HELLO_ONLY, None, "not-tls"),
    (-7, False, HELLO_ONLY, None, "not-tls"),
    (-417, False, HELLO_ONLY, None, "not-tls"),
    (-319, False, HELLO_ONLY, None, "timeout"),                          # silent listener
    (-319, True, MATCH_TRACE[:6], None, "timeout"),
    (-32, True, MATCH_TRACE[:6], None, "tls-not-psk"),                   # gnutls-serv with X.509
    (-18, True, MATCH_TRACE[:8], None, "bad-server-finished"),          # corrupted server Finished
    (-110, True, MATCH_TRACE[:6], None, "tls-not-psk"),
    (pp.RC_NOT_PSK, True, MATCH_TRACE, None, "tls-not-psk"),
    (pp.RC_HOOK_BUG, True, MATCH_TRACE, None, "probe-bug"),
    (0, True, MATCH_TRACE + ("out:FINISHED:post",), None, "probe-bug"),  # a completed handshake is never a match
    (5, False, (), None, "probe-bug"),
    (-50, False, (), None, "probe-bug"),                                # local misconfiguration
    (-87, False, (), None, "probe-bug"),
    (-24, False, HELLO_ONLY, None, "not-tls"),
]


@pytest.mark.parametrize("rc,hello,events,alert,verdict", CASES)
def test_classify(rc, hello, events, alert, verdict):
    assert pp.classify(rc, hello, events, alert) == verdict


def test_classify_accepts_any_iterable_of_events():
    assert pp.classify(pp.RC_MATCH, True, iter(MATCH_TRACE)) == "match"
    assert pp.classify(pp.RC_MATCH, True, list(MATCH_TRACE)) == "match"


@pytest.mark.parametrize("rc,hello,events,alert,version,verdict", [
    (0, True, MATCH_TRACE + ("out:FINISHED:post",), None, "TLS1.3", "match"),
    (-328, False, HELLO_ONLY, None, None, "mismatch"),
    (-15, True, ("in:SERVER_HELLO:post", "out:FINISHED:pre", "out:FINISHED:post"), None, "TLS1.2", "mismatch"),
    (-110, True, ("in:SERVER_HELLO:post", "out:FINISHED:pre", "out:FINISHED:post"), None, "TLS1.2", "mismatch"),
    (-15, False, HELLO_ONLY, None, None, "not-tls"),
    (-32, True, MATCH_TRACE[:6], None, "TLS1.3", "tls-not-psk"),
])
def test_classify_full(rc, hello, events, alert, version, verdict):
    assert lrmd_check.classify_full(rc, hello, events, alert, version) == verdict


def test_every_verdict_has_a_one_line_hint():
    assert set(pp.HINTS) == set(pp.VERDICTS)
    for verdict in pp.VERDICTS:
        text = pp.hint_for(verdict, target="node1", port=3121, address="192.0.2.7", timeout=2.0)
        assert text and "\n" not in text and "{" not in text
    assert "3121" in pp.hint_for("refused", port=3121)
    assert "remotectl authkey verify" in pp.hint_for("mismatch")
    assert "remotectl authkey verify" in pp.hint_for("tls12-only")
    assert "firewall" in pp.hint_for("tcp-timeout", port=1, timeout=2)


def test_event_names():
    assert pp.event_name(0, 20, 0) == pp.EV_OUT_FINISHED_PRE
    assert pp.event_name(1, 2, 1) == pp.EV_IN_SERVER_HELLO_POST
    assert pp.event_name(1, 999, 1) == "in:999:post"


# --- the hook's decisions, driven through the real CFUNCTYPE thunk with a fake library ---------------------------
class FakeLib(object):
    def __init__(self, version=pp.GNUTLS_TLS1_3, kx=pp.GNUTLS_KX_PSK, explode=None):
        self.version, self.kx, self.explode = version, kx, explode

    def gnutls_protocol_get_version(self, session):
        if self.explode:
            raise self.explode
        return self.version

    def gnutls_protocol_get_name(self, version):
        return {4: b"TLS1.2", 5: b"TLS1.3"}.get(version)

    def gnutls_cipher_get(self, session):
        return 19

    def gnutls_cipher_get_name(self, cipher):
        return b"CHACHA20-POLY1305"

    def gnutls_kx_get(self, session):
        return self.kx

    def gnutls_kx_get_name(self, kx):
        return {9: b"PSK", 10: b"DHE-PSK", 12: b"ECDHE-RSA"}.get(kx)


def run_hook(lib, calls, mode="probe"):
    state = pp._HookState(lib, mode)
    hook = state.make_hook()
    rcs = [hook(None, htype, when, incoming, None) for (incoming, htype, when) in calls]
    return state, rcs


SERVER_HELLO_POST = (1, pp.HS_SERVER_HELLO, pp.GNUTLS_HOOK_POST)
OUT_FINISHED_PRE = (0, pp.HS_FINISHED, pp.GNUTLS_HOOK_PRE)


def test_hook_aborts_with_match_before_our_finished():
    state, rcs = run_hook(FakeLib(), [(0, 1, 0), (0, 1, 1), SERVER_HELLO_POST, (1, 20, 0), (1, 20, 1),
                                      OUT_FINISHED_PRE])
    assert rcs == [0, 0, 0, 0, 0, pp.RC_MATCH]
    assert state.server_hello_seen and state.version == "TLS1.3" and state.kx == "PSK"
    assert pp.classify(rcs[-1], state.server_hello_seen, state.events) == "match"


def test_hook_aborts_on_tls12_server_hello():
    state, rcs = run_hook(FakeLib(version=pp.GNUTLS_TLS1_2), [(0, 1, 0), SERVER_HELLO_POST])
    assert rcs[-1] == pp.RC_NO_TLS13


def test_hook_never_lets_finished_out_without_tls13_psk():
    assert run_hook(FakeLib(version=pp.GNUTLS_TLS1_2), [OUT_FINISHED_PRE])[1] == [pp.RC_NO_TLS13]
    # Finished without a ServerHello seen (impossible in TLS 1.3): refuse as well
    assert run_hook(FakeLib(), [OUT_FINISHED_PRE])[1] == [pp.RC_NO_TLS13]
    assert run_hook(FakeLib(kx=12), [SERVER_HELLO_POST, OUT_FINISHED_PRE])[1][-1] == pp.RC_NOT_PSK


@pytest.mark.parametrize("exc", [RuntimeError("boom"), ZeroDivisionError(), MemoryError()])
def test_hook_fails_closed_on_exceptions(exc):
    state, rcs = run_hook(FakeLib(explode=exc), [SERVER_HELLO_POST])
    assert rcs == [pp.RC_HOOK_BUG]
    assert state.hook_error.startswith(type(exc).__name__)


def test_hook_keeps_keyboard_interrupt_for_later_and_still_aborts():
    state, rcs = run_hook(FakeLib(explode=KeyboardInterrupt()), [OUT_FINISHED_PRE])
    assert rcs == [pp.RC_HOOK_BUG]
    assert isinstance(state.pending, KeyboardInterrupt)


def test_full_mode_hook_only_records():
    state, rcs = run_hook(FakeLib(version=pp.GNUTLS_TLS1_2), [SERVER_HELLO_POST, OUT_FINISHED_PRE], mode="full")
    assert rcs == [0, 0]
    assert state.events == ["in:SERVER_HELLO:post", "out:FINISHED:pre"]


# --- results, targets, keys ----------------------------------------------------------------------------------------
def test_result_to_dict_and_ok():
    fields = {"target", "address", "port", "tcp", "verdict", "tls_version", "cipher", "ok", "hint", "elapsed_ms",
              "gnutls_rc"}
    result = pp.ProbeResult(target="n1", port=3121, verdict="match", events=("a",))
    assert fields <= set(result.to_dict())
    assert result.ok and result.to_dict()["events"] == ["a"]
    json.dumps(result.to_dict())
    for verdict in pp.VERDICTS:
        assert pp.ProbeResult(verdict=verdict).ok == (verdict == "match")
    check = lrmd_check.CheckResult(verdict="match", lrmd_rc=-71, protocol_version="1.1")
    assert not check.ok and check.to_dict()["protocol_version"] == "1.1"
    assert lrmd_check.CheckResult(verdict="match", lrmd_rc=0).ok


@pytest.mark.parametrize("target,expected", [
    (("n1", 3122), ("n1", 3122)),
    (["n1", "3122"], ("n1", "3122")),
    ({"host": "n1", "port": 3125}, ("n1", 3125)),
    ({"host": "n1"}, ("n1", 3121)),
    ("n1", ("n1", 3121)),
    ("n1:3122", ("n1", 3122)),
    ("[2001:db8::1]:3122", ("2001:db8::1", 3122)),
    ("2001:db8::1", ("2001:db8::1", 3121)),
    ("n1:", ("n1", 3121)),
    ("n1:abc", ("n1", "abc")),  # reported per target as "unresolved / invalid port", never an exception
    ("[2001:db8::1]", ("2001:db8::1", 3121)),
])
def test_parse_target(target, expected):
    assert pp.parse_target(target) == expected


def test_invalid_port_is_a_verdict_not_an_exception():
    result = pp._probe_with(None, None, "n1", "abc", 1.0, 0)
    assert result.verdict == "unresolved" and result.detail == "invalid port"


@pytest.mark.parametrize("cls", [pp.ProbeResult, lrmd_check.CheckResult])
@pytest.mark.parametrize("port", ["abc", 0, 70000])  # getaddrinfo would take 70000 as port 4464
def test_probe_and_full_check_refuse_the_same_invalid_ports(cls, port):
    sock, _address, _port, result = pp._open(cls, "127.0.0.1", port, 1.0, 0, 0.0)
    assert sock is None and type(result) is cls
    assert result.verdict == "unresolved" and result.detail == "invalid port"


def test_key_type_and_emptiness_checked_without_echoing_it():
    with pytest.raises(TypeError) as info:
        pp.probe("n1", 3121, "secret-as-str")
    assert "secret-as-str" not in str(info.value)
    with pytest.raises(pp.ProbeError):
        pp.probe("n1", 3121, b"")


def test_read_key_is_raw_and_errors_do_not_leak(tmp_path):
    path = tmp_path / "authkey"
    path.write_bytes(b"\x00abc\n")
    assert pp.read_key(str(path)) == b"\x00abc\n"  # every byte, trailing newline included
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(pp.ProbeError, match="empty"):
        pp.read_key(str(empty))
    with pytest.raises(pp.ProbeError, match="cannot read key file"):
        pp.read_key(str(tmp_path / "missing"))
    assert pp.key_fingerprint(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


def test_scrub_redacts_key_material():
    key = bytes(range(40))
    assert pp._scrub("oops " + key.hex(), key) == "<redacted>"
    assert pp._scrub("harmless", key) == "harmless"


def test_env_file_parsing(tmp_path):
    env = tmp_path / "pacemaker"
    env.write_text('# PCMK_authkey_location=/nope\nPCMK_authkey_location="/a b/key"  \n'
                   "export PCMK_authkey_location=/etc/x/key # comment\nPCMK_remote_port=3121\n")
    assert pp._env_file_value(str(env), "PCMK_authkey_location") == "/etc/x/key"
    assert pp._env_file_value(str(env), "PCMK_remote_port") == "3121"
    assert pp._env_file_value(str(tmp_path / "none"), "PCMK_authkey_location") is None


def test_locate_node_key_follows_the_env_file(tmp_path, monkeypatch):
    key = tmp_path / "key"
    key.write_bytes(b"k" * 256)
    sysconfig, default = tmp_path / "sysconfig", tmp_path / "default"
    default.write_text("PCMK_authkey_location='%s'\n" % key)
    found, path, source, warnings = pp.locate_node_key((str(sysconfig), str(default)), version=(2, 1, 5))
    assert found == b"k" * 256 and path == str(key) and str(default) in source and warnings == []
    assert "guessing" in pp.locate_node_key((str(sysconfig), str(default)))[3][0]  # version unknown: says so
    # an unreadable configured key falls back (Pacemaker 2.1 behaviour) and says so
    default.write_text("PCMK_authkey_location=%s\n" % (tmp_path / "missing"))
    monkeypatch.setattr(pp, "DEFAULT_KEY_PATH", str(key))
    found, path, source, warnings = pp.locate_node_key((str(sysconfig), str(default)))
    assert path == str(key) and source == "default" and any("falls back" in w for w in warnings)
    monkeypatch.setattr(pp, "DEFAULT_KEY_PATH", str(tmp_path / "nope1"))
    monkeypatch.setattr(pp, "ALT_KEY_PATH", str(tmp_path / "nope2"))
    with pytest.raises(pp.ProbeError, match="no usable"):
        pp.locate_node_key((str(sysconfig), str(default)))


# --- remote invocation ---------------------------------------------------------------------------------------------
def test_remote_invocation_packaging():
    argv, stdin = pp.remote_invocation([("n1", 3121), "n2:3122", {"host": "x'; rm -rf /", "port": 1}],
                                       "/etc/pacemaker/authkey", 2.5, workers=4)
    assert argv[:2] == ["python3", "-c"] and argv[2] == pp.BOOTSTRAP
    assert argv[3:] == ["--timeout", "2.5", "--workers", "4", "--key-file", "/etc/pacemaker/authkey"]
    assert not any("n1" in a or "rm -rf" in a for a in argv)  # target names travel as data on stdin
    header_line, _, source = stdin.partition(b"\n")
    header = json.loads(header_line.decode())
    assert header["targets"] == [["n1", 3121], ["n2", 3122], ["x'; rm -rf /", 1]]
    assert source == MODULE.read_bytes()
    assert header["sha256"] == hashlib.sha256(source).hexdigest()
    argv, _ = pp.remote_invocation([], None, 1)
    assert "--key-file" not in argv


def test_bootstrap_rejects_truncated_source():
    argv, stdin = pp.remote_invocation([("n1", 3121)], "/nonexistent", 1)
    argv[0] = sys.executable
    proc = subprocess.run(argv, input=stdin[:-10], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"] == "probe module corrupted in transit"


def test_main_reports_unreadable_key_as_json():
    argv, stdin = pp.remote_invocation([("n1", 3121)], "/nonexistent/authkey", 1)
    argv[0] = sys.executable
    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and "cannot read key file /nonexistent/authkey" in doc["error"]
    assert doc["results"] == [] and proc.stderr == b""


# --- Python 3.6 compatibility of the shipped module ----------------------------------------------------------------
def test_module_is_self_contained_and_py36_syntax():
    source = MODULE.read_text()
    tree = ast.parse(source, feature_version=(3, 6))  # best effort; the real 3.6 run is below
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module != "__future__", "no __future__ imports (3.6: annotations)"
            assert not (node.module or "").startswith("remotectl"), "must stay self-contained"
            assert node.module not in ("dataclasses", "typing")
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in ("remotectl", "dataclasses", "typing")
    compile(pp.BOOTSTRAP, "<bootstrap>", "exec")


def _old_pythons():
    found = []
    for pattern in ("/root/.pyenv/versions/3.6.*/bin/python", os.path.expanduser("~/.pyenv/versions/3.6.*/bin/python")):
        found += glob.glob(pattern)
    return sorted(set(found))


@pytest.mark.parametrize("python", _old_pythons() or [None])
def test_classify_table_on_python36(python):
    if python is None:
        pytest.skip("no Python 3.6 under pyenv here")
    cases = [[rc, hello, list(events), alert, verdict] for rc, hello, events, alert, verdict in CASES]
    code = (
        "import json, sys, importlib.util\n"
        "spec = importlib.util.spec_from_file_location('psk_probe', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "bad = [c for c in json.loads(sys.argv[2]) if m.classify(c[0], c[1], c[2], c[3]) != c[4]]\n"
        "r = m.ProbeResult(target='n', verdict='match'); assert r.ok and r.to_dict()['verdict'] == 'match'\n"
        "class Boom(object):\n"
        "    def __getattr__(self, name):\n"
        "        raise RuntimeError('boom')\n"
        "state = m._HookState(Boom(), 'probe'); hook = state.make_hook()\n"
        "assert hook(None, 2, 1, 1, None) == m.RC_HOOK_BUG, 'hook must fail closed on 3.6'\n"
        "assert hook(None, 20, 0, 0, None) == m.RC_HOOK_BUG\n"
        "print(json.dumps({'bad': bad, 'version': list(sys.version_info[:2])}))\n"
    )
    proc = subprocess.run([python, "-c", code, str(MODULE), json.dumps(cases)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["version"] == [3, 6] and out["bad"] == []


def test_the_shipped_module_holds_the_safe_probe_only():
    """Executor registration completes the handshake: it lives in lrmd_check, which is never shipped to nodes."""
    source = pp.module_source().decode("utf-8")
    for word in ("lrmd_op", "def full_check", "class CheckResult", "MSG_MAGIC"):
        assert word not in source
    assert lrmd_check.full_check and lrmd_check.CheckResult.__mro__[1] is pp.ProbeResult


# --- the shipped copies of remotectl.pacemaker.authkey's rules agree with it ----------------------------------------
ENV_TEXTS = ["", "PCMK_authkey_location=/a\n", "export PCMK_authkey_location=/a\n", "PCMK_authkey_location='/a b'\n",
             'PCMK_authkey_location="/a"\n', "PCMK_authkey_location=/a # c\n", "# PCMK_authkey_location=/a\n",
             "PCMK_authkey_location=/a\nPCMK_authkey_location=/b\n", "PCMK_authkey_location=\n",
             "PCMK_authkey_location = /a\n", "; PCMK_authkey_location=/a\n", 'PCMK_authkey_location="/a #b"\n',
             "PCMK_authkey_location='/a\n", "  PCMK_authkey_location=/a  \n", "PCMK_authkey_location=/a\\ b\n",
             "PCMK_authkey_location=/a\nPCMK_authkey_location=\n", 'PCMK_authkey_location="/a"x\n',
             "PCMK_authkey_locationX=/b\n", "export  PCMK_authkey_location=/a\n", "PCMK_authkey_location=/a /b\n",
             "PCMK_authkey_location=/etc/pacemaker/authkey\n", "PCMK_authkey_location=/etc/corosync/authkey\n"]


@pytest.mark.parametrize("text", ENV_TEXTS)
def test_both_env_file_parsers_read_the_same_value(tmp_path, text):
    from remotectl.pacemaker import authkey as model

    env = tmp_path / "pacemaker"
    env.write_text(text)
    assert pp._env_file_value(str(env), model.LOCATION_VARIABLE) == model.parse_env_file(text).get(
        model.LOCATION_VARIABLE)


@pytest.mark.parametrize("version", [None, (2, 1, 5), (2, 1, 9), (3, 0, 0), (3, 0, 2)])
@pytest.mark.parametrize("first, second", [("", ""), ("PCMK_authkey_location=/srv/key\n", ""),
                                           ("", "PCMK_authkey_location=/srv/key\n"),
                                           ("PCMK_authkey_location=/etc/pacemaker/authkey\n", ""),
                                           ("", "PCMK_authkey_location=\n"), ("PCMK_authkey_location=''\n", ""),
                                           ("", "PCMK_authkey_location=/etc/corosync/authkey\n")])
def test_the_probe_tries_the_paths_pacemaker_tries(tmp_path, version, first, second):
    """psk_probe.key_candidates (on the node) and pacemaker.authkey.fallback_chain (verify) give the same chain."""
    from remotectl.pacemaker import authkey as model

    files = (tmp_path / "sysconfig", tmp_path / "default")
    texts = {}
    for path, model_path, text in zip(files, model.ENV_FILES, (first, second)):
        if text:
            path.write_text(text)
            texts[model_path] = text
    shipped = [path for path, _source in pp.key_candidates(tuple(map(str, files)), version)]
    assert shipped == model.fallback_chain(model.key_location(texts), version)
    assert (pp.DEFAULT_KEY_PATH, pp.ALT_KEY_PATH, pp.NO_FALLBACK_FROM) == (
        model.DEFAULT_KEY_PATH, model.COROSYNC_KEY_PATH, model.NO_FALLBACK_FROM)
    assert pp.VERSION_TOOLS == model.VERSION_TOOLS


def test_pacemaker_3_uses_no_fallback(tmp_path, monkeypatch):
    key = tmp_path / "corosync-key"
    key.write_bytes(b"k" * 256)
    monkeypatch.setattr(pp, "DEFAULT_KEY_PATH", str(tmp_path / "missing"))
    monkeypatch.setattr(pp, "ALT_KEY_PATH", str(key))
    env = (str(tmp_path / "none1"), str(tmp_path / "none2"))
    assert pp.locate_node_key(env, version=(2, 1, 5))[1:3] == (str(key), "fallback (Pacemaker 2.1 only)")
    with pytest.raises(pp.ProbeError, match="no usable"):
        pp.locate_node_key(env, version=(3, 0, 0))


def test_an_empty_location_is_no_key_on_3_0_and_the_default_before(tmp_path, monkeypatch):
    """pcmk__env_option gives "" for `PCMK_authkey_location=`: 3.0 tries "" and stops; 2.1 fell back."""
    key = tmp_path / "default-key"
    key.write_bytes(b"k" * 256)
    monkeypatch.setattr(pp, "DEFAULT_KEY_PATH", str(key))
    default = tmp_path / "default"
    default.write_text("PCMK_authkey_location=\n")
    env = (str(tmp_path / "none"), str(default))
    assert pp.locate_node_key(env, version=(2, 1, 5))[1] == str(key)
    with pytest.raises(pp.ProbeError, match="set to nothing"):
        pp.locate_node_key(env, version=(3, 0, 3))
