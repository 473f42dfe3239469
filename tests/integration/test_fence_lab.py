"""fence and fence history on the real lab (fence_dummy). Each fenced node is waited for until it is online again
and its failed connection monitor is cleaned up (the lab is shared)."""

import functools
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.integration.lab_cli import cli_env, run_remotectl

pytestmark = pytest.mark.lab

remotectl = functools.partial(run_remotectl, timeout=240)


def history(lab, node):
    out = lab.run(["stonith_admin", f"--history={node}", "--verbose", "--output-as=xml"]).stdout
    return [dict(e.attrib) for e in ET.fromstring(out).iter("fence_event")]


def restore(lab, node, resource):
    """Back online and no failure left behind from our fencing. The cleanup itself makes the scheduler re-probe the
    resource (for a guest's container that briefly takes the guest down), so wait until the cluster settles."""
    try:
        lab.wait_online([node], timeout=120)
    finally:
        lab.run(["crm_resource", "--cleanup", f"--resource={resource}"], check=False)
        lab.settle(timeout=120)
        lab.wait_online(timeout=120)


def test_fence_without_yes_and_without_tty_is_refused(lab):
    lab.wait_online(["remote1"], timeout=120)
    before = len(history(lab, "remote1"))
    result = remotectl("fence", "remote1", lab=lab)
    assert result.returncode == 4, result.stderr
    assert "--yes" in result.stderr and "nothing fenced" in result.stderr
    assert len(history(lab, "remote1")) == before
    assert lab.crm_mon_nodes()["remote1"]["online"] is True


def test_fence_remote_node(lab):
    lab.wait_online(["remote1"], timeout=120)
    before = len(history(lab, "remote1"))
    try:
        result = remotectl("fence", "remote1", "--yes", "--wait=120", "--json", lab=lab)
        assert result.returncode == 0, result.stderr
        change = json.loads(result.stdout)["changes"][0]
        assert change["node"] == "remote1" and change["type"] == "remote" and change["method"] == "stonith"
        assert change["ok"] and change["settled"] is True
        assert change["before"] == "online" and change["after"].startswith("online")
        assert change["event"]["target"] == "remote1" and change["event"]["status"] == "success"
        events = history(lab, "remote1")
        assert len(events) == before + 1
        assert events[0]["action"] == "reboot" and events[0]["client"].startswith("stonith_admin")

        listed = json.loads(remotectl("fence", "history", "remote1", "--json", lab=lab).stdout)["events"]
        assert len(listed) == before + 1
        assert listed[0]["target"] == "remote1" and listed[0]["status"] == "success"
        assert listed[0]["completed"] == events[0]["completed"]
    finally:
        restore(lab, "remote1", "remote1")


def test_fence_remote_node_over_ssh_and_history(lab):
    lab.wait_online(["remote2"], timeout=120)
    before = len(history(lab, "remote2"))
    try:
        result = remotectl("fence", "remote2", "--yes", "--wait=120", lab=lab, ssh=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("remote2: online → ")
        assert "fenced (reboot) by the fencer; history: success" in result.stdout
        assert "remote2: back online" in result.stdout
        assert len(history(lab, "remote2")) == before + 1
        everything = remotectl("fence", "history", "--json", lab=lab, ssh=True)
        assert everything.returncode == 0
        targets = [e["target"] for e in json.loads(everything.stdout)["events"]]
        assert "remote2" in targets
        table = remotectl("fence", "history", "remote2", lab=lab, ssh=True)
        assert "TARGET" in table.stdout and "remote2" in table.stdout and "success" in table.stdout
    finally:
        restore(lab, "remote2", "remote2")


def _container_start_calls(lab):
    status = ET.fromstring(lab.cibadmin_query("status"))
    calls = []
    for op in status.iter("lrm_rsc_op"):
        if op.get("operation_key") == "vm-guest1_start_0" or (
                op.get("operation") == "start" and op.get("id", "").startswith("vm-guest1_")):
            calls.append((op.get("call-id"), op.get("last-rc-change")))
    return calls


def test_fence_guest_node_recovers_its_container(lab):
    lab.wait_online(["guest1"], timeout=120)
    before_history = len(history(lab, "guest1"))
    starts_before = _container_start_calls(lab)
    try:
        result = remotectl("fence", "guest1", "--yes", "--wait=120", "--json", lab=lab)
        assert result.returncode == 0, result.stderr
        change = json.loads(result.stdout)["changes"][0]
        assert change["type"] == "guest" and change["method"] == "container-recovery"
        assert change["container"] == "vm-guest1" and change["host"] == "node1"
        assert change["ok"] and change["settled"] is True
        reports = json.loads(result.stdout)["reports"]
        assert any("recovering its container vm-guest1" in r["message"] for r in reports)
        # the container was really stopped and started again (a new start operation), as Pacemaker does when it
        # fences a guest; the fencer is not involved
        assert _container_start_calls(lab) != starts_before
        assert len(history(lab, "guest1")) == before_history
    finally:
        restore(lab, "guest1", "vm-guest1")


def test_fence_guest_off_and_unknown_nodes_are_refused(lab):
    result = remotectl("fence", "guest1", "--action", "off", "--yes", lab=lab)
    assert result.returncode == 1 and "no 'off'" in result.stderr
    result = remotectl("fence", "no-such-node", "--yes", lab=lab)
    assert result.returncode == 4 and "not a node of this cluster" in result.stderr


def test_fence_on_a_terminal_asks_and_no_means_nothing_fenced(lab):
    import pty
    import select

    lab.wait_online(["remote1"], timeout=120)
    before = len(history(lab, "remote1"))
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "remotectl", "fence", "remote1"], stdin=terminal, stdout=terminal,
                            stderr=terminal, env=cli_env(), close_fds=True)
    os.close(terminal)
    seen = b""
    try:
        while b"[y/N]" not in seen:
            ready, _, _ = select.select([controller], [], [], 30)
            assert ready, f"no prompt; got {seen!r}"
            seen += os.read(controller, 4096)
        os.write(controller, b"n\n")
        assert proc.wait(timeout=30) == 4
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
