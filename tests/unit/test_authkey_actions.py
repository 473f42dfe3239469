"""remotectl.actions.authkey with simulated hosts: target resolution, push, verify, rotate with rollback, and
the restart procedure. The real shell scripts run against real files in tests/integration/test_authkey_*.py."""

import json
from types import SimpleNamespace

import pytest

from remotectl.actions import authkey as actions
from remotectl.actions import targets as targeting
from remotectl.pacemaker import authkey as model
from remotectl.reports import ExitCode, RefusedError, Reporter, RemotectlError, Severity, per_node_exit
from tests.fakes import FakeClock, FakeHost, scripted_cluster

KEY_A = bytes(range(256))
KEY_B = bytes(reversed(range(256)))


def target(name, node_type=None, host=None):
    return targeting.Target(label=name, host=host or name, type=node_type)


def factory(hosts):
    return lambda destination: hosts[destination]


def assert_no_key_anywhere(hosts, *documents, keys=(KEY_A, KEY_B)):
    for host in hosts.values():
        for argv in host.commands:
            joined = "\0".join(argv).encode("utf-8", "surrogateescape")
            for key in keys:
                assert key not in joined and key.hex().encode() not in joined
    for document in documents:
        text = json.dumps(document) if not isinstance(document, str) else document
        for key in keys:
            assert key.hex() not in text
            import base64

            assert base64.b64encode(key).decode() not in text


# -- targets ---------------------------------------------------------------------------------------------------------
def node(name, node_type, address=None, resource=None):
    return SimpleNamespace(name=name, type=node_type, address=address, resource=resource, online=True)


NODES = [node("node1", "cluster"), node("remote1", "remote", "10.0.0.2", "remote1"),
         node("guest1", "guest", "10.0.0.4", "vm-guest1"), node("web-0", "bundle", "10.0.0.9", "web")]


def test_all_resolves_cluster_by_name_remote_and_guest_by_address_and_skips_bundles():
    targets = targeting.resolve_targets([], NODES, all_nodes=True)
    assert [(t.label, t.host, t.type) for t in targets] == [
        ("node1", "node1", "cluster"), ("remote1", "10.0.0.2", "remote"), ("guest1", "10.0.0.4", "guest"),
        ("web-0", "10.0.0.9", "bundle")]
    assert [bool(t.skip) for t in targets] == [False, False, False, True]


def test_names_and_ssh_destinations_mix_and_duplicates_are_dropped():
    targets = targeting.resolve_targets(["remote1", "admin@10.0.0.7:2200", "10.0.0.2", "unknown-host"], NODES)
    assert [(t.label, t.host) for t in targets] == [
        ("remote1", "10.0.0.2"), ("admin@10.0.0.7:2200", "admin@10.0.0.7:2200"), ("unknown-host", "unknown-host")]


def test_invalid_destination_is_a_one_line_error():
    with pytest.raises(RemotectlError, match="invalid"):
        targeting.resolve_targets(["-oProxyCommand=evil"], None)


def test_load_targets_falls_back_to_ssh_hosts_when_the_cluster_cannot_be_asked():
    def broken():
        raise RemotectlError("no cluster to talk to")

    reporter = Reporter()
    targets = targeting.load_targets(["remote1"], all_nodes=False, cluster_factory=broken, reporter=reporter)
    assert targets[0].host == "remote1" and "no cluster" in reporter.reports[0].message
    with pytest.raises(RemotectlError, match="--all needs"):
        targeting.load_targets([], all_nodes=True, cluster_factory=broken, reporter=Reporter())
    # an explicit destination never asks the cluster
    assert targeting.load_targets(["root@h:22"], all_nodes=False, cluster_factory=broken, reporter=Reporter())


# -- push ------------------------------------------------------------------------------------------------------------
def make_hosts(*names, key=KEY_B, **kwargs):
    hosts = {}
    for name in names:
        host = FakeHost(name, **kwargs)
        if key is not None:
            host.put(model.DEFAULT_KEY_PATH, key)
        hosts[name] = host
    return hosts


def test_push_writes_backs_up_then_reports_unchanged():
    hosts = make_hosts("a", "b")
    targets = [target("a"), target("b")]
    result = actions.push_key(targets, factory(hosts), KEY_A, actions.PushOptions(stamp="STAMP"))
    assert [n.status for n in result.nodes] == ["written", "written"]
    for host in hosts.values():
        assert host.data(model.DEFAULT_KEY_PATH) == KEY_A
        assert host.files[model.DEFAULT_KEY_PATH][1:] == [0o400, "hacluster", "haclient"]
        backup = model.DEFAULT_KEY_PATH + ".bak-STAMP-" + model.fingerprint(KEY_B).split(":")[1][:12]
        assert host.data(backup) == KEY_B
    node_json = result.to_json()["nodes"][0]
    assert {"node", "ok", "fingerprint", "mode", "owner", "group", "path", "status"} <= set(node_json)
    assert node_json["mode"] == "0400" and node_json["fingerprint"] == model.fingerprint(KEY_A)
    assert node_json["previous_fingerprint"] == model.fingerprint(KEY_B)
    again = actions.push_key(targets, factory(hosts), KEY_A, actions.PushOptions(stamp="STAMP2"))
    assert [n.status for n in again.nodes] == ["unchanged", "unchanged"]
    assert per_node_exit(again.nodes) == ExitCode.OK
    assert not [path for path in hosts["a"].files if ".bak-STAMP2" in path]
    assert_no_key_anywhere(hosts, result.to_json(), again.to_json())


def test_push_no_backup_and_dry_run():
    hosts = make_hosts("a")
    dry = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions(dry_run=True))
    assert dry.nodes[0].status == "would-write" and hosts["a"].data(model.DEFAULT_KEY_PATH) == KEY_B
    actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions(backup=False))
    assert list(hosts["a"].files) == [model.DEFAULT_KEY_PATH]


def test_push_same_key_with_wrong_mode_is_fixed_without_backup():
    hosts = make_hosts("a", key=KEY_A)
    hosts["a"].files[model.DEFAULT_KEY_PATH][1] = 0o644
    result = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions(stamp="S"))
    assert result.nodes[0].status == "written" and "fixing" in result.nodes[0].message
    assert hosts["a"].files[model.DEFAULT_KEY_PATH][1] == 0o400
    assert len(hosts["a"].files) == 1


def test_push_partial_and_total_failure_exit_codes():
    hosts = make_hosts("a", "b", "c")
    hosts["b"].unreachable = True
    result = actions.push_key([target(n) for n in "abc"], factory(hosts), KEY_A, actions.PushOptions())
    assert [n.status for n in result.nodes] == ["written", "failed", "written"]
    assert result.nodes[1].error == "cannot connect: Connection refused"
    assert per_node_exit(result.nodes) == ExitCode.PARTIAL
    for host in hosts.values():
        host.unreachable = True
    assert per_node_exit(actions.push_key([target(n) for n in "abc"], factory(hosts), KEY_A,
                                                 actions.PushOptions()).nodes) == ExitCode.FAILURE


def test_push_leaves_a_key_that_changed_after_it_looked_and_says_so():
    """The compare-and-swap: the key is replaced between push's probe and its write (a newer push got there
    first); this push must not put its key over that one."""
    hosts = make_hosts("a", "b")
    newer = bytes(range(1, 256)) + b"\0"
    hosts["a"].before_write = lambda host: host.put(model.DEFAULT_KEY_PATH, newer, 0o400, "hacluster", "haclient")
    result = actions.push_key([target("a"), target("b")], factory(hosts), KEY_A, actions.PushOptions())
    a, b = result.nodes
    assert (a.status, a.ok, b.status) == ("changed-underneath", False, "written")
    assert hosts["a"].data(model.DEFAULT_KEY_PATH) == newer and hosts["b"].data(model.DEFAULT_KEY_PATH) == KEY_A
    assert a.previous_fingerprint == model.fingerprint(KEY_B) and a.fingerprint == model.fingerprint(newer)
    assert model.fingerprint(newer) in a.error and not a.changed
    assert [(r.code, r.node, r.severity) for r in result.reports] == [("key-changed-underneath", "a",
                                                                       Severity.ERROR)]
    assert per_node_exit(result.nodes) == ExitCode.PARTIAL
    gone = make_hosts("c")
    gone["c"].before_write = lambda host: host.files.pop(model.DEFAULT_KEY_PATH)
    only = actions.push_key([target("c")], factory(gone), KEY_A, actions.PushOptions())
    assert only.nodes[0].status == "changed-underneath" and only.nodes[0].fingerprint is None
    assert gone["c"].data(model.DEFAULT_KEY_PATH) is None and per_node_exit(only.nodes) == ExitCode.FAILURE


def test_a_malformed_cib_address_fails_that_node_alone_in_push_verify_and_rotate():
    nodes = [node("node1", "cluster"), node("remote1", "remote", "10.0.0.2"), node("bad", "remote", "bad host"),
             node("dash", "remote", "-oProxyCommand=id"), node("port", "remote", "root@h:x")]
    targets = targeting.resolve_targets([], nodes, all_nodes=True)
    assert [t.label for t in targets if t.error] == ["bad", "dash", "port"]
    assert "'bad host'" in targets[2].error and "not a host name or IP address" in targets[2].error
    hosts = make_hosts("node1", "10.0.0.2")

    def runner_factory(destination):
        assert destination in hosts, f"a runner was asked for {destination!r}"
        return hosts[destination]

    pushed = actions.push_key(targets, runner_factory, KEY_A, actions.PushOptions())
    assert [n.status for n in pushed.nodes] == ["written", "written", "failed", "failed", "failed"]
    assert pushed.nodes[2].error.startswith("cannot reach it over SSH: its address in the CIB, 'bad host'")
    assert per_node_exit(pushed.nodes) == ExitCode.PARTIAL
    verified = actions.verify_keys(targets, runner_factory)
    assert [n.ok for n in verified.nodes] == [True, True, False, False, False]
    assert verified.exit_code() == ExitCode.PARTIAL
    rotated = actions.rotate_key(targets, runner_factory)
    assert not rotated.ok and hosts["node1"].data(model.DEFAULT_KEY_PATH) == KEY_A


def test_ctrl_c_during_a_push_says_which_nodes_were_written_and_starts_no_more_writes():
    import signal
    import threading

    hosts = make_hosts("a", "b", "c")
    release = threading.Event()
    hosts["b"].before_write = lambda host: release.wait(10)  # b's write is under way when Ctrl-C comes
    closed = []
    for host in hosts.values():
        host.close = lambda host=host: closed.append(host.name)
    done = []

    def on_done(outcome):
        done.append(outcome.item.label)
        if outcome.item.label == "a":
            raise KeyboardInterrupt

    hosts["c"].unreachable = True  # c starts when a is done: it fails, or is cut off before it could write
    previous = signal.getsignal(signal.SIGINT)
    try:
        result = actions.push_key([target("a"), target("b"), target("c")], factory(hosts), KEY_A,
                                  actions.PushOptions(), workers=2, on_done=on_done)
    finally:
        release.set()
        signal.signal(signal.SIGINT, previous)
    assert result.interrupted and done == ["a"]
    statuses = [n.status for n in result.nodes]
    assert statuses[:2] == ["written", "unknown"] and statuses[2] in ("not-written", "failed")
    assert sorted(closed) == ["a", "b", "c"]
    assert [r.code for r in result.reports] == ["interrupted"]
    assert result.to_json()["interrupted"] is True


def test_push_detects_a_file_that_is_not_what_was_written():
    hosts = make_hosts("a")
    hosts["a"].tamper_after_write = True
    result = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions())
    assert result.nodes[0].status == "failed" and "after writing" in result.nodes[0].error


def test_push_honours_pcmk_authkey_location_unless_path_is_given():
    hosts = make_hosts("a", env={"/etc/default/pacemaker": "PCMK_authkey_location=/srv/key\n"})
    result = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions())
    assert result.nodes[0].path == "/srv/key" and hosts["a"].data("/srv/key") == KEY_A
    assert "PCMK_authkey_location" in result.nodes[0].message
    actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions(path="/t/key"))
    assert hosts["a"].data("/t/key") == KEY_A


def test_push_without_hacluster_account_keeps_root_and_says_so():
    hosts = make_hosts("a", account=False)
    result = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions())
    assert hosts["a"].files[model.DEFAULT_KEY_PATH][2:] == ["root", "root"]
    assert "no hacluster user" in result.nodes[0].message


def test_push_refuses_an_empty_or_tiny_key():
    with pytest.raises(RemotectlError, match="empty"):
        actions.push_key([target("a")], factory(make_hosts("a")), b"", actions.PushOptions())
    with pytest.raises(RemotectlError, match="at least 16"):
        actions.push_key([target("a")], factory(make_hosts("a")), b"short", actions.PushOptions())


# -- verify ----------------------------------------------------------------------------------------------------------
def test_verify_finds_one_byte_difference_and_world_readable():
    hosts = make_hosts("a", "b", "c", "d", key=KEY_A)
    hosts["b"].put(model.DEFAULT_KEY_PATH, KEY_A[:-1] + b"\x00")
    hosts["c"].files[model.DEFAULT_KEY_PATH][1] = 0o644
    result = actions.verify_keys([target(n) for n in "abcd"], factory(hosts))
    doc = result.to_json()
    assert doc["consistent"] is False and doc["differing"] == ["b"]
    by = {n["node"]: n for n in doc["nodes"]}
    assert by["b"]["matches"] is False and "differs" in [p["code"] for p in by["b"]["problems"]]
    assert by["c"]["matches"] is True and [p["code"] for p in by["c"]["problems"]] == ["world-readable"]
    assert by["a"]["ok"] and by["d"]["ok"] and not by["b"]["ok"] and not by["c"]["ok"]
    assert result.exit_code() == ExitCode.FAILURE
    assert_no_key_anywhere(hosts, doc)


def test_verify_against_key_and_all_good():
    hosts = make_hosts("a", "b", key=KEY_A)
    for host in hosts.values():
        host.files[model.DEFAULT_KEY_PATH][1:] = [0o400, "hacluster", "haclient"]
    good = actions.verify_keys([target("a"), target("b")], factory(hosts), key=KEY_A)
    assert good.ok and good.exit_code() == ExitCode.OK and good.to_json()["reference"]["source"] == "key"
    bad = actions.verify_keys([target("a"), target("b")], factory(hosts), key=KEY_B)
    assert not bad.ok and bad.verdict.differing == ["a", "b"]


def test_verify_unreachable_is_partial_when_the_rest_agree():
    hosts = make_hosts("a", "b", "c", key=KEY_A)
    hosts["c"].unreachable = True
    result = actions.verify_keys([target(n) for n in "abc"], factory(hosts))
    assert result.exit_code() == ExitCode.PARTIAL and result.to_json()["unchecked"] == ["c"]


def test_verify_reports_corosync_fallback_and_unreadable_by_hacluster():
    hosts = make_hosts("a", "b", key=None)
    hosts["a"].put(model.COROSYNC_KEY_PATH, KEY_A)
    hosts["b"].put(model.DEFAULT_KEY_PATH, KEY_A, mode=0o400, owner="root", group="root")
    result = actions.verify_keys([target("a"), target("b")], factory(hosts))
    by = {n.node: n for n in result.nodes}
    assert by["a"].path == model.COROSYNC_KEY_PATH and by["a"].fingerprint == model.fingerprint(KEY_A)
    assert "corosync-fallback" in [p.code for p in by["a"].problems]
    assert [p.code for p in by["b"].problems] == ["unreadable-by-hacluster"]
    assert result.verdict.consistent and not result.ok


# -- rotate ----------------------------------------------------------------------------------------------------------
def test_rotate_pushes_one_new_key_everywhere_with_backups():
    hosts = make_hosts("a", "b", "c")
    result = actions.rotate_key([target(n) for n in "abc"], factory(hosts))
    assert result.ok and result.exit_code() == ExitCode.OK
    new = {host.data(model.DEFAULT_KEY_PATH) for host in hosts.values()}
    assert len(new) == 1 and KEY_B not in new and len(new.pop()) == 256
    for host in hosts.values():
        backups = [p for p in host.files if ".bak-" in p]
        assert len(backups) == 1 and host.data(backups[0]) == KEY_B
    doc = result.to_json()
    assert doc["consistent"] is True and doc["fingerprint"].startswith("sha256:")
    assert all(r["status"] == "not-needed" for r in doc["restarts"])
    new_key = hosts["a"].data(model.DEFAULT_KEY_PATH)
    assert_no_key_anywhere(hosts, doc, keys=(new_key, KEY_B))


def test_rotate_rolls_back_every_changed_node_when_one_fails():
    hosts = make_hosts("a", "b", "c")
    hosts["b"].fail_write = True
    result = actions.rotate_key([target(n) for n in "abc"], factory(hosts))
    assert not result.ok and result.rolled_back and result.exit_code() == ExitCode.PARTIAL
    for host in hosts.values():
        assert host.data(model.DEFAULT_KEY_PATH) == KEY_B
    assert [n.status for n in result.nodes] == ["rolled-back", "failed", "rolled-back"]


def test_rotate_rollback_of_a_node_that_had_no_key_removes_it():
    hosts = make_hosts("a", "b")
    del hosts["a"].files[model.DEFAULT_KEY_PATH]
    hosts["b"].fail_write = True
    actions.rotate_key([target("a"), target("b")], factory(hosts))
    assert model.DEFAULT_KEY_PATH not in hosts["a"].files


def test_rotate_failed_rollback_is_loud():
    hosts = make_hosts("a", "b")
    hosts["b"].fail_write = True
    hosts["a"].fail_restore = True
    result = actions.rotate_key([target("a"), target("b")], factory(hosts))
    assert not result.rolled_back and "ROLLBACK FAILED" in result.nodes[0].error
    assert any("different keys" in r.message for r in result.reports)


def test_rotate_changes_nothing_when_a_node_is_unreachable_and_dry_run_changes_nothing():
    hosts = make_hosts("a", "b")
    hosts["b"].unreachable = True
    result = actions.rotate_key([target("a"), target("b")], factory(hosts))
    assert result.exit_code() == ExitCode.FAILURE and hosts["a"].data(model.DEFAULT_KEY_PATH) == KEY_B
    hosts["b"].unreachable = False
    dry = actions.rotate_key([target("a"), target("b")], factory(hosts), dry_run=True)
    assert dry.ok and dry.fingerprint is None and all(h.data(model.DEFAULT_KEY_PATH) == KEY_B
                                                      for h in hosts.values())
    assert any("push it to 2 node(s)" in line for line in dry.plan)


def test_rotate_rolls_back_when_verification_disagrees():
    hosts = make_hosts("a", "b")
    hosts["b"].tamper_after_write = True
    result = actions.rotate_key([target("a"), target("b")], factory(hosts))
    assert result.rolled_back and hosts["a"].data(model.DEFAULT_KEY_PATH) == KEY_B
    assert hosts["b"].data(model.DEFAULT_KEY_PATH) == KEY_B


# -- restarts ----------------------------------------------------------------------------------------------------------
class FakeRestarter(actions.Restarter):
    """Records what the procedure asks for; `offline_after`: nodes that never come back, `verdicts`: what the safe
    probe says per address (default match)."""

    def __init__(self, maintenance=None, offline_after=(), verdicts=None, node_maintenance=None):
        super().__init__(lambda d: None, None, online_timeout=1, poll=0)
        self.log = []
        self.maintenance = maintenance
        self.node_maintenance = dict(node_maintenance or {})
        self.offline_after = set(offline_after)
        self.verdicts = dict(verdicts or {})

    def run_on(self, destination, argv, timeout=None):
        self.log.append(("run", destination, " ".join(argv)))
        return True, "ok"

    def cluster_tool(self, argv):
        self.log.append(("cluster", " ".join(argv)))
        return True, "ok"

    def query(self, argv):
        node = next((a.split("=", 1)[1] for a in argv if a.startswith("--node=")), None)
        return self.node_maintenance.get(node)

    def maintenance_mode(self):
        return self.maintenance

    def wait_rejoined(self, target):
        self.log.append(("rejoined", target.label))
        return target.label not in self.offline_after

    def wait_listening(self, target):
        self.log.append(("listening", target.label))
        return target.label not in self.offline_after

    def wait_online(self, names):
        self.log.append(("wait", tuple(names)))
        missing = [n for n in names if n in self.offline_after]
        return not missing, missing

    def placement(self):
        return {"dummy1": ("r1",)}

    def probe(self, addresses, key):
        return [self.verdicts.get(host, "match") for host, _port in addresses]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """rotate --restart keeps its journal in remotectl's cache: a fresh one per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


class Interrupted(FakeRestarter):
    """Ctrl-C during the restart of `at`."""

    def __init__(self, at, **kwargs):
        super().__init__(**kwargs)
        self.at = at

    def run_on(self, destination, argv, timeout=None):
        if destination == self.at:
            raise KeyboardInterrupt
        return super().run_on(destination, argv, timeout)


def test_interrupted_restart_stays_in_maintenance_and_resume_finishes_it():
    hosts = make_hosts("n1", "n2", "r1", version="Pacemaker 3.0.3")
    targets = [target("n1", "cluster"), target("n2", "cluster"), target("r1", "remote")]
    first = Interrupted("n2", maintenance=None, node_maintenance={"r1": "false"})
    with pytest.raises(KeyboardInterrupt):
        actions.rotate_key(targets, factory(hosts), restart=True, restarter=first)
    assert MM_OFF not in first.log  # ending maintenance with n1 on the new key and n2 on the old would break r1
    new = hosts["n1"].data(model.DEFAULT_KEY_PATH)
    assert new != KEY_B and all(h.data(model.DEFAULT_KEY_PATH) == new for h in hosts.values())
    with pytest.raises(RefusedError, match="--resume"):
        actions.rotate_key(targets, factory(hosts), restart=True, restarter=FakeRestarter())
    # the cluster now shows what the interrupted run set; --resume puts back what was there before it
    second = FakeRestarter(maintenance="true", node_maintenance={"r1": "true"})
    result = actions.rotate_key(targets, factory(hosts), resume=True, restarter=second)
    assert result.ok and result.fingerprint == model.fingerprint(new)
    assert [e for e in second.log if e[0] == "run"] == [("run", "n2", "systemctl restart pacemaker"),
                                                        ("run", "r1", "systemctl restart pacemaker_remote")]
    assert MM_OFF in second.log
    assert ("cluster", "crm_attribute --node=r1 --name=maintenance --update=false --lifetime=forever") in second.log
    assert {o.node: o.status for o in result.restarts if o.kind == "cluster"} == {"n1": "done", "n2": "done"}
    with pytest.raises(RefusedError, match="nothing to resume"):
        actions.rotate_key(targets, factory(hosts), resume=True, restarter=FakeRestarter())
    assert_no_key_anywhere(hosts, result.to_json(), keys=(new, KEY_B))


MM_ON = ("cluster", "crm_attribute --type crm_config --name maintenance-mode --update true")
MM_OFF = ("cluster", "crm_attribute --type crm_config --name maintenance-mode --delete")


def test_restart_procedure_cluster_nodes_first_then_remoted_under_maintenance():
    """The order measured on 3.0.3: no connection between an old and a new key, nothing fenced or moved."""
    steps = model.plan_restarts([("r1", "remote", (3, 0, 2)), ("node1", "cluster", (3, 0, 2)),
                                 ("g1", "guest", (3, 0, 3)), ("node2", "cluster", (3, 0, 2)),
                                 ("r2", "remote", (2, 1, 5))])
    targets = {n: target(n, t, host=f"{n}.example") for n, t in
               (("node1", "cluster"), ("node2", "cluster"), ("r1", "remote"), ("r2", "remote"), ("g1", "guest"))}
    restarter = FakeRestarter(node_maintenance={"g1": "false"})
    outcomes = actions.run_restarts(steps, targets, restarter, Reporter())
    assert restarter.log == [
        ("cluster", "crm_attribute --node=r1 --name=maintenance --update=true --lifetime=forever"),
        ("cluster", "crm_attribute --node=g1 --name=maintenance --update=true --lifetime=forever"),
        MM_ON,
        ("run", "node1.example", "systemctl restart pacemaker"), ("rejoined", "node1"),
        ("run", "node2.example", "systemctl restart pacemaker"), ("rejoined", "node2"),
        ("run", "r1.example", "systemctl restart pacemaker_remote"), ("listening", "r1"),
        ("run", "g1.example", "systemctl restart pacemaker_remote"), ("listening", "g1"),
        MM_OFF,
        ("wait", ("node1", "node2", "r1", "g1")),
        ("cluster", "crm_attribute --node=r1 --name=maintenance --delete --lifetime=forever"),
        ("cluster", "crm_attribute --node=g1 --name=maintenance --update=false --lifetime=forever"),
    ]
    restarts = {o.node: o.status for o in outcomes if o.kind in ("cluster", "remote", "guest")}
    assert restarts == {"r2": "not-needed", "r1": "done", "g1": "done", "node1": "done", "node2": "done"}
    assert not any(o.status == "failed" for o in outcomes)


def test_restart_stops_at_a_cluster_node_that_does_not_come_back_and_restores_maintenance():
    steps = model.plan_restarts([("node1", "cluster", (3, 0, 2)), ("node2", "cluster", (3, 0, 2)),
                                 ("r1", "remote", (3, 0, 2))])
    targets = {n: target(n, t) for n, t in (("node1", "cluster"), ("node2", "cluster"), ("r1", "remote"))}
    restarter = FakeRestarter(maintenance="true", offline_after={"node1"})
    reporter = Reporter()
    outcomes = actions.run_restarts(steps, targets, restarter, reporter)
    assert ("run", "node2", "systemctl restart pacemaker") not in restarter.log
    assert ("run", "r1", "systemctl restart pacemaker_remote") not in restarter.log
    assert ("cluster", "crm_attribute --type crm_config --name maintenance-mode --update true") in restarter.log
    assert restarter.log[-1] == ("cluster", "crm_attribute --node=r1 --name=maintenance --delete --lifetime=forever")
    assert {o.node: o.status for o in outcomes if o.kind in ("cluster", "remote")} == {
        "node1": "failed", "node2": "skipped", "r1": "skipped"}
    assert any(report.severity is Severity.ERROR for report in reporter.reports)


def test_no_restart_needed_on_2_1_does_nothing_unless_asked():
    nodes = [("node1", "cluster", (2, 1, 5)), ("r1", "remote", (2, 1, 5))]
    restarter = FakeRestarter()
    outcomes = actions.run_restarts(model.plan_restarts(nodes), {}, restarter, Reporter())
    assert restarter.log == [] and all(o.status == "not-needed" for o in outcomes)
    steps = model.plan_restarts(nodes, always=True)
    assert all(s.needed and "asked for" in s.reason for s in steps)
    targets = {"node1": target("node1", "cluster"), "r1": target("r1", "remote")}
    actions.run_restarts(steps, targets, restarter, Reporter())
    assert ("run", "node1", "systemctl restart pacemaker") in restarter.log


def test_rotate_with_restart_uses_the_restarter_only_where_needed_and_probes_every_remoted():
    hosts = make_hosts("a", "b", version="Pacemaker 3.0.2")
    hosts["b"].version = "Pacemaker 2.1.9"
    restarter = FakeRestarter()
    result = actions.rotate_key([target("a", "remote"), target("b", "remote")],
                                factory(hosts), restart=True, restarter=restarter)
    assert result.ok
    assert ("run", "a", "systemctl restart pacemaker_remote") in restarter.log
    assert not any(entry[:2] == ("run", "b") for entry in restarter.log)
    assert [(p.node, p.verdict) for p in result.probes] == [("a", "match"), ("b", "match")]
    assert list(result.to_json()["probes"][0]) == ["node", "address", "verdict"]


def test_rotate_restart_rolls_back_and_restarts_again_when_a_node_does_not_come_back():
    hosts = make_hosts("n1", "r1", version="Pacemaker 3.0.3")
    restarter = FakeRestarter(offline_after={"r1"})
    result = actions.rotate_key([target("n1", "cluster"), target("r1", "remote")], factory(hosts), restart=True,
                                restarter=restarter)
    assert not result.ok and result.rolled_back and result.exit_code() == 3
    assert hosts["n1"].data(model.DEFAULT_KEY_PATH) == KEY_B and hosts["r1"].data(model.DEFAULT_KEY_PATH) == KEY_B
    runs = [entry for entry in restarter.log if entry[0] == "run"]
    assert runs == [("run", "n1", "systemctl restart pacemaker"),
                    ("run", "r1", "systemctl restart pacemaker_remote")] * 2
    assert "restart-rollback" in [r.code for r in result.reports]


def test_rotate_mismatch_in_the_safe_probe_is_a_failure():
    hosts = make_hosts("r1", version="Pacemaker 3.0.3")
    result = actions.rotate_key([target("r1", "remote")], factory(hosts), restart=True,
                                restarter=FakeRestarter(verdicts={"r1": "mismatch"}))
    assert not result.ok and [p.verdict for p in result.probes] == ["mismatch"]
    assert "new-key-not-accepted" in [r.code for r in result.reports]


def test_restart_refuses_bundle_replicas_on_3_0_2():
    hosts = make_hosts("n1", version="Pacemaker 3.0.3")
    bundle = targeting.Target(label="b-0", host="b-0", type="bundle", skip=targeting.BUNDLE_SKIP)
    with pytest.raises(RefusedError, match="bundle replica"):
        actions.rotate_key([target("n1", "cluster"), bundle], factory(hosts), restart=True,
                           restarter=FakeRestarter())
    assert hosts["n1"].data(model.DEFAULT_KEY_PATH) == KEY_B
    result = actions.rotate_key([target("n1", "cluster"), bundle], factory(hosts), dry_run=True)
    assert result.ok


def test_round_trips_per_node():
    hosts = make_hosts("a")
    pushed = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions())
    assert len(hosts["a"].commands) == 1  # probe and atomic write (which reads the installed file back) in one
    assert pushed.nodes[0].status == "written"
    hosts["a"].commands.clear()
    again = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions())
    assert len(hosts["a"].commands) == 1 and again.nodes[0].status == "unchanged"
    hosts["a"].commands.clear()
    actions.verify_keys([target("a")], factory(hosts))
    assert len(hosts["a"].commands) == 1
    moved = make_hosts("b", env={"/etc/default/pacemaker": "PCMK_authkey_location=/srv/key\n"})
    moved["b"].put("/srv/key", KEY_A)
    actions.verify_keys([target("b")], factory(moved))
    assert len(moved["b"].commands) == 2  # the configured location was not among the guessed paths
    moved["b"].commands.clear()
    pushed = actions.push_key([target("b")], factory(moved), KEY_B, actions.PushOptions())
    assert pushed.nodes[0].status == "written" and moved["b"].data("/srv/key") == KEY_B
    assert len(moved["b"].commands) == 3  # the node defers to this push: probe, the moved key's state, write
    rotated = make_hosts("c")
    actions.rotate_key([target("c")], factory(rotated))
    assert len(rotated["c"].commands) == 3  # preflight probe (reused by the push), atomic write, verify


def test_rotate_shows_the_plan_before_changing_anything():
    hosts = make_hosts("a", "b")
    seen = []

    def on_plan(lines):
        seen.append([host.data(model.DEFAULT_KEY_PATH) for host in hosts.values()])

    actions.rotate_key([target("a"), target("b")], factory(hosts), on_plan=on_plan)
    assert seen == [[KEY_B, KEY_B]]
    assert hosts["a"].data(model.DEFAULT_KEY_PATH) != KEY_B


# -- waiting for nodes, with a fake clock ------------------------------------------------------------------------------
def crm_mon_nodes(**online):
    """crm_mon --output-as=xml with one node per keyword (name=online?)."""
    nodes = "".join(f'<node name="{name}" id="{name}" online="{str(up).lower()}" standby="false" '
                    'maintenance="false" pending="false" unclean="false" shutdown="false" resources_running="0" '
                    'type="member"/>' for name, up in online.items())
    return f"<pacemaker-result><nodes>{nodes}</nodes><resources/></pacemaker-result>"


def restarter_on(cluster, clock, timeout=10.0, poll=2.0):
    return actions.Restarter(lambda d: None, lambda: cluster, online_timeout=timeout, poll=poll, clock=clock,
                             sleep=clock.sleep)


def test_wait_online_polls_crm_mon_until_every_node_is_online():
    clock = FakeClock()
    cluster = scripted_cluster(crm_mon=[crm_mon_nodes(node1=False, r1=False), crm_mon_nodes(node1=True, r1=False),
                                        crm_mon_nodes(node1=True, r1=True)])
    assert restarter_on(cluster, clock).wait_online(["node1", "r1"]) == (True, [])
    assert len(cluster.runner.calls) == 3 and clock.now == 4.0


def test_wait_online_gives_up_at_the_deadline_and_names_the_nodes_still_offline():
    clock = FakeClock()
    cluster = scripted_cluster(crm_mon=[crm_mon_nodes(node1=True, r1=False)])
    assert restarter_on(cluster, clock, timeout=5.0).wait_online(["node1", "r1", "gone"]) == (False, ["r1", "gone"])
    assert clock.now >= 5.0 and len(cluster.runner.calls) == 4  # at 0, 2, 4 and 6 s


def test_wait_online_counts_an_unreadable_crm_mon_as_offline():
    def unreachable():
        raise RemotectlError("crm_mon: connection to the CIB manager failed")

    clock = FakeClock()
    restarter = actions.Restarter(lambda d: None, unreachable, online_timeout=1.0, poll=1.0, clock=clock,
                                  sleep=clock.sleep)
    assert restarter.wait_online(["node1"]) == (False, ["node1"])


# -- reports: failures live in their rows, every report has a code ---------------------------------------------------
def test_a_failed_push_is_in_its_row_and_not_again_in_the_reports():
    hosts = make_hosts("a", "b")
    hosts["b"].unreachable = True
    result = actions.push_key([target("a"), target("b")], factory(hosts), KEY_A, actions.PushOptions())
    assert result.nodes[1].status == "failed" and result.nodes[1].detail == "cannot connect: Connection refused"
    assert result.reports == []


def test_a_failed_rotation_names_each_failure_once():
    hosts = make_hosts("a", "b")
    hosts["b"].fail_write = True
    hosts["a"].fail_restore = True
    result = actions.rotate_key([target("a"), target("b")], factory(hosts))
    assert "mktemp" in result.nodes[1].error
    assert [r.code for r in result.reports] == ["rollback-failed"]


def test_reports_carry_codes():
    hosts = make_hosts("a", "b", "c", key=KEY_A)
    hosts["b"].put(model.DEFAULT_KEY_PATH, KEY_B)
    hosts["c"].unreachable = True
    result = actions.verify_keys([target(n) for n in "abc"], factory(hosts))
    assert [(r.code, r.node) for r in result.reports] == [("no-majority-key", None), ("node-unreachable", "c")]
    hosts = make_hosts("d", version="Pacemaker 3.0.2")
    assert [r.code for r in actions.rotate_key([target("d")], factory(hosts), dry_run=True).reports] == [
        "restart-needed"]


# -- the JSON contract: keys and their order -----------------------------------------------------------------------
PUSH_NODE_KEYS = ["node", "target", "type", "ok", "status", "path", "fingerprint", "size", "mode", "owner", "group",
                  "previous_fingerprint", "backup", "removed_temp_files", "message", "error"]
VERIFY_KEYS = ["consistent", "ok", "reference", "summary", "differing", "unchecked", "groups", "nodes"]
VERIFY_NODE_KEYS = ["node", "target", "type", "ok", "reachable", "fingerprint", "matches", "size", "mode", "owner",
                    "group", "path", "configured_path", "path_source", "hacluster_can_read", "pacemaker_version",
                    "problems", "error"]
ROTATE_KEYS = ["dry_run", "ok", "fingerprint", "size", "plan", "nodes", "restarts", "verify", "probes",
               "consistent", "rolled_back", "interrupted"]


def test_a_push_and_a_rotation_in_the_same_millisecond_keep_both_backups():
    # regression: the backup name was only the push's millisecond stamp, so a rotation right after a push (same
    # stamp) found the push's backup in its way, failed and rolled back (seen as a flaky test)
    hosts = make_hosts("a")
    actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions(stamp="SAME"))
    again = actions.push_key([target("a")], factory(hosts), KEY_B, actions.PushOptions(stamp="SAME"))
    assert [n.status for n in again.nodes] == ["written"], again.nodes[0].error
    assert len([path for path in hosts["a"].files if ".bak-SAME-" in path]) == 2


def test_json_keys_and_their_order():
    hosts = make_hosts("a")
    pushed = actions.push_key([target("a")], factory(hosts), KEY_A, actions.PushOptions()).to_json()
    assert list(pushed) == ["dry_run", "fingerprint", "size", "nodes", "interrupted", "summary"]
    assert list(pushed["nodes"][0]) == PUSH_NODE_KEYS and pushed["summary"] == {"written": 1}
    verified = actions.verify_keys([target("a")], factory(hosts)).to_json()
    assert list(verified) == VERIFY_KEYS and list(verified["nodes"][0]) == VERIFY_NODE_KEYS
    assert list(verified["reference"]) == ["fingerprint", "source", "key"]
    rotated = actions.rotate_key([target("a")], factory(hosts)).to_json()
    assert list(rotated) == ROTATE_KEYS and list(rotated["verify"]) == VERIFY_KEYS
    assert list(rotated["restarts"][0]) == ["node", "kind", "command", "needed", "status", "message"]
    assert list(actions.fingerprint_bytes(KEY_A).to_json()) == ["path", "fingerprint", "size", "mode", "owner",
                                                                "group"]


def test_mixed_versions_let_the_old_cluster_nodes_cache_run_out_before_maintenance_ends():
    """A 2.1 cluster with a 3.0.3 remote: only the remote is restarted; the 2.1 controllers may hold the old key
    for up to 60 s, so maintenance (and with it the new connection) waits for that."""
    steps = model.plan_restarts([("n1", "cluster", (2, 1, 5)), ("r1", "remote", (3, 0, 3))])
    clock = FakeClock()
    restarter = FakeRestarter()
    restarter.clock, restarter.sleep = clock, clock.sleep
    rows = actions.run_restarts(steps, {"n1": target("n1", "cluster"), "r1": target("r1", "remote")}, restarter,
                                Reporter())
    assert clock() >= model.CACHE_SECONDS
    assert [e for e in restarter.log if e[0] == "run"] == [("run", "r1", "systemctl restart pacemaker_remote")]
    assert any(r.kind == "wait" and "60 s" in r.message for r in rows)


def test_fan_out_interrupted_returns_what_finished_and_never_starts_the_rest():
    import signal
    import threading
    import time

    from remotectl.transport.fanout import FanOutInterrupted, fan_out

    gate = threading.Event()
    started = []

    def work(item):
        started.append(item)
        if item in (1, 2):  # both workers are busy until the interrupt
            gate.wait(10)
        return item

    def on_done(outcome):
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(FanOutInterrupted) as caught:
            fan_out(work, [0, 1, 2, 3], workers=2, on_done=on_done)
    finally:
        gate.set()
        signal.signal(signal.SIGINT, previous)
    outcomes = caught.value.outcomes
    assert outcomes[0].value == 0 and outcomes[1] is None and isinstance(caught.value, KeyboardInterrupt)
    deadline = time.monotonic() + 5
    while any(t.name == "remotectl-fan-out" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 3 not in started


def test_the_first_ctrl_c_makes_the_next_one_exit_at_once_before_anything_else_runs():
    """remotectl.cli.main's SIGINT handler swaps itself for the exit-now one before it raises, so a second Ctrl-C
    can never land as a KeyboardInterrupt in the middle of reporting the first (it used to: rc -SIGINT)."""
    import signal

    from remotectl import cli

    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, cli._interrupted)
        with pytest.raises(KeyboardInterrupt):
            cli._interrupted(signal.SIGINT, None)
        assert signal.getsignal(signal.SIGINT) is cli._interrupted_again
    finally:
        signal.signal(signal.SIGINT, previous)
