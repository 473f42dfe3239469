"""remotectl.pacemaker.fencing and remotectl.actions.fence / the fence command, without a cluster."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from remotectl.jsonable import jsonable
from remotectl.actions import fence as actions
from remotectl.pacemaker import fencing
from remotectl.pacemaker.status import read_status
from remotectl.reports import ExitCode, RefusedError, RemotectlError
from remotectl.transport.cluster import ClusterClient
from tests.fakes import FakePacemaker

DATA = Path(__file__).resolve().parents[1] / "data" / "crm_mon"

# stonith_admin --history '*' --verbose --output-as=xml, as Pacemaker 2.1.5 prints it (lab), plus a failed and a
# pending event as st_output.c writes them.
HISTORY = """\
<pacemaker-result api-version="2.25" request="stonith_admin --history * --verbose --output-as=xml">
  <list name="fencing history" count="4">
    <fence_event action="off" target="remote2" client="stonith_admin.77" origin="node1" status="pending"
                 extended-status="1"/>
    <fence_event action="reboot" target="remote1" client="pacemaker-controld.19965" origin="node1" status="success"
                 delegate="node1" completed="2026-11-25 13:41:47Z"/>
    <fence_event action="reboot" target="node2" client="stonith_admin.12" origin="node1" status="failed"
                 exit-reason="No such device" completed="2026-11-25 13:40:00.123456 +01:00"/>
    <fence_event action="reboot" target="remote1" client="stonith_admin.14282" origin="node1" status="success"
                 delegate="node1" completed="2026-11-25 13:39:41Z"/>
  </list>
  <status code="0" message="OK"/>
</pacemaker-result>
"""

EMPTY_HISTORY = """<pacemaker-result api-version="2.25" request="stonith_admin --history remote1 --verbose">
  <status code="0" message="OK"/>
</pacemaker-result>"""

FAILED_RESULT = """<pacemaker-result api-version="2.25" request="stonith_admin --history x">
  <status code="102" message="Not connected"><errors><error>Could not connect to fencer</error></errors></status>
</pacemaker-result>"""

CRM_MON = (DATA / "fence-cases.xml").read_text()


def test_parse_history():
    events = fencing.parse_history(HISTORY)
    assert [(e.target, e.action, e.status) for e in events] == [
        ("remote2", "off", "pending"), ("remote1", "reboot", "success"), ("node2", "reboot", "failed"),
        ("remote1", "reboot", "success"),
    ]
    pending, success, failed, _ = events
    assert pending.completed is None and pending.extended_status == "1"
    assert jsonable(success) == {
        "target": "remote1", "action": "reboot", "status": "success", "origin": "node1", "delegate": "node1",
        "client": "pacemaker-controld.19965", "completed": "2026-11-25 13:41:47Z", "exit_reason": None,
        "extended_status": None,
    }
    assert failed.exit_reason == "No such device"
    assert failed.completed == "2026-11-25 13:40:00.123456 +01:00"


def test_parse_empty_history():
    assert fencing.parse_history(EMPTY_HISTORY) == []


def test_parse_history_reports_failures():
    with pytest.raises(RemotectlError, match="cluster not running.*Could not connect to fencer"):
        fencing.parse_history(FAILED_RESULT)
    with pytest.raises(RemotectlError):
        fencing.parse_history("<other/>")
    with pytest.raises(RemotectlError):
        fencing.parse_history("not xml")


def test_parse_crm_mon_types_and_states():
    state = read_status(CRM_MON)
    nodes = state.nodes
    assert {n: s.type for n, s in nodes.items()} == {
        "guest1": "guest", "node1": "cluster", "remote1": "remote", "remote2": "remote",
        "httpd-bundle-0": "bundle", "httpd-bundle-1": "bundle", "guest2": "guest",
    }
    assert nodes["guest1"].container == "vm-guest1"
    assert nodes["guest1"].container_hosts == ("node1",)
    assert nodes["guest2"].container_managed is False
    assert nodes["httpd-bundle-0"].container_hosts == ("cluster01",)
    assert nodes["httpd-bundle-1"].container_hosts == ()
    assert nodes["remote1"].standby and nodes["remote1"].resources_running == 0
    assert nodes["remote1"].summary() == "online, standby"
    assert nodes["remote2"].summary() == "UNCLEAN, maintenance"
    assert nodes["httpd-bundle-1"].summary() == "OFFLINE"
    assert state.resources["inst"].nodes == ("node1", "guest1")  # clone instances merged
    assert state.resources["dummy1"].nodes == ("guest1",)


def test_plan_fence_remote_and_cluster_nodes_use_the_fencer():
    nodes = read_status(CRM_MON).nodes
    plan = fencing.plan_fence("remote1", "reboot", nodes["remote1"])
    assert plan.method == "stonith" and plan.argv == ("stonith_admin", "--reboot=remote1")
    plan = fencing.plan_fence("node1", "off", nodes["node1"])
    assert plan.argv == ("stonith_admin", "--fence=node1") and plan.type == "cluster"
    plan = fencing.plan_fence("ghost", "reboot", None)
    assert plan.type == "unknown" and plan.method == "stonith"


def test_plan_fence_guest_recovers_its_container():
    nodes = read_status(CRM_MON).nodes
    plan = fencing.plan_fence("guest1", "reboot", nodes["guest1"])
    assert plan.method == "container-recovery"
    assert plan.argv == ("crm_resource", "--fail", "--resource=vm-guest1", "--node=node1")
    assert (plan.container, plan.host) == ("vm-guest1", "node1")
    assert "recovering its container vm-guest1" in plan.explanation
    bundle = fencing.plan_fence("httpd-bundle-0", "reboot", nodes["httpd-bundle-0"])
    assert bundle.argv == ("crm_resource", "--fail", "--resource=httpd-bundle-docker-0", "--node=cluster01")


@pytest.mark.parametrize(
    "node, action, message",
    [
        ("guest1", "off", "there is no 'off'"),
        ("httpd-bundle-1", "reboot", "is not running"),
        ("guest2", "reboot", "unmanaged"),
    ],
)
def test_plan_fence_guest_refusals(node, action, message):
    nodes = read_status(CRM_MON).nodes
    with pytest.raises(RemotectlError, match=message):
        fencing.plan_fence(node, action, nodes[node])


def test_plan_fence_rejects_unknown_actions():
    with pytest.raises(RemotectlError):
        fencing.plan_fence("remote1", "on", None)


def FakeClusterRunner(fence_rc=0):
    """crm_mon, stonith_admin and crm_resource answers; records every argv."""
    return FakePacemaker(crm_mon=[CRM_MON], history=HISTORY, fence_rc=fence_rc)


class FileCluster(ClusterClient):
    live = False


def test_fence_remote_node():
    cluster = ClusterClient(FakeClusterRunner())
    preparation = actions.prepare_fence(cluster, "remote1", "reboot")
    assert cluster.runner.writes() == []  # preparing fences nothing
    result = actions.execute_fence(cluster, preparation)
    assert cluster.runner.writes() == [["stonith_admin", "--reboot=remote1"]]
    assert result.ok and result.exit_code is ExitCode.OK
    assert result.before == "online, standby"
    assert result.event.target == "remote1" and result.event.status == "success"
    document = result.change()
    assert document["method"] == "stonith" and document["event"]["delegate"] == "node1"


def test_fence_failure_is_reported():
    cluster = ClusterClient(FakeClusterRunner(fence_rc=105))
    result = actions.execute_fence(cluster, actions.prepare_fence(cluster, "remote1"))
    assert not result.ok and result.exit_code is ExitCode.FAILURE
    assert "No such device" in result.error


def test_fence_guest_node_fails_its_container():
    cluster = ClusterClient(FakeClusterRunner())
    result = actions.execute_fence(cluster, actions.prepare_fence(cluster, "guest1"))
    assert cluster.runner.writes() == [["crm_resource", "--fail", "--resource=vm-guest1", "--node=node1"]]
    assert result.ok and result.plan.method == "container-recovery"
    assert any("crm_resource --cleanup --resource vm-guest1" in r.message for r in result.reports)


def test_fence_refuses_unknown_nodes_unless_forced():
    cluster = ClusterClient(FakeClusterRunner())
    with pytest.raises(RefusedError):
        actions.prepare_fence(cluster, "ghost")
    preparation = actions.prepare_fence(cluster, "ghost", force=True)
    assert preparation.plan.argv == ("stonith_admin", "--reboot=ghost")


def test_fencing_needs_a_live_cluster():
    cluster = FileCluster(FakeClusterRunner())
    with pytest.raises(RemotectlError, match="live cluster"):
        actions.prepare_fence(cluster, "remote1")
    with pytest.raises(RemotectlError, match="live cluster"):
        actions.fence_history(cluster)
    assert cluster.runner.calls == []


def test_fence_history_action_filters_by_node():
    cluster = ClusterClient(FakeClusterRunner())
    history = actions.fence_history(cluster, "remote1")
    assert cluster.runner.calls == [["stonith_admin", "--history=remote1", "--verbose", "--output-as=xml"]]
    assert [e.target for e in history.events] == ["remote1", "remote1"]
    everything = actions.fence_history(cluster)
    assert cluster.runner.calls[-1][1] == "--history=*"
    assert list(jsonable(everything)) == ["events", "reports"] and len(everything.events) == 4


# --- the command line ------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_cluster(monkeypatch):
    from remotectl.cli import app as app_module
    from remotectl.cli import cli
    from remotectl.cli.fence import fence_command

    runner = FakeClusterRunner()
    cluster = ClusterClient(runner)
    monkeypatch.setattr(app_module.App, "cluster", lambda self: cluster)
    # click caches each command's help option on first use; scripts/gen_docs.py (tests/unit/test_generated.py)
    # renders pages with plain contexts and would pick up the cached "-h, --help" from these invocations
    saved = {command: getattr(command, "_help_option", None) for command in (cli, fence_command)}
    yield runner
    for command, option in saved.items():
        if hasattr(command, "_help_option"):
            command._help_option = option


def invoke(args):
    from remotectl.cli import cli

    return CliRunner().invoke(cli, args, prog_name="remotectl", standalone_mode=False)


def exit_code(result):
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return getattr(result.exception, "exit_code", 1)
    return result.return_value


def test_cli_fence_without_tty_or_yes_is_refused(fake_cluster):
    result = invoke(["fence", "remote1"])
    assert isinstance(result.exception, RefusedError)
    assert exit_code(result) == ExitCode.REFUSED
    assert "--yes" in result.exception.message
    assert fake_cluster.writes() == []


def test_cli_fence_with_yes(fake_cluster):
    result = invoke(["fence", "remote1", "--yes", "--json"])
    assert result.exception is None, result.exception
    assert result.return_value == ExitCode.OK
    assert fake_cluster.writes() == [["stonith_admin", "--reboot=remote1"]]
    assert '"method": "stonith"' in result.stdout


def test_cli_fence_history_and_node_named_history(fake_cluster):
    result = invoke(["fence", "history", "--json"])
    assert result.exception is None and '"events"' in result.stdout
    assert fake_cluster.writes() == []
    result = invoke(["fence", "history", "history"])
    assert fake_cluster.calls[-1] == ["stonith_admin", "--history=history", "--verbose", "--output-as=xml"]
    result = invoke(["fence", "--node", "history", "--yes"])
    assert isinstance(result.exception, RefusedError)  # crm_mon does not show a node called history
    assert "history is not a node of this cluster" in result.exception.message
    assert fake_cluster.writes() == []


@pytest.mark.parametrize(
    "args",
    [["fence"], ["fence", "a", "b"], ["fence", "history", "a", "b"], ["fence", "history", "--action", "off"],
     ["fence", "x", "--node", "y"]],
)
def test_cli_fence_usage_errors(fake_cluster, args):
    import click

    result = invoke(args)
    assert isinstance(result.exception, click.UsageError)
    assert fake_cluster.writes() == []
