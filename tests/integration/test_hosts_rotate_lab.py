"""`authkey rotate --restart` for real on the hosts lab (LAB_PACEMAKER=2.1|3.0): every node ends on the new key
(safe probe `match` with it, `mismatch` with the old one), the cluster keeps quorum throughout (crm_mon sampled on
every cluster node while it runs), no node is fenced (nothing in the logs, no guest recovered: its container is not
booted again), no connection is refused a key or taken over, and every resource is where it was.

3.0.2+ reads the key once per daemon, so rotate restarts every daemon (cluster nodes first, then remoted, under
maintenance: remotectl/actions/authkey/restart.py says why); 2.1.5 re-reads it within 60 s and is not restarted.
Afterwards the lab's key is the new one (adopt_cluster_key), so the tests that follow use it."""

import os
import threading
import xml.etree.ElementTree as ET

import pytest

from tests.integration.test_hosts_commands_lab import reads_key_once
from tests.integration.test_hosts_lab import as_json, remotectl

pytestmark = pytest.mark.hosts_lab

# fencing (the scheduler's decision, the controller's request, fenced's), a key refused, a takeover, a lost connection;
# the logs, not stonith_admin --history: fenced keeps the history in memory, and rotate restarts it
BAD_LINES = ("will be fenced", "Requesting fencing", "wants to fence", "Key was rejected",
             "unexpected client takeover", "Lost connection to Pacemaker Remote")


class QuorumSampler:
    """crm_mon on every cluster node, once a second, in a thread. A sample counts when the node answering is a
    member itself (a node whose pacemaker is restarting answers nothing, or shows everyone unclean before it has
    joined): then it must see quorum and no unclean node."""

    def __init__(self, lab):
        self.lab = lab
        self.samples = []  # (node, with_quorum, [unclean nodes])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self, name):
        proc = self.lab.host_run(name, ["crm_mon", "--one-shot", "--output-as=xml"], check=False, timeout=15)
        if proc.returncode != 0:
            return
        root = ET.fromstring(proc.stdout)
        nodes = {n.get("name"): n.attrib for n in root.iter("node") if n.get("type")}
        me = nodes.get(name, {})
        dc = root.find("summary/current_dc")
        if me.get("online") != "true" or me.get("pending") == "true" or dc is None or dc.get("present") != "true":
            return
        unclean = sorted(n for n, attrs in nodes.items() if attrs.get("unclean") == "true")
        self.samples.append((name, dc.get("with_quorum") == "true", unclean))

    def run(self):
        while not self.stop.is_set():
            for name in self.lab.cluster_names:
                try:
                    self.sample(name)
                except Exception:  # a node in the middle of a restart: no sample
                    pass
            self.stop.wait(1.0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def placement(lab):
    return {rid: sorted(r["nodes"]) for rid, r in lab.crm_mon_resources().items() if r.get("active")}


def probe_verdicts(lab, key_path):
    proc = remotectl(lab, "check", "--all", "--json", "--key", key_path)
    return {r["target"]: r["verdict"] for r in as_json(proc)["results"]}


@pytest.fixture
def rotated(hosts_lab):
    """The lab as it was before; after the test, the lab's key is whatever the cluster nodes hold."""
    lab = hosts_lab
    lab.restore_baseline()
    lab.settle()
    yield lab
    lab.adopt_cluster_key()
    lab.restore_baseline()


# --restart-all restarts every daemon on 2.1 too (the same procedure); on an all-3.0 lab it is --restart, so it is
# run only where it differs (chosen when the tests are collected, from the version the lab will run).
OPTIONS = ["--restart"] + (["--restart-all"] if os.environ.get("LAB_PACEMAKER", "2.1") != "3.0" else [])


@pytest.mark.parametrize("option", OPTIONS)
def test_rotate_restart_keeps_the_cluster_up(rotated, tmp_path, option):
    lab = rotated
    versions = lab.pacemaker_versions()
    once = {n for n in lab.node_names if reads_key_once(versions[n])}
    old_key = tmp_path / "old-authkey"
    old_key.write_bytes(lab.authkey.read_bytes())
    old_key.chmod(0o600)
    before = placement(lab)
    boots = {name: lab.boots(name) for name in lab.node_names}
    mark = lab.log_mark()
    with QuorumSampler(lab) as sampler:
        proc = remotectl(lab, "authkey", "rotate", option, "--json", timeout=900)
    doc = as_json(proc)
    assert proc.returncode == 0 and doc["ok"] is True and doc["consistent"] is True, proc.stdout + proc.stderr
    assert doc["rolled_back"] is False

    keys = {name: (lab.node_etc_pacemaker(name) / "authkey").read_bytes() for name in lab.node_names}
    new = keys["node1"]
    assert set(keys.values()) == {new} and new != old_key.read_bytes()
    restarted = {r["node"] for r in doc["restarts"] if r["kind"] in ("cluster", "remote", "guest")
                 and r["status"] == "done"}
    if option == "--restart-all":
        assert restarted == set(lab.node_names), doc["restarts"]
    else:
        assert restarted == once, doc["restarts"]
        assert once or any("no restart needed" in line for line in doc["plan"]), doc["plan"]
    assert {p["node"]: p["verdict"] for p in doc["probes"]} == {n: "match" for n in lab.remote_names +
                                                                lab.guest_names}
    new_key = tmp_path / "new-authkey"
    new_key.write_bytes(new)
    new_key.chmod(0o600)
    assert set(probe_verdicts(lab, new_key).values()) == {"match"}
    assert set(probe_verdicts(lab, old_key).values()) == {"mismatch"}

    assert_cluster_undisturbed(lab, sampler, boots=boots, mark=mark, placed=before)


def assert_cluster_undisturbed(lab, sampler, *, boots, mark, placed):
    """What a procedure that restarts daemons under maintenance must leave: quorum on every crm_mon sample and no
    unclean node, no host rebooted and no guest recovered (`boots`), no fencing/takeover/refused-key line in the
    logs since `mark`, every resource where it was (`placed`), every node online, no fail count."""
    assert sampler.samples, "crm_mon never answered during the procedure"
    assert all(quorate for _node, quorate, _unclean in sampler.samples), sampler.samples
    assert not any(unclean for _node, _quorate, unclean in sampler.samples), sampler.samples
    assert {name: lab.boots(name) for name in lab.node_names} == boots  # no guest recovered, no host rebooted
    log = lab.log_since(mark)
    assert not [line for line in log.splitlines() if any(bad in line for bad in BAD_LINES)]
    lab.settle()
    assert placement(lab) == placed
    assert lab.nodes_online()
    assert not lab.fail_counts()
