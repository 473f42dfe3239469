"""`remotectl check` end to end through the CLI (a real `python -m remotectl` process, `--json`) against real
servers from probe_servers: standalone pacemaker-remoted instances with 4096- and 256-byte keys and a TLS1.2-only
one, sshd, a silent listener and a closed port. No cluster is involved: IP-literal targets never query one, and
--full uses an offline CIB (--cib) whose nodes are elsewhere, so the guard can tell the targets are not nodes.

Every remoted's own log must show a failed handshake per probe and never "Remote client connection accepted",
except for --full, which completes the handshake on purpose."""

import json
from pathlib import Path

import pytest

from remotectl.transport import psk_probe as pp
from tests.integration import cib_xml
from tests.integration.conftest import require_probe_servers
from tests.integration.lab_cli import run_remotectl
from tests.integration.probe_servers import ACCEPTED_LINE, ProbeLab, make_key

REPO = Path(__file__).resolve().parents[2]
OFFLINE_CIB = REPO / "tests" / "data" / "completion-cib.xml"  # nodes on 127.0.0.2/127.0.0.4, not 127.0.1.x
TLS12_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.2"
FAILED = "TLS handshake with remote client failed"
FAILED_110 = "The TLS connection was non-properly terminated. | rc=-110"
FAILED_55 = "An illegal parameter has been received. | rc=-55"
CONTRACT = {"target", "address", "port", "tcp", "verdict", "tls_version", "cipher", "ok", "hint"}


class Env(object):
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_probe_servers(need_sshd=True)
    work = tmp_path_factory.mktemp("check-cli")
    e = Env()
    e.key4096 = make_key(work / "key4096", 4096)
    e.key256 = make_key(work / "key256", 256)
    e.wrong = make_key(work / "wrong4096", 4096)
    lab = ProbeLab(work / "lab")
    try:
        e.r4096 = lab.remoted("c4096", e.key4096)
        e.r256 = lab.remoted("c256", e.key256)
        e.r12 = lab.remoted("c12", e.key4096, priorities=TLS12_ONLY)
        e.rfull = lab.remoted("cfull", e.key4096)
        e.sshd = lab.sshd()
        e.silent = lab.tcp_server("silent")
        e.closed = lab.closed_port()
        yield e
    finally:
        lab.close()


def endpoint(pair):
    return "%s:%d" % tuple(pair)


def remotectl(*args, timeout=120):
    return run_remotectl(*[str(a) for a in args], timeout=timeout)


def check_json(*args, cib=None, **kw):
    prefix = ("--cib", cib) if cib else ()
    proc = remotectl(*(prefix + ("check", "--json") + args), **kw)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("stdout is not one JSON document (rc=%s):\n%s\n%s" % (proc.returncode, proc.stdout,
                                                                                  proc.stderr))
    return proc, doc


def never_accepted(*remoteds):
    for remoted in remoteds:
        assert remoted.count(ACCEPTED_LINE) == 0, remoted.log_text()[-3000:]


def test_distinct_verdicts_through_the_cli(env):
    targets = [
        ("r4096", endpoint((env.r4096.host, env.r4096.port))),
        ("r256", endpoint((env.r256.host, env.r256.port))),
        ("r12", endpoint((env.r12.host, env.r12.port))),
        ("sshd", endpoint(env.sshd)),
        ("silent", endpoint(env.silent)),
        ("closed", endpoint(env.closed)),
    ]
    before = {r.tag: r.count(FAILED) for r in (env.r4096, env.r256, env.r12)}
    proc, doc = check_json("--key", env.key4096, "--timeout", "1.5", *[t for _, t in targets])
    assert proc.returncode == 3, proc.stderr  # some checked and not ok
    results = doc["results"]
    assert [r["target"] for r in results] == [t for _, t in targets]
    for result in results:
        assert CONTRACT <= set(result)
        assert result["tcp"] in ("open", "refused", "timeout", "unreachable", "unresolved")
    got = {name: (r["verdict"], r["tcp"], r["ok"]) for (name, _), r in zip(targets, results)}
    assert got == {
        "r4096": ("match", "open", True),
        "r256": ("mismatch", "open", False),  # the 4096-byte key against the 256-byte node
        "r12": ("tls12-only", "open", False),
        "sshd": ("not-tls", "open", False),
        "silent": ("timeout", "open", False),
        "closed": ("refused", "refused", False),
    }
    by_name = dict(zip([n for n, _ in targets], results))
    assert by_name["r4096"]["tls_version"] == "TLS1.3" and by_name["r4096"]["cipher"]
    assert "match" in by_name["r4096"]["verdict"] and "mismatch" in by_name["r256"]["verdict"]
    assert "remotectl authkey verify" in by_name["r256"]["hint"]
    assert "without completing the handshake" in by_name["r12"]["hint"]
    assert "not a Pacemaker Remote TLS server" in by_name["sshd"]["hint"]
    assert "no complete TLS answer within 1.5s" in by_name["silent"]["hint"]
    assert "nothing listens on %d" % env.closed[1] in by_name["closed"]["hint"]
    assert doc["key"]["size"] == 4096 and doc["key"]["fingerprint"] == pp.key_fingerprint(pp.read_key(env.key4096))
    # one failed handshake per probe in each remoted's log, and no accepted client
    assert env.r4096.wait_count(FAILED, before["c4096"] + 1) == before["c4096"] + 1
    assert env.r256.wait_count(FAILED, before["c256"] + 1) == before["c256"] + 1
    assert env.r12.wait_count(FAILED, before["c12"] + 1) == before["c12"] + 1
    never_accepted(env.r4096, env.r256, env.r12)
    key_hex = pp.read_key(env.key4096).hex()[:64]
    assert key_hex not in proc.stdout and key_hex not in proc.stderr


def test_256_byte_key_matches_and_4096_byte_node_mismatches(env):
    proc, doc = check_json("--key", env.key256, endpoint((env.r256.host, env.r256.port)),
                           endpoint((env.r4096.host, env.r4096.port)))
    assert [(r["verdict"], r["ok"]) for r in doc["results"]] == [("match", True), ("mismatch", False)]
    assert doc["key"]["size"] == 256 and proc.returncode == 3
    never_accepted(env.r256, env.r4096)


def test_all_match_is_exit_0_and_wrong_key_exit_3(env):
    target = endpoint((env.r4096.host, env.r4096.port))
    before = env.r4096.count(FAILED_110), env.r4096.count(FAILED_55)
    proc, doc = check_json("--key", env.key4096, target, target, target)
    assert proc.returncode == 0 and [r["verdict"] for r in doc["results"]] == ["match"] * 3
    proc, doc = check_json("--key", env.wrong, target, target)
    assert proc.returncode == 3 and [r["verdict"] for r in doc["results"]] == ["mismatch"] * 2
    assert env.r4096.wait_count(FAILED_110, before[0] + 3) == before[0] + 3
    assert env.r4096.wait_count(FAILED_55, before[1] + 2) == before[1] + 2
    never_accepted(env.r4096)


def test_closed_port_alone_is_exit_1(env):
    proc, doc = check_json("--key", env.key4096, "127.0.0.1:1")
    assert proc.returncode == 1, proc.stderr
    (result,) = doc["results"]
    assert (result["verdict"], result["tcp"], result["ok"], result["port"]) == ("refused", "refused", False, 1)


def test_unresolved_name_without_a_cluster(env):
    proc, doc = check_json("--key", env.key4096, "no-such-node.invalid", cib=OFFLINE_CIB)
    assert proc.returncode == 1
    assert [(r["verdict"], r["tcp"]) for r in doc["results"]] == [("unresolved", "unresolved")]


def test_port_option_applies_to_hosts_without_a_port(env):
    proc, doc = check_json("--key", env.key4096, "--port", env.r4096.port, env.r4096.host)
    assert proc.returncode == 0 and doc["results"][0]["port"] == env.r4096.port


def test_human_table(env):
    proc = remotectl("check", "--key", env.key4096, endpoint((env.r4096.host, env.r4096.port)), endpoint(env.closed))
    assert proc.returncode == 3
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "ADDRESS", "TCP", "VERDICT", "TLS", "HINT"]
    assert any(line.split()[2:5] == ["open", "match", "TLS1.3"] for line in lines)
    assert any(line.split()[2:4] == ["refused", "refused"] for line in lines)
    assert lines[-1] == "2 probes: 1 ok, 1 refused"


def test_unreadable_key_is_a_one_line_error(env, tmp_path):
    proc = remotectl("check", "--key", tmp_path / "nope", "127.0.0.1:1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("remotectl: error: cannot read key file") and "Traceback" not in proc.stderr


def test_no_target_is_a_usage_error():
    proc = remotectl("check")
    assert proc.returncode == 2 and "give TARGET... or --all" in proc.stderr


def test_full_reports_the_protocol_version(env):
    target = endpoint((env.rfull.host, env.rfull.port))
    accepted = env.rfull.count(ACCEPTED_LINE)
    proc, doc = check_json("--full", "--key", env.key4096, target, cib=OFFLINE_CIB)
    assert proc.returncode == 0, proc.stderr
    (result,) = doc["results"]
    assert (result["verdict"], result["ok"], result["protocol_version"], result["lrmd_rc"]) == ("match", True,
                                                                                                 "1.1", 0)
    assert doc["mode"] == "full" and result["tls_version"] == "TLS1.3"
    # this one did complete the handshake: that is what --full is for
    assert env.rfull.wait_count(ACCEPTED_LINE, accepted + 1) == accepted + 1
    proc, doc = check_json("--full", "--key", env.wrong, target, cib=OFFLINE_CIB)
    assert proc.returncode == 3 and doc["results"][0]["verdict"] == "mismatch"


def test_full_human_output_has_a_protocol_column(env):
    proc = remotectl("--cib", OFFLINE_CIB, "check", "--full", "--key", env.key4096,
                     endpoint((env.rfull.host, env.rfull.port)))
    assert proc.returncode == 0
    header = proc.stdout.splitlines()[0].split()
    row = proc.stdout.splitlines()[2].split()
    assert header[:7] == ["TARGET", "ADDRESS", "TCP", "VERDICT", "TLS", "PROTOCOL", "HINT"]
    assert row[2:6] == ["open", "match", "TLS1.3", "1.1"]


def test_full_without_any_cluster_is_refused_unless_forced(env):
    target = endpoint((env.rfull.host, env.rfull.port))
    accepted = env.rfull.count(ACCEPTED_LINE)
    missing = REPO / "tests" / "data" / "no-such-cib.xml"
    proc = remotectl("--cib", missing, "check", "--full", "--key", env.key4096, target)
    assert proc.returncode == 4 and proc.stdout == ""
    assert "cannot tell whether a cluster is connected" in proc.stderr and "--force" in proc.stderr
    assert env.rfull.count(ACCEPTED_LINE) == accepted  # nothing was attempted
    proc, doc = check_json("--full", "--force", "--key", env.key4096, target, cib=missing)
    assert proc.returncode == 0 and doc["results"][0]["protocol_version"] == "1.1"
    assert proc.stderr.startswith("WARNING: --full completes the TLS handshake")
    assert "going ahead because of --force" in proc.stderr


def test_full_is_refused_for_a_node_the_offline_cib_says_is_online(env, tmp_path):
    """An offline CIB (pure model) with a remote node at the standalone remoted's address, connected per its status
    section, is enough for the guard: exit 4 and no handshake."""
    cib = tmp_path / "cib.xml"
    cib.write_text(_cib_with_online_remote("vetme", env.rfull.host, env.rfull.port))
    nodes = json.loads(remotectl("--cib", cib, "nodes", "--json").stdout)["nodes"]
    vetme = [n for n in nodes if n["name"] == "vetme"]
    if not vetme or not vetme[0]["online"]:
        pytest.fail("test CIB does not model an online remote node: %s" % nodes)
    accepted = env.rfull.count(ACCEPTED_LINE)
    for target in ("vetme", endpoint((env.rfull.host, env.rfull.port))):
        proc = remotectl("--cib", cib, "check", "--full", "--key", env.key4096, target)
        assert proc.returncode == 4, proc.stderr
        assert "refusing --full against" in proc.stderr and "vetme" in proc.stderr
    assert env.rfull.count(ACCEPTED_LINE) == accepted


def _cib_with_online_remote(name, host, port):
    resources = f"""\
      <primitive id="{name}" class="ocf" provider="pacemaker" type="remote">
        <instance_attributes id="{name}-ia">
          <nvpair id="{name}-server" name="server" value="{host}"/>
          <nvpair id="{name}-port" name="port" value="{port}"/>
        </instance_attributes>
      </primitive>"""
    return cib_xml.cib(resources, [(name, "ocf", "pacemaker", "remote")],
                       f'<node_state id="{name}" uname="{name}" remote_node="true" in_ccm="true"/>',
                       stonith_enabled=False)
