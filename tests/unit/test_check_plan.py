"""`remotectl check` planning: target resolution from the node list, usage errors, the --full guard, the
--from cluster sources, result mapping, exit codes and the JSON shape. Pure: no sockets are opened here
(the only name lookups are for literal addresses and "localhost")."""

import json

import pytest

from remotectl.actions import check as action
from remotectl.actions import targets as targeting
from remotectl.pacemaker.nodes import Node
from remotectl.reports import ExitCode, RefusedError, RemotectlError
from remotectl.transport import psk_probe
from remotectl.transport.dns import AddressCache
from tests.fakes import ReplyRunner

NODES = [
    Node("node1", "cluster", True, False, False, False),
    Node("node2", "cluster", False, False, False, False),
    Node("node3", "cluster", False, False, False, True),
    Node("remote1", "remote", True, False, False, False, "remote1", "127.0.0.2", 3121, "node1"),
    Node("remote2", "remote", False, False, False, False, "remote2", "127.0.0.3", 3999, None),
    Node("guest1", "guest", True, False, False, False, "vm-guest1", "127.0.0.4", 3121, "node1"),
    Node("bundle-0", "bundle", True, False, False, False, "bundle", "10.0.0.10", 3121, "node1"),
    Node("noaddr", "remote", False, False, False, False, "noaddr", None, None, None),
    Node("lh", "remote", True, False, False, False, "lh", "127.0.0.1", 3333, "node1"),
]


# the contract's keys of a check result, in order (docs/cli-contract.md)
CONTRACT_KEYS = ["target", "address", "port", "tcp", "verdict", "tls_version", "cipher", "ok", "hint"]


def nodes():
    return NODES


def no_cluster():
    raise RemotectlError("no cluster to talk to: Pacemaker's tools are not installed here")


def must_not_be_called():
    raise AssertionError("the node list must not be queried for IP-literal targets")


# --- targets ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("remote1", ("remote1", None)),
    ("10.1.2.3:3122", ("10.1.2.3", 3122)),
    ("[fe80::1]:3121", ("fe80::1", 3121)),
    ("[fe80::1]", ("fe80::1", None)),
    ("fe80::1", ("fe80::1", None)),
    (" host.example ", ("host.example", None)),
])
def test_split_target(text, expected):
    assert targeting.split_target(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:65536", "host:abc", ":3121", "[::1", "[::1]x"])
def test_split_target_rejects_garbage_as_usage_error(text):
    with pytest.raises(RemotectlError) as err:
        targeting.split_target(text)
    assert err.value.exit_code == ExitCode.USAGE


def resolve(texts, port=None, addresses=None):
    return targeting.resolve_targets(texts, NODES, reach=targeting.psk(port, addresses))


def test_node_names_take_address_and_port_from_the_cib():
    targets = resolve(["remote1", "remote2", "guest1", "bundle-0", "noaddr"])
    assert [(t.label, t.host, t.port, t.node, t.connected) for t in targets] == [
        ("remote1", "127.0.0.2", 3121, "remote1", True),
        ("remote2", "127.0.0.3", 3999, "remote2", False),
        ("guest1", "127.0.0.4", 3121, "guest1", True),
        ("bundle-0", "10.0.0.10", 3121, "bundle-0", True),
        ("noaddr", "noaddr", 3121, "noaddr", False),  # Pacemaker's default server= is the node name
    ]


def test_port_option_and_explicit_port_override_the_cib():
    t1, t2, t3 = resolve(["remote2", "remote2:4000", "somehost"], port=3200)
    assert (t1.port, t2.port, t3.port) == (3200, 4000, 3200)
    assert t3.node is None and t3.host == "somehost"


def test_cluster_node_names_are_plain_hosts():
    (target,) = resolve(["node1"])
    assert (target.host, target.port, target.node, target.connected) == ("node1", 3121, None, False)


def test_all_is_every_remote_guest_and_bundle_node():
    targets = targeting.resolve_targets([], NODES, all_nodes=True, reach=targeting.psk())
    assert [t.label for t in targets] == ["remote1", "remote2", "guest1", "bundle-0", "noaddr", "lh"]


def test_host_targets_are_matched_to_nodes_by_address_and_port():
    by_literal, other_port = resolve(["127.0.0.2:3121", "127.0.0.2:3122"])
    assert (by_literal.node, by_literal.connected) == ("remote1", True)
    assert other_port.node is None and not other_port.connected
    # by resolved address only when asked (the --full guard): "localhost" is 127.0.0.1, node lh listens on 3333
    (plain,) = resolve(["localhost:3333"])
    assert plain.node is None
    (resolved,) = resolve(["localhost:3333"], addresses=AddressCache().addresses)
    assert (resolved.node, resolved.connected) == ("lh", True)


# --- plan ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    (dict(targets=[]), "give TARGET"),
    (dict(targets=["a"], all_nodes=True), "not both"),
    (dict(targets=["a"], full=True, source="cluster"), "--full runs from here only"),
    (dict(targets=["a"], force=True), "--force only applies to --full"),
    (dict(targets=["a"], timeout=0), "--timeout"),
])
def test_usage_errors(kwargs, words):
    with pytest.raises(RemotectlError) as err:
        action.plan_check(nodes, **kwargs)
    assert err.value.exit_code == ExitCode.USAGE and words in err.value.message


def test_ip_literals_do_not_need_the_cluster():
    plan = action.plan_check(must_not_be_called, ["127.0.0.1:1", "[::1]:3121"])
    assert [(t.host, t.port) for t in plan.targets] == [("127.0.0.1", 1), ("::1", 3121)]
    assert plan.mode == "here" and not plan.reports


def test_names_without_a_cluster_are_host_names_with_a_warning():
    plan = action.plan_check(no_cluster, ["remote1"])
    assert [(t.host, t.node) for t in plan.targets] == [("remote1", None)]
    assert "used as host names" in plan.reports[0].message


@pytest.mark.parametrize("kwargs", [dict(all_nodes=True), dict(targets=["remote1"], source="cluster")])
def test_all_and_from_cluster_need_a_cluster(kwargs):
    with pytest.raises(RemotectlError) as err:
        action.plan_check(no_cluster, **kwargs)
    assert err.value.exit_code == ExitCode.FAILURE and "no cluster could be queried" in err.value.message


@pytest.mark.parametrize("target", ["remote1", "guest1", "bundle-0", "127.0.0.2:3121", "127.0.0.2",
                                    "localhost:3333"])
def test_full_is_refused_against_connected_nodes(target):
    with pytest.raises(RefusedError) as err:
        action.plan_check(nodes, [target], full=True)
    assert err.value.exit_code == ExitCode.REFUSED
    assert "fence" in err.value.message and "--force" in err.value.message


def test_full_force_against_a_connected_node_warns_plainly():
    plan = action.plan_check(nodes, ["remote1", "10.9.9.9"], full=True, force=True)
    assert plan.mode == "full"
    (warning,) = plan.warnings
    assert "remote1" in warning and "drop its connection" in warning
    assert "unclean" in warning and "may be fenced" in warning


def test_full_is_allowed_for_unknown_and_offline_hosts():
    plan = action.plan_check(nodes, ["10.9.9.9:3121", "remote2", "127.0.0.2:3999"], full=True)
    assert not plan.warnings and [t.connected for t in plan.targets] == [False, False, False]
    assert any("remote2" in r.message and "not connected" in r.message for r in plan.reports)


def test_full_without_any_cluster_is_refused_unless_forced():
    with pytest.raises(RefusedError) as err:
        action.plan_check(no_cluster, ["10.9.9.9"], full=True)
    assert "cannot tell whether a cluster is connected" in err.value.message
    plan = action.plan_check(no_cluster, ["10.9.9.9"], full=True, force=True)
    assert len(plan.warnings) == 1 and "--force" in plan.warnings[0] and "fenced" in plan.warnings[0]


def test_from_cluster_uses_online_cluster_nodes_and_reports_the_others():
    plan = action.plan_check(nodes, [], all_nodes=True, source="cluster")
    assert plan.sources == ["node1"]
    assert plan.skipped_sources == [{"node": "node2", "reason": "offline"}, {"node": "node3", "reason": "unclean"}]
    assert [r.node for r in plan.reports] == ["node2", "node3"]


def test_from_cluster_without_online_cluster_nodes_fails():
    offline = [n for n in NODES if n.name != "node1"]
    with pytest.raises(RemotectlError) as err:
        action.plan_check(lambda: offline, ["remote1"], source="cluster")
    assert "no online cluster node" in err.value.message


def test_workers_are_bounded():
    assert action.plan_check(nodes, ["127.0.0.1"], workers=100000).workers == action.MAX_WORKERS
    assert action.plan_check(nodes, ["127.0.0.1"], workers=0).workers == 1


# --- results ------------------------------------------------------------------------------------------------------

TARGET = targeting.Target(label="remote1", host="127.0.0.2", port=3121, node="remote1", type="remote", connected=True)


def probe_dict(verdict, tcp, **kw):
    result = psk_probe.ProbeResult(target="127.0.0.2", address="127.0.0.2", port=3121, tcp=tcp, verdict=verdict,
                                   hint=psk_probe.hint_for(verdict, "127.0.0.2", 3121, timeout=5), **kw)
    return result.to_dict()


@pytest.mark.parametrize("verdict, tcp, expected_tcp", [
    ("match", "open", "open"),
    ("mismatch", "open", "open"),
    ("refused", "refused", "refused"),
    ("tcp-timeout", "timeout", "timeout"),
    ("tcp-timeout", None, "timeout"),
    ("unreachable", "unreachable", "unreachable"),
    ("unresolved", "unresolved", "unresolved"),
    ("probe-bug", None, None),
])
def test_entries_are_contract_shaped(verdict, tcp, expected_tcp):
    entry = action.entry_from_probe(TARGET, probe_dict(verdict, tcp, tls_version="TLS1.3"))
    doc = entry.to_dict()
    assert list(doc)[:9] == CONTRACT_KEYS
    assert doc["target"] == "remote1" and doc["address"] == "127.0.0.2" and doc["port"] == 3121
    assert doc["tcp"] == expected_tcp and (expected_tcp is None or expected_tcp in action.TCP_VALUES)
    assert doc["ok"] is (verdict == "match") and doc["hint"] and "from" not in doc
    assert doc["node"] == "remote1"


def test_unknown_verdicts_never_count_as_ok():
    entry = action.entry_from_probe(TARGET, {"verdict": "MATCH-ish", "ok": True, "tcp": "open"})
    assert entry.verdict == "probe-bug" and not entry.ok
    entry = action.entry_from_probe(TARGET, {"verdict": "match", "ok": False, "tcp": "open"})  # full: lrmd_rc != 0
    assert not entry.ok


def run_of(verdicts_tcp, mode="here"):
    plan = action.CheckPlan([TARGET] * len(verdicts_tcp), mode, 5.0, 4, sources=["node1"] if mode == "cluster"
                            else [])
    entries = [action.entry_from_probe(TARGET, probe_dict(v, t), source="node1" if mode == "cluster" else None)
               for v, t in verdicts_tcp]
    return action.CheckRun(plan, entries)


@pytest.mark.parametrize("outcomes, code", [
    ([("match", "open")], ExitCode.OK),
    ([("match", "open"), ("match", "open")], ExitCode.OK),
    ([("match", "open"), ("mismatch", "open")], ExitCode.PARTIAL),
    ([("mismatch", "open")], ExitCode.PARTIAL),  # checked: the key differs
    ([("timeout", "open")], ExitCode.PARTIAL),  # connected, no TLS answer: still a finding about the service
    ([("match", "open"), ("refused", "refused")], ExitCode.PARTIAL),
    ([("refused", "refused")], ExitCode.FAILURE),  # none could be checked
    ([("refused", "refused"), ("tcp-timeout", "timeout"), ("unresolved", "unresolved")], ExitCode.FAILURE),
    ([("probe-bug", "open")], ExitCode.FAILURE),
    ([], ExitCode.FAILURE),
])
def test_exit_codes(outcomes, code):
    assert run_of(outcomes).exit_code() == code


def test_not_checked_pairs_count_as_not_checked():
    plan = action.CheckPlan([TARGET], "cluster", 5.0, 4, sources=["node1"])
    run = action.CheckRun(plan, [action.not_checked(TARGET, "node1", "python3 not found on node1")])
    assert run.exit_code() == ExitCode.FAILURE
    doc = run.to_json()
    assert doc["results"][0]["verdict"] == "not-checked" and doc["results"][0]["from"] == "node1"
    assert doc["results"][0]["tcp"] is None and doc["matrix"] == {"node1": {"remote1": "not-checked"}}


def test_cluster_json_has_results_with_from_and_a_matrix():
    run = run_of([("match", "open"), ("tcp-timeout", "timeout")], mode="cluster")
    run.entries[1].target = "remote2"
    doc = json.loads(json.dumps(run.to_json()))
    assert doc["mode"] == "cluster"
    assert [r["from"] for r in doc["results"]] == ["node1", "node1"]
    assert doc["matrix"] == {"node1": {"remote1": "match", "remote2": "tcp-timeout"}}
    assert run.summary() == "2 pairs: 1 ok, 1 tcp-timeout"
    assert [e.target for e in run.failing_pairs()] == ["remote2"]


# --- remote output ------------------------------------------------------------------------------------------------

def remote_doc(results, error=None):
    return json.dumps({"format": psk_probe.FORMAT, "node": "n", "python": "3.6.15", "gnutls": "3.7.9",
                       "key": None, "results": results, "error": error}) + "\n"


def test_parse_remote_output():
    doc = action.parse_remote_output("node1", 0, remote_doc([probe_dict("match", "open")]), "", 1)
    assert doc["results"][0]["verdict"] == "match"
    doc = action.parse_remote_output("node1", 2, remote_doc([], error="no usable Pacemaker Remote key"), "", 1)
    assert doc["error"].startswith("no usable")


@pytest.mark.parametrize("rc, stdout, stderr, words", [
    (127, "", "env: 'python3': No such file or directory", "python3 not found on node1"),
    (1, "", "Traceback ... SyntaxError", "no probe result from node1"),
    (0, "not json\n", "", "no probe result from node1"),
    (0, json.dumps({"format": "other"}), "", "no probe result"),
    (0, remote_doc([]), "", "returned 0 results for 2 targets"),
])
def test_parse_remote_output_failures(rc, stdout, stderr, words):
    with pytest.raises(RemotectlError) as err:
        action.parse_remote_output("node1", rc, stdout, stderr, 2)
    assert words in err.value.message


def test_run_from_cluster_builds_the_matrix_and_never_ships_the_key():
    from remotectl.transport.base import TransportError

    members = [Node("a", "cluster", True, False, False, False), Node("b", "cluster", True, False, False, False),
               Node("c", "cluster", True, False, False, False)] + NODES[3:5]
    plan = action.plan_check(lambda: members, ["remote1", "remote2"], source="cluster", key_path="/etc/x/authkey")
    replies = {
        "a": (0, remote_doc([probe_dict("match", "open"), probe_dict("match", "open")])),
        "b": (0, remote_doc([probe_dict("match", "open"), probe_dict("tcp-timeout", "timeout")])),
        "c": TransportError("c: SSH authentication failed as root"),
    }
    runners = {name: ReplyRunner(name, reply) for name, reply in replies.items()}
    ticks = []
    run = action.run_check(plan, runner_for=runners.__getitem__, on_progress=ticks.append)
    assert len(ticks) == 3 and ticks[-1] is None
    assert run.matrix == {"a": {"remote1": "match", "remote2": "match"},
                            "b": {"remote1": "match", "remote2": "tcp-timeout"},
                            "c": {"remote1": "not-checked", "remote2": "not-checked"}}
    assert [(e.source, e.target) for e in run.failing_pairs()] == [
        ("b", "remote2"), ("c", "remote1"), ("c", "remote2")]
    assert run.exit_code() == ExitCode.PARTIAL
    assert any("SSH authentication failed" in r.message and r.node == "c" for r in run.reports)
    argv, stdin, timeout = runners["a"].calls[0]
    assert argv[:2] == ["python3", "-c"] and argv[argv.index("--key-file") + 1] == "/etc/x/authkey"
    header = json.loads(stdin.split(b"\n", 1)[0])
    assert header["targets"] == [["127.0.0.2", 3121], ["127.0.0.3", 3999]]
    assert timeout >= 30


def test_run_from_cluster_warns_when_cluster_nodes_use_different_keys():
    members = [Node("a", "cluster", True, False, False, False), Node("b", "cluster", True, False, False, False),
               NODES[3]]
    plan = action.plan_check(lambda: members, ["remote1"], source="cluster")

    def doc(fingerprint):
        text = json.loads(remote_doc([probe_dict("match", "open")]))
        text["key"] = {"path": "/etc/pacemaker/authkey", "fingerprint": fingerprint, "size": 256, "warnings": []}
        return 0, json.dumps(text)

    runners = {"a": ReplyRunner("a", doc("sha256:aa")), "b": ReplyRunner("b", doc("sha256:bb"))}
    run = action.run_check(plan, runner_for=runners.__getitem__)
    assert any("different keys" in r.message for r in run.reports)
    assert run.to_json()["sources"]["b"]["key"]["fingerprint"] == "sha256:bb"


def test_load_key_reports_fingerprint_never_bytes(tmp_path):
    path = tmp_path / "authkey"
    path.write_bytes(b"\x01secret-key-bytes\n")
    key, info, warnings = action.load_key(str(path))
    assert key == b"\x01secret-key-bytes\n" and warnings == []
    assert info == {"path": str(path), "source": "--key", "warnings": [], "size": 18,
                    "fingerprint": psk_probe.key_fingerprint(key)}
    with pytest.raises(RemotectlError) as err:
        action.load_key(str(tmp_path / "missing"))
    assert "cannot read key file" in err.value.message


def test_the_default_port_is_the_probes():
    assert targeting.DEFAULT_PORT == psk_probe.DEFAULT_PORT


def test_default_workers_respect_the_open_file_limit(monkeypatch):
    from remotectl.transport import limits

    monkeypatch.setattr(limits, "soft_nofile", lambda: 100)
    monkeypatch.setattr(limits, "open_fds", lambda: 30)
    assert action.plan_check(nodes, ["127.0.0.1"]).workers == 100 - 30 - limits.RESERVE
    assert action.plan_check(nodes, ["127.0.0.1"], workers=200).workers == 200  # asked for: as asked
    monkeypatch.setattr(limits, "soft_nofile", lambda: 20)
    assert action.plan_check(nodes, ["127.0.0.1"]).workers == 1  # never 0 or less
    monkeypatch.setattr(limits, "soft_nofile", lambda: None)  # unlimited
    assert action.plan_check(nodes, ["127.0.0.1"]).workers == action.DEFAULT_WORKERS


def test_open_fds_counts_this_process():
    import os

    from remotectl.transport import limits

    before = limits.open_fds()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert limits.open_fds() == before + 1
    finally:
        os.close(fd)


def test_pending_names_the_first_unfinished_item():
    pending = action.Pending(["a", "b", "c", "d"])
    assert pending.slowest() == "a"
    assert pending.finish(2) == "a"  # c done out of order: a still runs longest
    assert pending.finish(0) == "b"
    assert pending.finish(1) == "d"  # b done: c already was
    assert pending.finish(3) is None


def test_local_probes_tick_with_the_slowest_pending_target(monkeypatch, tmp_path):
    from remotectl.transport import psk_probe

    def probe_many(targets, key, timeout=5.0, workers=16, callback=None, family=0):
        results = [psk_probe.ProbeResult(target=h, address=h, port=p, tcp="refused", verdict="refused")
                   for h, p in targets]
        for index in (1, 0, 2):  # finishing out of order
            callback(results[index])
        return results

    monkeypatch.setattr(psk_probe, "probe_many", probe_many)
    keyfile = tmp_path / "authkey"
    keyfile.write_bytes(b"k" * 32)
    plan = action.plan_check(nodes, ["127.0.0.1:1", "127.0.0.1:1", "127.0.0.2:3"], key_path=str(keyfile))
    ticks = []
    action.run_check(plan, on_progress=ticks.append)
    assert ticks == ["127.0.0.1:1", "127.0.0.2:3", None]
