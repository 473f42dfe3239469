"""remotectl.pacemaker.authkey: sizes, env files, key location and fallback, problems, verdict, restart plan."""

import hashlib

import pytest

from remotectl.pacemaker import authkey as m


def facts(path, data=None, *, mode=0o400, owner="hacluster", group="haclient", readable=True, hacluster=True):
    if data is None:
        return m.FileFacts(path, exists=False)
    return m.FileFacts(path, True, len(data), mode, owner, group,
                       hashlib.sha256(data).hexdigest() if readable else None, readable, hacluster)


def test_fingerprint_is_sha256_of_the_raw_bytes_and_never_the_key():
    key = bytes(range(256))
    fp = m.fingerprint(key)
    assert fp == "sha256:" + hashlib.sha256(key).hexdigest()
    assert key.hex() not in fp


@pytest.mark.parametrize("size,ok", [(0, False), (15, False), (16, True), (256, True), (4096, True),
                                     (65536, True), (65537, False)])
def test_key_size_limits(size, ok):
    assert (m.key_size_error(size) is None) is ok


def test_size_warning_only_above_openssl_limit():
    assert m.key_size_warning(512) is None
    assert "OpenSSL" in m.key_size_warning(513)
    assert "OpenSSL" in m.key_size_warning(4096)


def test_parse_version():
    assert m.parse_version("Pacemaker 2.1.5\nWritten by Andrew Beekhof") == (2, 1, 5)
    assert m.parse_version("Pacemaker 3.0.2-rc1 (Build: abc)") == (3, 0, 2)
    assert m.parse_version("bash: pacemakerd: command not found") is None
    assert m.has_corosync_fallback((2, 1, 5)) is True
    assert m.has_corosync_fallback((3, 0, 0)) is False
    assert m.caches_for_lifetime((3, 0, 1)) is False
    assert m.caches_for_lifetime((3, 0, 2)) is True
    assert m.caches_for_lifetime(None) is None


def test_parse_env_file_like_systemd_and_sh():
    text = """
# PCMK_authkey_location=/commented/out
  export PCMK_authkey_location="/etc/pacemaker/my key"   # trailing comment
PCMK_remote_port=3121
bad line without equals
PCMK_logfile='/var/log/x'
PCMK_authkey_location=/final
"""
    values = m.parse_env_file(text)
    assert values["PCMK_authkey_location"] == "/final"
    assert values["PCMK_remote_port"] == "3121"
    assert values["PCMK_logfile"] == "/var/log/x"
    assert m.parse_env_file('PCMK_authkey_location="/etc/pacemaker/my key"')["PCMK_authkey_location"] == \
        "/etc/pacemaker/my key"


def test_location_default_override_and_env_files():
    assert m.key_location({}).path == m.DEFAULT_KEY_PATH
    assert m.key_location({}).source == "default"
    debian = {"/etc/default/pacemaker": "# PCMK_authkey_location=/etc/pacemaker/authkey\nPCMK_authkey_location=/k\n"}
    loc = m.key_location(debian)
    assert (loc.path, loc.source, loc.explicit) == ("/k", "/etc/default/pacemaker", True)
    assert m.key_location(debian, override="/test").path == "/test"
    assert m.key_location(debian, override="/test").source == "option"


def test_location_sysconfig_wins_and_conflict_is_noted():
    both = {"/etc/sysconfig/pacemaker": "PCMK_authkey_location=/a", "/etc/default/pacemaker":
            "PCMK_authkey_location=/b"}
    loc = m.key_location(both)
    assert loc.path == "/a" and loc.source == "/etc/sysconfig/pacemaker"
    assert loc.notes and "/b" in loc.notes[0]


def test_x509_mode_detected_only_when_all_three_are_set():
    env = {"/etc/sysconfig/pacemaker": "PCMK_cert_file=/c\nPCMK_ca_file=/ca\nPCMK_key_file=/k\n"}
    assert m.key_location(env).x509
    assert not m.key_location({"/etc/sysconfig/pacemaker": "PCMK_cert_file=/c\nPCMK_ca_file=/ca\n"}).x509


def test_fallback_chain_by_version():
    default = m.key_location({})
    assert m.fallback_chain(default, (2, 1, 5)) == [m.DEFAULT_KEY_PATH, m.COROSYNC_KEY_PATH]
    assert m.fallback_chain(default, (3, 0, 0)) == [m.DEFAULT_KEY_PATH]
    assert m.fallback_chain(default, None) == [m.DEFAULT_KEY_PATH, m.COROSYNC_KEY_PATH]
    custom = m.key_location({"/etc/default/pacemaker": "PCMK_authkey_location=/k"})
    assert m.fallback_chain(custom, (2, 1, 5)) == ["/k", m.DEFAULT_KEY_PATH, m.COROSYNC_KEY_PATH]
    assert m.fallback_chain(custom, (3, 0, 2)) == ["/k"]
    assert m.fallback_chain(m.key_location({}, override="/t"), (2, 1, 5)) == ["/t"]


def test_assess_good_key_has_no_problems():
    key = b"k" * 256
    a = m.assess_node(m.key_location({}), (2, 1, 5), {m.DEFAULT_KEY_PATH: facts(m.DEFAULT_KEY_PATH, key)})
    assert a.effective.fingerprint == m.fingerprint(key)
    assert a.problems == ()


def test_assess_corosync_fallback_on_2_1_is_called_out():
    coro = b"c" * 128
    files = {m.DEFAULT_KEY_PATH: facts(m.DEFAULT_KEY_PATH), m.COROSYNC_KEY_PATH: facts(m.COROSYNC_KEY_PATH, coro)}
    a = m.assess_node(m.key_location({}), (2, 1, 5), files)
    assert a.effective.path == m.COROSYNC_KEY_PATH
    assert a.effective.fingerprint == m.fingerprint(coro)
    codes = [p.code for p in a.problems]
    assert "corosync-fallback" in codes
    message = next(p.message for p in a.problems if p.code == "corosync-fallback")
    assert "silently falls back to /etc/corosync/authkey" in message and "2.1.5" in message


def test_assess_missing_on_3_0_has_no_fallback():
    a = m.assess_node(m.key_location({}), (3, 0, 2), {m.DEFAULT_KEY_PATH: facts(m.DEFAULT_KEY_PATH)})
    assert a.effective is None
    assert [p.code for p in a.problems] == ["missing"]


def test_assess_custom_location_missing_falls_back_to_default_before_3_0():
    key = b"d" * 256
    custom = m.key_location({"/etc/default/pacemaker": "PCMK_authkey_location=/k"})
    files = {"/k": facts("/k"), m.DEFAULT_KEY_PATH: facts(m.DEFAULT_KEY_PATH, key)}
    a = m.assess_node(custom, (2, 1, 5), files)
    assert a.effective.path == m.DEFAULT_KEY_PATH
    assert [p.code for p in a.problems] == ["location-fallback"]
    a3 = m.assess_node(custom, (3, 0, 2), {"/k": facts("/k")})
    assert a3.effective is None and "no fallback" in a3.problems[0].message


@pytest.mark.parametrize("size,flagged", [(1, True), (15, True), (16, False)])
def test_assess_flags_a_key_under_16_bytes_like_push_refuses_it(size, flagged):
    a = m.assess_node(m.key_location({}), (2, 1, 5), {m.DEFAULT_KEY_PATH: facts(m.DEFAULT_KEY_PATH, b"k" * size)})
    assert a.effective is not None
    assert [(p.code, p.severity) for p in a.problems] == ([("too-short", "error")] if flagged else [])
    assert (m.key_size_error(size) is not None) == flagged  # the rule push refuses with


def test_the_probe_module_has_the_same_key_size_limit():
    """psk_probe is shipped alone to the nodes, so it keeps its own copy of the limit."""
    from remotectl.transport import psk_probe

    assert psk_probe.MAX_KEY_BYTES == m.MAX_KEY_BYTES


def test_assess_empty_file_is_no_key():
    a = m.assess_node(m.key_location({}, override="/t"), (2, 1, 5), {"/t": facts("/t", b"")})
    assert a.effective is None and a.problems[0].code == "empty"


@pytest.mark.parametrize("mode,codes", [
    (0o400, []),
    (0o440, []),
    (0o640, []),
    (0o644, ["world-readable"]),
    (0o604, ["world-readable"]),
    (0o660, ["writable-by-others"]),
])
def test_permission_problems(mode, codes):
    got = [p.code for p in m.permission_problems(facts("/k", b"x" * 32, mode=mode, group="haclient"))]
    assert got == codes


def test_unreadable_by_hacluster():
    f = facts("/k", b"x" * 32, mode=0o400, owner="root", group="root", hacluster=False)
    problems = m.permission_problems(f)
    assert [p.code for p in problems] == ["unreadable-by-hacluster"]
    assert problems[0].severity == "error"


def test_verdict_majority_and_outlier():
    v = m.verdict({"a": "sha256:1", "b": "sha256:1", "c": "sha256:2"})
    assert v.reference == "sha256:1" and v.reference_source == "majority"
    assert v.differing == ["c"] and not v.consistent
    assert v.matches == {"a": True, "b": True, "c": False}


def test_verdict_all_equal_is_consistent():
    v = m.verdict({"a": "sha256:1", "b": "sha256:1"})
    assert v.consistent and v.differing == []


def test_verdict_reference_key_wins_over_majority():
    v = m.verdict({"a": "sha256:1", "b": "sha256:1", "c": "sha256:2"}, reference="sha256:2")
    assert v.reference_source == "key" and v.differing == ["a", "b"]


def test_verdict_tie_has_no_majority():
    v = m.verdict({"a": "sha256:1", "b": "sha256:2"})
    assert v.reference is None and not v.consistent and set(v.differing) == {"a", "b"} and v.notes


def test_verdict_missing_and_unreachable_are_not_consistent():
    assert not m.verdict({"a": "sha256:1", "b": None}).consistent
    v = m.verdict({"a": "sha256:1"}, unreachable=["b"])
    assert not v.consistent and v.unchecked == ["b"] and v.differing == []


def test_restart_plan_by_version_cluster_nodes_first():
    steps = m.plan_restarts([("node1", "cluster", (3, 0, 2)), ("r1", "remote", (3, 0, 2)),
                             ("g1", "guest", (2, 1, 5)), ("node2", "cluster", None)])
    assert [s.node for s in steps] == ["node1", "node2", "r1", "g1"]
    by = {s.node: s for s in steps}
    assert by["g1"].kind == "guest" and by["r1"].kind == "remote"
    assert by["r1"].needed and by["r1"].argv == m.REMOTE_RESTART
    assert not by["g1"].needed and "60 s" in by["g1"].reason
    assert by["node1"].needed and by["node1"].argv == m.CLUSTER_RESTART
    assert by["node2"].needed and "unknown" in by["node2"].reason


def test_attribute_value():
    from remotectl.pacemaker.tools import attribute_value

    assert attribute_value("true\n") == "true"
    assert attribute_value("scope=crm_config  name=maintenance-mode value=false\n") == "false"
    assert attribute_value("scope=nodes  name=note value=two words\n") == "two words"
    assert attribute_value("scope=nodes  name=standby value=(null)\n") is None
    assert attribute_value("") is None


def test_cli_constants_mirror_the_model():
    """cli/authkey.py repeats these so that `remotectl authkey --help` loads no remotectl.pacemaker module."""
    from remotectl.cli import authkey as cli

    assert (cli.DEFAULT_KEY, cli.DEFAULT_BYTES, cli.MIN_BYTES, cli.MAX_BYTES) == (
        m.DEFAULT_KEY_PATH, m.DEFAULT_KEY_BYTES, m.MIN_KEY_BYTES, m.MAX_KEY_BYTES)


def test_an_empty_location_means_no_key_from_3_0():
    location = m.key_location({"/etc/default/pacemaker": "PCMK_authkey_location=\n"})
    assert location.path == m.DEFAULT_KEY_PATH and location.empty_in == "/etc/default/pacemaker"
    key = m.FileFacts(m.DEFAULT_KEY_PATH, True, size=256, mode=0o400, owner="hacluster", group="haclient",
                      sha256="ab" * 32)
    on3 = m.assess_node(location, (3, 0, 3), {m.DEFAULT_KEY_PATH: key})
    assert on3.effective is None and [(p.code, p.severity) for p in on3.problems] == [("empty-location", "error")]
    on2 = m.assess_node(location, (2, 1, 5), {m.DEFAULT_KEY_PATH: key})
    assert on2.effective == key and [(p.code, p.severity) for p in on2.problems] == [("empty-location", "warning")]
    guessed = m.assess_node(location, None, {m.DEFAULT_KEY_PATH: key})
    assert guessed.effective == key and "guessing" in guessed.problems[0].message
    configured = m.key_location({"/etc/sysconfig/pacemaker": "PCMK_authkey_location=\n",
                                 "/etc/default/pacemaker": "PCMK_authkey_location=/srv/key\n"})
    assert configured.path == "/srv/key" and m.fallback_chain(configured, (3, 0, 3)) == ["/srv/key"]
