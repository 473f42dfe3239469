"""`remotectl node add|drain|resume|remove` against the hosts lab over SSH (--cluster node1), on the Pacemaker
version of LAB_PACEMAKER. Each test leaves the spare hosts as it found them (node remove, faults cleared) and
checks that it did."""

import os
import random
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.integration.test_hosts_lab import REPO, as_json, remotectl

pytestmark = pytest.mark.hosts_lab

KILL_ROUNDS = int(os.environ.get("REMOTECTL_NODE_KILL_ROUNDS", "3"))


def host_facts(lab, host):
    """(is-enabled, is-active, rules of node add in nftables and in /etc/nftables.conf, key present) on the host
    itself."""
    out = lab.host_run(host, ["sh", "-c", "systemctl is-enabled pacemaker_remote; systemctl is-active pacemaker_remote;"
                              " nft list ruleset | grep -c remotectl-node-add; grep -c remotectl-node-add"
                              " /etc/nftables.conf; test -e /etc/pacemaker/authkey && echo key || echo nokey"],
                       check=False).stdout.split()
    return out[0], out[1], int(out[2]) + int(out[3]), out[4] == "key"


def in_cib(lab, name):
    cib = ET.fromstring(lab.cluster_run(["cibadmin", "--query"]).stdout)
    return (any(n.get("uname") == name for n in cib.iter("node")),
            any(s.get("uname") == name for s in cib.iter("node_state")),
            any(p.get("id") == name for p in cib.iter("primitive")))


def assert_pristine(lab, host):
    assert host not in lab.crm_mon_nodes()
    assert in_cib(lab, host) == (False, False, False)
    assert host_facts(lab, host) == ("disabled", "inactive", 0, False)


def fence_events(lab, node):
    """Every fencing event of node, the failed ones too (they are listed only with --verbose)."""
    out = lab.cluster_run(["stonith_admin", f"--history={node}", "--verbose", "--output-as=xml"],
                          check=False).stdout
    return len(ET.fromstring(out).findall(".//fence_event")) if out.strip().startswith("<") else 0


@pytest.fixture
def spare(hosts_lab):
    """spare1, pristine before and after (node remove, as an operator would, when a test failed half-way)."""
    lab = hosts_lab
    assert_pristine(lab, "spare1")
    yield lab
    lab.cluster_run(["cibadmin", "--delete", "--xml-text", '<primitive id="nl-dummy"/>'], check=False)
    lab.cluster_run(["cibadmin", "--delete", "--xml-text", '<rsc_location id="nl-dummy-on-spare1"/>'], check=False)
    proc = remotectl(lab, "node", "remove", "spare1", "--yes", "--remove-constraints")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_pristine(lab, "spare1")


def on_a_terminal(lab, answer, *args):
    """Run remotectl on a pseudo-terminal, answer its [y/N] question with answer; (exit status, all it wrote)."""
    import pty
    import select

    controller, terminal = pty.openpty()
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env.pop("REMOTECTL_CLUSTER", None)
    proc = subprocess.Popen([sys.executable, "-m", "remotectl", *lab.remotectl_ssh_options, "--cluster", "node1",
                             *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=str(REPO),
                            close_fds=True)
    os.close(terminal)
    seen, answered = b"", False
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 180)
            assert ready, f"remotectl wrote nothing for 180 s; so far: {seen!r}"
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(controller, answer + b"\n")
                answered = True
        return proc.wait(timeout=60), seen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)


def test_add_on_a_terminal_shows_the_plan_then_asks(spare):
    """Without --yes: the checks and the plan first, then the question; no changes nothing, yes applies it."""
    lab = spare
    status, text = on_a_terminal(lab, b"n", "node", "add", "spare1")
    assert status == 4, text
    assert "[ok] preflight:" in text and "[plan] key:" in text and "[plan] resource:" in text, text
    assert text.index("[plan] resource:") < text.index("Apply the steps marked [plan] to spare1? [y/N]"), text
    assert "not confirmed, nothing was changed" in text, text
    assert_pristine(lab, "spare1")
    status, text = on_a_terminal(lab, b"y", "node", "add", "spare1")
    assert status == 0, text
    assert "[done] resource:" in text and "spare1: add done" in text, text
    assert lab.crm_mon_nodes()["spare1"]["online"]
    # remove: --dry-run lists what would change, a no changes nothing, a yes removes it
    proc = remotectl(lab, "node", "remove", "spare1", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = {s["step"]: s["status"] for s in as_json(proc)["steps"]}
    assert plan == {"drain": "would", "resource": "would", "forget": "would", "service": "would",
                    "firewall": "would", "key": "would"}, plan
    status, text = on_a_terminal(lab, b"n", "node", "remove", "spare1")
    assert status == 4 and "not confirmed, nothing was changed" in text, text
    assert "[plan] forget: crm_node --force --remove=spare1" in text, text
    assert lab.crm_mon_nodes()["spare1"]["online"]
    status, text = on_a_terminal(lab, b"y", "node", "remove", "spare1")
    assert status == 0 and "spare1: remove done" in text, text
    assert_pristine(lab, "spare1")


def test_add_twice_run_a_resource_remove_twice(spare):
    lab = spare
    started = time.monotonic()
    fenced = fence_events(lab, "spare1")
    proc = remotectl(lab, "node", "add", "spare1", "--yes", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = as_json(proc)
    assert doc["outcome"] == "done"
    assert {s["step"]: s["status"] for s in doc["steps"]}.items() >= {
        "firewall": "done", "key": "done", "service": "done", "resource": "done", "online": "done",
        "pre-join check": "checked"}.items()
    assert doc["fingerprint"].startswith("sha256:")
    assert lab.authkey.read_bytes().hex() not in proc.stdout + proc.stderr
    assert lab.crm_mon_nodes()["spare1"]["online"]
    assert host_facts(lab, "spare1") == ("enabled", "active", 2, True)
    # the second run changes nothing and says so
    proc = remotectl(lab, "node", "add", "spare1", "--yes", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = as_json(proc)
    assert doc["outcome"] == "nothing-to-do" and doc["changed"] is False, doc
    human = remotectl(lab, "node", "add", "spare1", "--yes")
    assert "spare1: nothing to do (already added)" in human.stdout, human.stdout + human.stderr
    # a resource can run there
    lab.cluster_run(["cibadmin", "--create", "--scope", "resources", "--xml-text",
                     '<primitive id="nl-dummy" class="ocf" provider="pacemaker" type="Dummy"/>'])
    lab.cluster_run(["cibadmin", "--create", "--scope", "constraints", "--xml-text",
                     '<rsc_location id="nl-dummy-on-spare1" rsc="nl-dummy" node="spare1" score="INFINITY"/>'])
    lab.wait_for(lambda: lab.crm_mon_resources().get("nl-dummy", {}).get("nodes") == ["spare1"], 60,
                 "nl-dummy on spare1")
    # remove refuses while a constraint names the node, and changes nothing
    proc = remotectl(lab, "node", "remove", "spare1", "--yes", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "nl-dummy-on-spare1" in as_json(proc)["steps"][-1]["detail"]
    assert lab.crm_mon_nodes()["spare1"]["online"]
    proc = remotectl(lab, "node", "remove", "spare1", "--yes", "--remove-constraints", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert as_json(proc)["outcome"] == "done"
    assert_pristine(lab, "spare1")
    proc = remotectl(lab, "node", "remove", "spare1", "--yes", "--json")
    assert proc.returncode == 0 and as_json(proc)["outcome"] == "nothing-to-do", proc.stdout
    time.sleep(2)  # a fencing scheduled by the removal would be requested within a transition
    assert fence_events(lab, "spare1") == fenced
    lab.cluster_run(["cibadmin", "--delete", "--xml-text", '<primitive id="nl-dummy"/>'])
    # and it can be added again
    proc = remotectl(lab, "node", "add", "spare1", "--yes", "--json")
    assert proc.returncode == 0 and as_json(proc)["outcome"] == "done", proc.stdout + proc.stderr
    print(f"add/remove cycle: {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("leftover", [False, True], ids=["clean", "trial-rule-left-by-a-killed-run"])
def test_add_refuses_a_port_blocked_from_one_cluster_node(hosts_lab, leftover):
    """Refused with the blocking cluster node named, and the host as it was; also when a run killed during its
    trial left the trial rule in the live ruleset (only there, never in /etc/nftables.conf): that rule goes too."""
    lab = hosts_lab
    assert_pristine(lab, "spare2")
    lab.fault("drop-3121", "spare2", "node2")
    try:
        if leftover:
            lab.host_run("spare2", ["nft", "insert", "rule", "inet", "filter", "input", "tcp", "dport", "3121",
                                    "accept", "comment", '"remotectl-node-add:3121"'])
            assert host_facts(lab, "spare2")[2] == 1
        proc = remotectl(lab, "node", "add", "spare2", "--yes", "--json")
        assert proc.returncode == 4, proc.stdout + proc.stderr
        doc = as_json(proc)
        assert doc["outcome"] == "refused" and doc["changed"] is False
        detail = doc["steps"][-1]["detail"]
        assert "node2" in detail and "node1" not in detail, detail
        assert "the trial firewall rule was removed again" in detail, detail  # spares drop by default
        assert_pristine(lab, "spare2")
    finally:
        lab.clear_faults("drop-3121")
        lab.host_run("spare2", ["sh", "-c", "nft -a list chain inet filter input | sed -n "
                                "'s/.*remotectl-node-add:3121.*# handle \\([0-9]*\\)/\\1/p' | "
                                "xargs -r -n1 nft delete rule inet filter input handle"], check=False)
    assert_pristine(lab, "spare2")


def test_add_refuses_a_name_in_use_and_a_host_without_the_package(hosts_lab):
    lab = hosts_lab
    proc = remotectl(lab, "node", "add", "spare1", "--name", "dummy1", "--yes", "--json")
    assert proc.returncode == 4 and "dummy1" in as_json(proc)["steps"][-1]["detail"], proc.stdout
    # node1 is a cluster node: its name is taken (and it has no pacemaker_remote to add anyway)
    proc = remotectl(lab, "node", "add", "node2", "--yes", "--json")
    assert proc.returncode == 4, proc.stdout
    assert_pristine(lab, "spare1")


def _kill_at_random(lab, delay):
    argv = [sys.executable, "-m", "remotectl", *lab.remotectl_ssh_options, "--cluster", "node1",
            "node", "add", "spare1", "--yes", "--json"]
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def test_add_killed_at_a_random_step_converges(spare):
    lab = spare
    seed = int(os.environ.get("REMOTECTL_NODE_KILL_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"REMOTECTL_NODE_KILL_SEED={seed}")
    fenced = fence_events(lab, "spare1")
    for round_ in range(KILL_ROUNDS):
        _kill_at_random(lab, rng.uniform(0.3, 3.0))
        proc = remotectl(lab, "node", "add", "spare1", "--yes", "--json")
        assert proc.returncode == 0, f"round {round_}: {proc.stdout}{proc.stderr}"
        assert as_json(proc)["outcome"] in ("done", "nothing-to-do")
        assert lab.crm_mon_nodes()["spare1"]["online"]
        assert host_facts(lab, "spare1") == ("enabled", "active", 2, True)
        proc = remotectl(lab, "node", "remove", "spare1", "--yes")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert_pristine(lab, "spare1")
        assert fence_events(lab, "spare1") == fenced, f"round {round_}: spare1 was fenced"


def test_drain_reboot_resume_without_fencing(hosts_lab):
    lab = hosts_lab
    fenced = fence_events(lab, "remote1")
    failed_before = lab.fail_counts()
    where = lambda: lab.crm_mon_resources().get("nl-on-remote1", {}).get("nodes")  # noqa: E731
    try:
        # a resource of remote1's own: it must leave during the drain and come back with resume
        lab.cluster_run(["cibadmin", "--create", "--scope", "resources", "--xml-text",
                         '<primitive id="nl-on-remote1" class="ocf" provider="pacemaker" type="Dummy"/>'])
        lab.cluster_run(["cibadmin", "--create", "--scope", "constraints", "--xml-text",
                         '<rsc_location id="nl-on-remote1-pref" rsc="nl-on-remote1" node="remote1" '
                         'score="INFINITY"/>'])
        lab.wait_for(lambda: where() == ["remote1"], 60, "nl-on-remote1 on remote1")
        proc = remotectl(lab, "node", "drain", "remote1", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert as_json(proc)["outcome"] == "done"
        assert not lab.crm_mon_nodes().get("remote1", {}).get("online")
        assert where() not in (["remote1"], [], None), where()
        boots = lab.boots("remote1")
        lab.ssh("remote1", ["systemctl", "reboot"], check=False, timeout=30)
        lab.wait_host("remote1", timeout=90, since_boot=boots)
        proc = remotectl(lab, "node", "resume", "remote1", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert as_json(proc)["outcome"] == "done"
        node = lab.crm_mon_nodes()["remote1"]
        assert node["online"] and not node["standby"]
        lab.wait_for(lambda: where() == ["remote1"], 60, "nl-on-remote1 back on remote1")
        assert fence_events(lab, "remote1") == fenced
        assert lab.fail_counts() == failed_before
        proc = remotectl(lab, "node", "resume", "remote1", "--json")
        assert as_json(proc)["outcome"] == "nothing-to-do", proc.stdout
    finally:
        lab.cluster_run(["cibadmin", "--delete", "--xml-text", '<rsc_location id="nl-on-remote1-pref"/>'],
                        check=False)
        lab.cluster_run(["crm_resource", "--resource=nl-on-remote1", "--meta", "--set-parameter=target-role",
                         "--parameter-value=Stopped"], check=False)
        lab.wait_for(lambda: not where(), 60, "nl-on-remote1 stopped")
        lab.cluster_run(["cibadmin", "--delete", "--xml-text", '<primitive id="nl-on-remote1"/>'], check=False)
        lab.restore_baseline()


def test_drain_of_a_guest_needs_force(hosts_lab):
    proc = remotectl(hosts_lab, "node", "drain", "guest1", "--json")
    assert proc.returncode == 4, proc.stdout
    assert "stops the guest" in as_json(proc)["steps"][-1]["detail"]
    assert hosts_lab.crm_mon_nodes()["guest1"]["online"]


def test_check_full_asks_the_host_itself(spare, tmp_path):
    """A cluster remotectl does not talk to holds the host (here: a CIB from before the node was added stands for
    "the other cluster"): check --full refuses because of what the host says, and the node stays online."""
    lab = spare
    fenced = fence_events(lab, "spare1")
    other = tmp_path / "other-cluster.xml"
    other.write_text(lab.cibadmin_query())
    proc = remotectl(lab, "node", "add", "spare1", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = remotectl(lab, "--cib", other, "check", "--full", "--key", lab.authkey, f"{lab.host('spare1').address}:3121",
                     cluster=None)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "established connection" in proc.stderr, proc.stderr
    cluster_addresses = "|".join(re.escape(lab.host(n).address) for n in ("node1", "node2"))
    assert re.search(rf"from \S*({cluster_addresses})\]?:\d+", proc.stderr), proc.stderr
    time.sleep(2)
    assert lab.crm_mon_nodes()["spare1"]["online"]
    assert fence_events(lab, "spare1") == fenced


def test_added_node_survives_a_drained_reboot(spare):
    """The port stays open after a reboot (the rule is kept in /etc/nftables.conf), so resume brings it back."""
    lab = spare
    fenced = fence_events(lab, "spare1")
    proc = remotectl(lab, "node", "add", "spare1", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = remotectl(lab, "node", "drain", "spare1", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    boots = lab.boots("spare1")
    lab.ssh("spare1", ["systemctl", "reboot"], check=False, timeout=30)
    lab.wait_host("spare1", timeout=90, since_boot=boots)
    assert host_facts(lab, "spare1") == ("enabled", "active", 2, True)
    proc = remotectl(lab, "node", "resume", "spare1", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    node = lab.crm_mon_nodes()["spare1"]
    assert node["online"] and not node["standby"]
    assert fence_events(lab, "spare1") == fenced


def test_add_guest_makes_a_running_container_a_guest_node(hosts_lab):
    """vm-guest1 without its remote-node meta is a plain running container; node add-guest makes guest1 a guest
    node again (plan, key, service, pre-join check, meta), without restarting the container or fencing; a second
    run changes nothing; resources that cannot hold a guest are refused before any change."""
    lab = hosts_lab
    address = lab.host("guest1").address
    fenced, boots = fence_events(lab, "guest1"), lab.boots("guest1")
    add = ["node", "add-guest", "guest1", "--resource", "vm-guest1", "--address", address, "--yes", "--json"]
    try:
        # a node attribute keeps guest1's entries (<nodes> and status) after remote-node is gone, as earlier tests
        # or an operator's standby would: the same node coming back reuses them
        lab.cluster_run(["crm_attribute", "--node", "guest1", "--name", "rctl-test-keep", "--update", "1"])
        lab.cluster_run(["crm_resource", "--resource", "vm-guest1", "--meta", "--delete-parameter", "remote-node"])
        lab.wait_for(lambda: not lab.crm_mon_nodes().get("guest1", {}).get("online"), 60, "guest1 offline")
        proc = remotectl(lab, *add[:-2], "--dry-run", "--json")
        assert proc.returncode == 0 and as_json(proc)["outcome"] == "dry-run", proc.stdout + proc.stderr
        assert not lab.crm_mon_nodes().get("guest1", {}).get("online")
        proc = remotectl(lab, *add)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = as_json(proc)
        steps = {s["step"]: s["status"] for s in doc["steps"]}
        assert doc["outcome"] == "done" and steps["resource"] == "done" and steps["online"] == "done", doc
        assert steps["pre-join check"] == "checked", doc
        assert lab.crm_mon_nodes()["guest1"]["online"]
        assert lab.boots("guest1") == boots and fence_events(lab, "guest1") == fenced
        proc = remotectl(lab, *add)
        assert proc.returncode == 0 and as_json(proc)["outcome"] == "nothing-to-do", proc.stdout + proc.stderr
        for resource, why in (("vm-guest1", "already the container of guest node guest1"),
                              ("remote1", "Pacemaker Remote connection"), ("no-such-rsc", "no primitive resource")):
            proc = remotectl(lab, "node", "add-guest", "guest2", "--resource", resource, "--yes", "--json")
            assert proc.returncode == 4 and why in as_json(proc)["steps"][-1]["detail"], proc.stdout + proc.stderr
    finally:
        lab.cluster_run(["crm_resource", "--resource", "vm-guest1", "--meta", "--set-parameter", "remote-node",
                         "--parameter-value", "guest1"], check=False)
        lab.cluster_run(["crm_attribute", "--node", "guest1", "--name", "rctl-test-keep", "--delete"], check=False)
        lab.restore_baseline()
    assert fence_events(lab, "guest1") == fenced


# Switch one firewall on for spare2 in place of its raw nftables default-deny (the image has both installed and
# inactive); each leaves 3121 closed, as its defaults do. The rule of node add in that firewall's own terms.
FIREWALLS = {
    "firewalld": dict(
        on=["sh", "-ec", "nft delete table inet filter; systemctl start firewalld; firewall-cmd --state"],
        rules=["sh", "-c", "firewall-cmd --list-ports; grep -so 'port=\"[0-9]*\"' /etc/firewalld/zones/public.xml; "
                           "cat /var/lib/remotectl/node-add-firewalld-3121 2>/dev/null"],
        off=["sh", "-c", "systemctl stop firewalld; systemctl restart nftables"]),
    "ufw": dict(
        on=["sh", "-ec", "nft delete table inet filter; ufw allow 22/tcp; ufw --force enable"],
        rules=["ufw", "show", "added"],
        off=["sh", "-c", "ufw delete allow 22/tcp; ufw disable; systemctl restart nftables"]),
}


# The firewall step does not depend on Pacemaker's version: firewalld on the 3.0 lab (the RHEL 10 / SLES 16
# setup), ufw on the 2.1 one (Debian 12 / Ubuntu), each once per CI run.
@pytest.mark.parametrize("firewall", [pytest.param("firewalld", marks=pytest.mark.lab_pacemaker("3.0")),
                                      pytest.param("ufw", marks=pytest.mark.lab_pacemaker("2.1"))])
def test_add_and_remove_open_and_close_the_port_in_the_active_firewall(hosts_lab, firewall):
    """With firewalld (resp. ufw) active on the host, node add opens 3121 there (never a raw nft rule under it)
    and says so; the second run changes nothing; node remove closes exactly that again."""
    lab, how = hosts_lab, FIREWALLS[firewall]
    assert_pristine(lab, "spare2")
    rules = lambda: lab.host_run("spare2", how["rules"], check=False).stdout  # noqa: E731
    try:
        lab.host_run("spare2", how["on"])
        assert "3121" not in rules()
        proc = remotectl(lab, "node", "add", "spare2", "--yes", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        step = {s["step"]: s for s in as_json(proc)["steps"]}["firewall"]
        assert step["status"] == "done" and step["detail"].startswith(f"{firewall}:"), step
        assert lab.crm_mon_nodes()["spare2"]["online"]
        if firewall == "firewalld":  # runtime, permanent (the zone's file), and the marker naming the zone
            assert rules().split() == ["3121/tcp", 'port="3121"', "public"], rules()
        else:
            assert "ufw allow 3121/tcp comment 'remotectl-node-add:3121'" in rules(), rules()
        assert "remotectl-node-add" not in lab.host_run("spare2", ["nft", "list", "ruleset"]).stdout
        proc = remotectl(lab, "node", "add", "spare2", "--yes", "--json")
        assert proc.returncode == 0 and as_json(proc)["outcome"] == "nothing-to-do", proc.stdout + proc.stderr
        proc = remotectl(lab, "node", "remove", "spare2", "--yes", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        step = {s["step"]: s for s in as_json(proc)["steps"]}["firewall"]
        assert step["status"] == "done" and firewall in step["detail"], step
        assert "3121" not in rules() and "public" not in rules(), rules()
        assert "spare2" not in lab.crm_mon_nodes()
    finally:
        if "spare2" in lab.crm_mon_nodes():
            remotectl(lab, "node", "remove", "spare2", "--yes")
        lab.host_run("spare2", how["off"], check=False)
    assert_pristine(lab, "spare2")


def test_remove_a_guest_keeps_its_container_and_add_guest_brings_it_back(hosts_lab):
    """node remove guest1: standby, remote-node (and remote-addr, remote-port) gone from vm-guest1, which keeps
    running (not restarted), guest1 gone from crm_mon and the CIB, its service disabled and its key removed
    inside the guest, no fencing; a second run changes nothing; node add-guest makes it a guest node again."""
    lab = hosts_lab
    address = lab.host("guest1").address
    fenced, boots = fence_events(lab, "guest1"), lab.boots("guest1")
    meta = lambda key: lab.cluster_run(["crm_resource", "--resource", "vm-guest1", "--meta",  # noqa: E731
                                        "--get-parameter", key], check=False).stdout.strip()
    try:
        proc = remotectl(lab, "node", "remove", "guest1", "--dry-run", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        plan = {s["step"]: s for s in as_json(proc)["steps"]}
        assert "remote-node, remote-addr, remote-port" in plan["resource"]["detail"], plan
        assert {k: s["status"] for k, s in plan.items()} == {
            "drain": "would", "resource": "would", "forget": "would", "service": "would", "key": "would"}, plan
        proc = remotectl(lab, "node", "remove", "guest1", "--yes", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert as_json(proc)["outcome"] == "done", proc.stdout
        assert "guest1" not in lab.crm_mon_nodes()
        assert in_cib(lab, "guest1")[:2] == (False, False)
        assert lab.crm_mon_resources()["vm-guest1"]["nodes"], lab.crm_mon_resources()  # the container runs on
        assert meta("remote-node") == "" and meta("remote-addr") == ""
        assert host_facts(lab, "guest1") == ("disabled", "inactive", 0, False)
        assert lab.boots("guest1") == boots
        proc = remotectl(lab, "node", "remove", "guest1", "--yes", "--json")
        assert proc.returncode == 0 and as_json(proc)["outcome"] == "nothing-to-do", proc.stdout + proc.stderr
        proc = remotectl(lab, "node", "add-guest", "guest1", "--resource", "vm-guest1", "--address", address,
                         "--yes", "--json")
        assert proc.returncode == 0 and as_json(proc)["outcome"] == "done", proc.stdout + proc.stderr
        assert lab.crm_mon_nodes()["guest1"]["online"]
    finally:
        key_file = lab.host_root("guest1") / "etc/pacemaker/authkey"
        if not key_file.exists():  # add-guest did not run: the lab's key and service back by hand
            key_file.write_bytes(lab.authkey.read_bytes())
            lab.host_run("guest1", ["sh", "-c", "chgrp haclient /etc/pacemaker/authkey; chmod 0640 "
                                    "/etc/pacemaker/authkey; systemctl enable --now pacemaker_remote"], check=False)
        for key, value in (("remote-addr", address), ("remote-port", "3121"), ("remote-node", "guest1")):
            lab.cluster_run(["crm_resource", "--resource", "vm-guest1", "--meta", "--set-parameter", key,
                             "--parameter-value", value], check=False)
        lab.restore_baseline()
    assert lab.boots("guest1") == boots and fence_events(lab, "guest1") == fenced
