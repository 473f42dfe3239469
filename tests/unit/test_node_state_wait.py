"""standby/maintenance --wait and fence --wait on crm_mon's node states (remotectl.pacemaker.status), with a
scripted cluster and a fake clock; plus the crm_attribute handling of node_state."""

import pytest

from remotectl.jsonable import jsonable
from remotectl.actions import fence as fence_actions
from remotectl.actions import node_state
from remotectl.reports import ExitCode, Severity
from remotectl.transport.cluster import ClusterClient
from tests.fakes import FakeClock, FakePacemaker


def crm_mon(*nodes):
    """nodes: (name, type, online, standby, maintenance, running[, id_as_resource])"""
    lines = []
    for name, kind, online, standby, maintenance, running, *container in nodes:
        extra = f' id_as_resource="{container[0]}"' if container else ""
        lines.append(
            f'<node name="{name}" id="{name}" online="{str(online).lower()}" standby="{str(standby).lower()}" '
            f'maintenance="{str(maintenance).lower()}" pending="false" unclean="false" shutdown="false" '
            f'resources_running="{running}" type="{kind}"{extra}/>'
        )
    return f"<pacemaker-result><nodes>{''.join(lines)}</nodes><resources/></pacemaker-result>"


KNOWN = ("remote1", "remote2", "guest1", "node1")


def ScriptedRunner(mon_script, attributes=None, known=KNOWN):
    """crm_attribute against a dict of attributes; crm_mon answers from a script indexed by call number."""
    return FakePacemaker(crm_mon=mon_script, attributes=attributes, known_nodes=known)


ONLINE = ("remote1", "remote", True, False, False, 2)


def run_standby(runner, nodes, **kwargs):
    clock = FakeClock()
    result = node_state.standby(ClusterClient(runner), nodes, clock=clock, sleep=clock.sleep, **kwargs)
    return result, clock


def test_standby_sets_and_reports_before_after():
    runner = ScriptedRunner([crm_mon(ONLINE)])
    result, _ = run_standby(runner, ["remote1"])
    change = result.changes[0]
    assert (change.before, change.after, change.changed, change.ok, change.effective) == (None, "on", True, True, True)
    assert runner.writes() == [["crm_attribute", "--node=remote1", "--name=standby", "--update=on",
                                "--lifetime=forever"]]
    assert result.exit_code is ExitCode.OK
    assert jsonable(result)["changes"][0]["attribute"] == "standby"


def test_standby_already_set_writes_nothing():
    runner = ScriptedRunner([crm_mon(ONLINE)], {("remote1", "standby", "forever"): "on"})
    result, _ = run_standby(runner, ["remote1", "remote1"])
    assert len(result.changes) == 1  # duplicates are done once
    assert result.changes[0].changed is False and result.changes[0].ok
    assert runner.writes() == []


def test_unstandby_deletes_and_warns_about_the_other_lifetime():
    runner = ScriptedRunner([crm_mon(ONLINE)], {("remote1", "standby", "forever"): "on",
                                                ("remote1", "standby", "reboot"): "on"})
    result = node_state.unstandby(ClusterClient(runner), ["remote1"])
    change = result.changes[0]
    assert (change.before, change.after, change.effective) == ("on", None, True)
    assert "--delete" in runner.writes()[0]
    assert any(r.severity is Severity.WARNING and "stays in standby" in r.message for r in result.reports)


def test_partial_failure_is_exit_3_and_unknown_nodes_are_named():
    runner = ScriptedRunner([crm_mon(ONLINE)])
    result, _ = run_standby(runner, ["remote1", "nosuch"])
    assert result.exit_code is ExitCode.PARTIAL
    assert "no such node" in result.changes[1].error
    result, _ = run_standby(ScriptedRunner([crm_mon(ONLINE)]), ["nosuch"])
    assert result.exit_code is ExitCode.FAILURE


def test_control_characters_are_refused_per_node():
    runner = ScriptedRunner([crm_mon(ONLINE)])
    result, _ = run_standby(runner, ["bad\nname", "remote1"])
    assert result.exit_code is ExitCode.PARTIAL
    assert all("bad\nname" not in " ".join(c) for c in runner.calls)


def test_wait_until_resources_moved_off():
    script = [
        crm_mon(("remote1", "remote", True, False, False, 2)),
        crm_mon(("remote1", "remote", True, True, False, 2)),
        crm_mon(("remote1", "remote", True, True, False, 1)),
        crm_mon(("remote1", "remote", True, True, False, 0)),
    ]
    runner = ScriptedRunner(script)
    result, clock = run_standby(runner, ["remote1"], wait=30, poll_interval=1.0)
    change = result.changes[0]
    assert change.settled is True and change.ok
    assert change.state == {"type": "remote", "online": True, "standby": True, "maintenance": False, "unclean": False,
                            "resources_running": 0}
    assert sum(1 for c in runner.calls if c[0] == "crm_mon") == 4
    assert 2.9 <= clock.now <= 3.1


def test_wait_times_out_with_a_reason():
    runner = ScriptedRunner([crm_mon(("remote1", "remote", True, True, False, 3))])
    result, clock = run_standby(runner, ["remote1"], wait=5, poll_interval=1.0)
    change = result.changes[0]
    assert change.settled is False and not change.ok
    assert "3 resource(s) still running" in change.error
    assert result.exit_code is ExitCode.FAILURE
    assert 5 <= clock.now < 6.5


def test_wait_on_a_cib_file_is_ignored():
    class FileCluster(ClusterClient):
        live = False

    runner = ScriptedRunner([crm_mon(ONLINE)])
    result = node_state.standby(FileCluster(runner), ["remote1"], wait=10)
    assert result.changes[0].settled is None
    assert not any(c[0] == "crm_mon" for c in runner.calls)
    assert any("--wait ignored" in r.message for r in result.reports)


def test_maintenance_wait():
    script = [crm_mon(("guest1", "remote", True, False, False, 1, "vm")),
              crm_mon(("guest1", "remote", True, False, True, 1, "vm"))]
    runner = ScriptedRunner(script)
    clock = FakeClock()
    result = node_state.maintenance(ClusterClient(runner), ["guest1"], wait=10, clock=clock, sleep=clock.sleep)
    assert result.changes[0].settled is True
    assert runner.writes()[0][3:] == ["--update=on", "--lifetime=forever"]
    off = node_state.maintenance(ClusterClient(ScriptedRunner([crm_mon(ONLINE)], runner.attributes)), ["guest1"],
                                 off=True)
    assert off.changes[0].before == "on" and off.changes[0].after is None


def test_reboot_lifetime():
    runner = ScriptedRunner([crm_mon(ONLINE)])
    result = node_state.standby(ClusterClient(runner), ["remote1"], lifetime="reboot")
    assert runner.writes()[0][-1] == "--lifetime=reboot"
    assert result.changes[0].lifetime == "reboot"


# --- fence --wait ----------------------------------------------------------------------------------------------------


def run_fence(script, wait):
    runner = ScriptedRunner(script)
    cluster = ClusterClient(runner)
    clock = FakeClock()
    preparation = fence_actions.prepare_fence(cluster, "remote1")
    return fence_actions.execute_fence(cluster, preparation, wait=wait, poll_interval=1.0, clock=clock,
                                       sleep=clock.sleep), runner


def test_fence_wait_sees_the_node_go_and_come_back():
    up = crm_mon(("remote1", "remote", True, False, False, 0))
    down = crm_mon(("remote1", "remote", False, False, False, 0))
    result, _ = run_fence([up, down, down, up], wait=60)  # first answer is for prepare_fence
    assert result.ok and result.settled is True and result.after == "online"


def test_fence_wait_times_out_when_it_stays_down():
    up = crm_mon(("remote1", "remote", True, False, False, 0))
    down = crm_mon(("remote1", "remote", False, False, False, 0))
    result, _ = run_fence([up, down], wait=10)
    assert not result.ok and result.settled is False
    assert "not back online within 10 s" in result.error and "OFFLINE" in result.error


def test_fence_wait_when_the_outage_was_too_short_to_see():
    up = crm_mon(("remote1", "remote", True, False, False, 0))
    result, _ = run_fence([up], wait=60)
    assert result.ok and result.settled is True
    assert any("never showed remote1 down" in r.message for r in result.reports)


@pytest.mark.parametrize("wait", [None])
def test_fence_without_wait_reads_the_state_once(wait):
    up = crm_mon(("remote1", "remote", True, False, False, 0))
    down = crm_mon(("remote1", "remote", False, False, False, 0))
    result, runner = run_fence([up, down], wait=wait)
    assert result.settled is None and result.after == "OFFLINE"
