"""fence and fence history on the hosts lab over SSH (--cluster node1), on the Pacemaker of LAB_PACEMAKER: a remote
node through fence_dummy, a guest by recovering its container, the refusals and the terminal prompt (ported from
the netns lab's test_fence_lab). Each fenced node is waited for until it is online again and the lab is put back
to its baseline."""

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.integration.test_hosts_lab import REPO, as_json, remotectl

pytestmark = pytest.mark.hosts_lab


def history(lab, node):
    out = lab.cluster_run(["stonith_admin", f"--history={node}", "--verbose", "--output-as=xml"]).stdout
    return [dict(e.attrib) for e in ET.fromstring(out).iter("fence_event")]


@pytest.fixture
def clean(hosts_lab):
    yield hosts_lab
    hosts_lab.restore_baseline()


def test_fence_without_yes_and_without_tty_is_refused(hosts_lab):
    lab = hosts_lab
    before = len(history(lab, "remote1"))
    proc = remotectl(lab, "fence", "remote1")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--yes" in proc.stderr and "nothing fenced" in proc.stderr
    assert len(history(lab, "remote1")) == before
    assert lab.crm_mon_nodes()["remote1"]["online"] is True


def test_fence_remote_node_and_the_history(clean):
    lab = clean
    before = len(history(lab, "remote1"))
    proc = remotectl(lab, "fence", "remote1", "--yes", "--wait=120", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    change = as_json(proc)["changes"][0]
    assert change["node"] == "remote1" and change["type"] == "remote" and change["method"] == "stonith"
    assert change["ok"] and change["settled"] is True
    assert change["before"] == "online" and change["after"].startswith("online")
    assert change["event"]["target"] == "remote1" and change["event"]["status"] == "success"
    events = history(lab, "remote1")
    assert len(events) == before + 1
    assert events[0]["action"] == "reboot" and events[0]["client"].startswith("stonith_admin")
    listed = as_json(remotectl(lab, "fence", "history", "remote1", "--json"))["events"]
    assert len(listed) == before + 1
    assert listed[0]["target"] == "remote1" and listed[0]["status"] == "success"
    assert listed[0]["completed"] == events[0]["completed"]
    lab.wait_online(["remote1"], 120)

    # the text forms
    before = len(history(lab, "remote2"))
    proc = remotectl(lab, "fence", "remote2", "--yes", "--wait=120")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("remote2: online → ")
    assert "fenced (reboot) by the fencer; history: success" in proc.stdout
    assert "remote2: back online" in proc.stdout
    assert len(history(lab, "remote2")) == before + 1
    everything = remotectl(lab, "fence", "history", "--json")
    assert everything.returncode == 0, everything.stderr
    assert {"remote1", "remote2"} <= {e["target"] for e in as_json(everything)["events"]}
    table = remotectl(lab, "fence", "history", "remote2")
    assert "TARGET" in table.stdout and "remote2" in table.stdout and "success" in table.stdout


def test_fence_a_guest_recovers_its_container(clean):
    lab = clean
    boots = lab.boots("guest1")
    before_history = len(history(lab, "guest1"))
    proc = remotectl(lab, "fence", "guest1", "--yes", "--wait=120", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = as_json(proc)
    change = doc["changes"][0]
    assert change["type"] == "guest" and change["method"] == "container-recovery"
    assert change["container"] == "vm-guest1" and change["host"] in lab.cluster_names
    assert change["ok"] and change["settled"] is True
    assert any("recovering its container vm-guest1" in r["message"] for r in doc["reports"])
    lab.wait_online(["guest1"], 120)
    deadline = time.monotonic() + 30
    while lab.boots("guest1") <= boots and time.monotonic() < deadline:
        time.sleep(0.5)
    assert lab.boots("guest1") > boots  # the cluster stopped and started the container: a new boot
    assert len(history(lab, "guest1")) == before_history  # the fencer is not involved


def test_fence_guest_off_and_unknown_nodes_are_refused(hosts_lab):
    proc = remotectl(hosts_lab, "fence", "guest1", "--action", "off", "--yes")
    assert proc.returncode == 1 and "no 'off'" in proc.stderr, proc.stdout + proc.stderr
    proc = remotectl(hosts_lab, "fence", "no-such-node", "--yes")
    assert proc.returncode == 4 and "not a node of this cluster" in proc.stderr, proc.stdout + proc.stderr


def test_fence_on_a_terminal_asks_and_no_means_nothing_fenced(hosts_lab):
    import pty
    import select

    lab = hosts_lab
    before = len(history(lab, "remote1"))
    controller, terminal = pty.openpty()
    env = dict(os.environ, NO_COLOR="1")
    env.pop("REMOTECTL_CLUSTER", None)
    proc = subprocess.Popen([sys.executable, "-m", "remotectl", *lab.remotectl_ssh_options, "--cluster", "node1",
                             "fence", "remote1"], stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                            cwd=str(REPO), close_fds=True)
    os.close(terminal)
    seen = b""
    try:
        while b"[y/N]" not in seen:
            ready, _, _ = select.select([controller], [], [], 60)
            assert ready, f"no prompt; got {seen!r}"
            seen += os.read(controller, 4096)
        os.write(controller, b"n\n")
        assert proc.wait(timeout=60) == 4
        while True:
            ready, _, _ = select.select([controller], [], [], 1)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    text = seen.decode(errors="replace")
    assert "Fence remote1 (reboot)?" in text and "stonith_admin" in text
    assert "not confirmed" in text
    assert len(history(lab, "remote1")) == before
