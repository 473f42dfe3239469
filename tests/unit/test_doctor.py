"""`remotectl doctor`: the pure findings (tests/data/cib-doctor: CIBs of the hosts lab with its faults injected),
the live rules on plain facts, the causes, and the text / JSON / nagios / prometheus output."""

import json
import os

import pytest

from remotectl.actions.doctor import DoctorResult, NodeHealth
from remotectl.cli import run
from remotectl.cli.doctor import render_nagios, render_prometheus
from remotectl.pacemaker import diagnosis as dx
from remotectl.pacemaker.authkey import Problem, remote_settings
from remotectl.pacemaker.constraints import CibIndex
from tests.fakes import DATA

CIBS = DATA / "cib-doctor"
GOLDEN = DATA / "golden"


def index(name):
    return CibIndex((CIBS / name).read_text())


def checks(findings):
    return sorted(((f.check, f.node) for f in findings), key=lambda item: (item[0], item[1] or ""))


# --- from the CIB ----------------------------------------------------------------------------------------------------


def test_healthy_cib_has_no_findings():
    cib = index("healthy.xml")
    assert dx.no_reconnect_interval(cib) == dx.misuse_findings(cib) == dx.stale_nodes(cib) == []
    assert dx.connection_failures(cib) == []


def test_faults_cib_names_each_fault_and_its_fix():
    cib = index("faults.xml")
    (reconnect,) = dx.no_reconnect_interval(cib)
    assert (reconnect.node, reconnect.severity, reconnect.fix_on) == ("remote2", "warning", "cluster")
    assert reconnect.fix == ("crm_resource --resource remote2 --set-parameter reconnect_interval "
                             "--parameter-value 60s")
    (stale,) = dx.stale_nodes(cib)
    assert (stale.check, stale.node, stale.fix) == ("stale-node", "remote9", "crm_node --force --remove=remote9")
    assert stale.repair.argvs == (("crm_node", "--force", "--remove=remote9"),) and stale.repair.on == "cluster"
    (failure,) = dx.connection_failures(cib)
    assert (failure.resource, failure.node, failure.on, failure.fail_count) == ("remote1", "remote1", "node1", 1)
    assert failure.rc == 1 and failure.exit_reason == "Simulated failure"
    (finding,) = dx.failure_findings([failure], live=False, healthy=set(), offline=set())
    assert finding.fix == "crm_resource --cleanup --resource=remote1 --node=node1"
    assert "cannot tell" in finding.message and finding.repair is None  # --fix only when the cause is known gone
    (live,) = dx.failure_findings([failure], live=True, healthy={"remote1"}, offline=set())
    assert live.repair.argvs == (("crm_resource", "--cleanup", "--resource=remote1", "--node=node1"),)
    (offline,) = dx.failure_findings([failure], live=True, healthy=set(), offline={"remote1"})
    assert offline.repair is None and offline.fix == live.fix
    (kept_out,) = dx.failure_findings([failure], live=True, healthy=set(), offline={"remote1"}, reachable={"remote1"})
    assert kept_out.repair == live.repair and kept_out.severity == "critical"


def test_failure_severity_depends_on_whether_the_cause_is_gone():
    failure = dx.ConnectionFailure("remote1", "remote1", "node1", 1000000, "remote1_start_0", 1)
    assert "INFINITY" in failure.describe()
    (gone,) = dx.failure_findings([failure], live=True, healthy={"remote1"}, offline=set())
    (down,) = dx.failure_findings([failure], live=True, healthy=set(), offline={"remote1"})
    (other,) = dx.failure_findings([failure], live=True, healthy=set(), offline=set())
    assert (gone.severity, down.severity, other.severity) == ("warning", "critical", "info")


def test_a_probe_that_finds_the_connection_running_is_no_failure():
    op = ('<lrm_rsc_op id="remote2_last_failure_0" operation_key="remote2_monitor_0" operation="monitor" '
          'transition-key="7:19:7:x" rc-code="{rc}" op-status="0" interval="0"/>')
    for rc, failed in (("0", False), ("1", True)):
        text = (CIBS / "healthy.xml").read_text().replace(
            '<lrm_resource id="remote2" type="remote" class="ocf" provider="pacemaker">',
            '<lrm_resource id="remote2" type="remote" class="ocf" provider="pacemaker">' + op.format(rc=rc), 1)
        assert bool(dx.connection_failures(CibIndex(text))) is failed, rc


def test_connection_in_an_order_constraint():
    (misuse,) = dx.misuse_findings(index("misuse.xml"))
    assert (misuse.check, misuse.node, misuse.severity) == ("connection-misuse", "remote1", "warning")
    assert misuse.fix == "remotectl constraint remove order-remote1-dummy1" and misuse.fix_on == "here"


def test_status_left_for_a_node_no_longer_configured():
    text = (CIBS / "healthy.xml").read_text().replace(
        "</status>", '<node_state remote_node="true" id="ghost" uname="ghost"/></status>')
    (stale,) = dx.stale_nodes(CibIndex(text))
    assert stale.node == "ghost" and "status section" in stale.message


# --- live rules on plain facts ---------------------------------------------------------------------------------------


def cell(source, target, tcp="open", verdict="match"):
    return dx.ProbeCell(source, target, "127.0.2.21:3121", tcp, verdict)


GOOD = "sha256:" + "a" * 64
ODD = "sha256:" + "b" * 64


def test_the_odd_key_is_named_with_the_probe_evidence():
    fps = {"node1": GOOD, "node2": GOOD, "remote1": ODD, "remote2": GOOD}
    cells = [cell("node1", "remote1", verdict="mismatch"), cell("node2", "remote1", verdict="mismatch"),
             cell("node1", "remote2"), cell("node2", "remote2")]
    (finding,) = dx.key_findings(fps, cells)
    assert (finding.check, finding.node, finding.severity) == ("key-mismatch", "remote1", "critical")
    assert "node1, node2 says mismatch" in finding.message


def test_a_cluster_node_with_the_odd_key():
    fps = {"node1": GOOD, "node2": ODD, "remote1": GOOD, "remote2": GOOD}
    cells = [cell("node1", "remote1"), cell("node2", "remote1", verdict="mismatch")]
    (finding,) = dx.key_findings(fps, cells)
    assert finding.node == "node2"


def test_a_stale_key_in_memory():
    fps = {"node1": GOOD, "node2": GOOD, "remote1": GOOD}
    (finding,) = dx.key_findings(fps, [cell("node1", "remote1", verdict="mismatch")])
    assert "stale key in memory" in finding.message
    assert (finding.fix, finding.fix_on) == ("systemctl restart pacemaker_remote", "remote1")


def test_all_keys_equal_no_finding():
    assert dx.key_findings({"node1": GOOD, "remote1": GOOD}, [cell("node1", "remote1")]) == []


def test_port_blocked_from_one_cluster_node():
    cells = [cell("node1", "remote1"), cell("node2", "remote1", tcp="timeout", verdict="tcp-timeout")]
    (finding,) = dx.port_findings(cells, set())
    assert (finding.check, finding.node, finding.fix) == ("port-unreachable", "remote1", None)
    assert "timeout from node2 (open from node1)" in finding.message
    assert dx.port_findings([cell("node1", "remote1", tcp="refused", verdict="refused")], {"remote1"}) == []


def test_service_states():
    states = [dx.ServiceState("remote1", 3121, "pacemaker_remote", "inactive", False),
              dx.ServiceState("remote2", 3121, "pacemaker_remote", "active", False),
              dx.ServiceState("guest1", 3121, "pacemaker_remote", "active", True),
              dx.ServiceState("remote3", 3121, None, None, None)]
    found = {f.node: f for f in dx.service_findings(states)}
    assert set(found) == {"remote1", "remote2", "remote3"}
    assert (found["remote1"].fix, found["remote1"].fix_on) == ("systemctl start pacemaker_remote", "remote1")
    assert found["remote2"].fix == "systemctl restart pacemaker_remote"
    assert found["remote3"].fix is None


def test_key_file_problems():
    unreadable = Problem("unreadable-by-hacluster", "error", "not readable by hacluster")
    files = [dx.KeyFile("node1", "cluster", "/etc/pacemaker/authkey", 4096, (unreadable,)),
             dx.KeyFile("remote1", "remote", "/etc/pacemaker/authkey", 4096, (unreadable,)),  # remoted is root
             dx.KeyFile("remote2", "remote", "/etc/pacemaker/authkey", 8, ()),
             dx.KeyFile("node2", "cluster", "/etc/pacemaker/authkey", None,
                        (Problem("missing", "error", "/etc/pacemaker/authkey is missing"),))]
    found = {f.node: f for f in dx.key_file_findings(files)}
    assert set(found) == {"node1", "remote2", "node2"}
    assert found["node1"].fix == ("chown hacluster:haclient -- /etc/pacemaker/authkey && chmod 0400 -- "
                                  "/etc/pacemaker/authkey") and found["node1"].fix_on == "node1"
    assert found["node1"].repair.on == "node1" and found["node2"].repair is None
    # owner/mode is applied by --fix only on a key with the right bytes
    majority = {"node1": "sha256:aa", "node2": "sha256:aa", "remote1": "sha256:aa"}
    kept = {f.node: f for f in dx.keep_safe_repairs(list(found.values()), majority)}
    assert kept["node1"].repair is not None and kept["node1"].fix == found["node1"].fix
    odd = dict(majority, node1="sha256:bb", remote2="sha256:bb")
    assert {f.node: f for f in dx.keep_safe_repairs(list(found.values()), odd)}["node1"].repair is None
    assert {f.node: f for f in dx.keep_safe_repairs(list(found.values()), {})}["node1"].repair is None
    assert found["node2"].fix is None and "needs a person" in found["node2"].message
    assert found["remote2"].severity == "critical"


def test_config_drift():
    base = remote_settings({})
    assert base == {"PCMK_remote_port": "3121", "PCMK_authkey_location": "/etc/pacemaker/authkey",
                    "PCMK_tls_priorities": "NORMAL", "mode": "psk"}
    odd = remote_settings({"/etc/default/pacemaker": 'PCMK_tls_priorities="NORMAL:-VERS-TLS1.3"\n'
                                                     "PCMK_remote_port=3122\n"})
    settings = {"node1": base, "node2": base, "remote1": odd}
    types = {"node1": "cluster", "node2": "cluster", "remote1": "remote"}
    found = checks(dx.drift_findings(settings, types, {"remote1": 3121}))
    assert found == [("config-drift", "remote1"), ("config-drift", "remote1")]
    assert dx.drift_findings({"node1": base, "remote1": base}, types, {"remote1": 3121}) == []


def test_version_skew():
    types = {"node1": "cluster", "node2": "cluster", "remote1": "remote"}
    assert dx.version_findings({"node1": (2, 1, 5), "node2": (2, 1, 5), "remote1": (2, 1, 5)}, types) == []
    found = dx.version_findings({"node1": (2, 1, 5), "node2": (3, 0, 3), "remote1": (3, 0, 3)}, types)
    assert checks(found) == [("version-skew", None), ("version-skew", "remote1")]
    assert dx.version_findings({"node1": None, "remote1": (3, 0, 3)}, types) == []
    mixed = dx.version_findings({"node1": (2, 1, 5), "node2": (2, 1, 5), "remote1": (3, 0, 3)}, types)
    assert [(f.check, f.severity, f.node) for f in mixed] == [("version-skew", "warning", "remote1")]
    refused = dx.version_findings({"node1": (3, 0, 3), "node2": (3, 0, 3), "remote1": (1, 1, 14)}, types)
    assert [(f.severity, f.node) for f in refused] == [("critical", "remote1")]
    assert "refuse" in refused[0].message
    assert dx.version_findings({"node1": (3, 0, 3), "node2": (3, 0, 3), "remote1": (2, 1, 5)}, types) == []


def test_causes_of_offline_nodes():
    service = dx.Finding("service-down", "critical", "remote1", "inactive")
    failure = dx.Finding("failed-connection", "critical", "remote1", "fail count")
    unreadable = dx.Finding("key-unreadable", "critical", "node1", "unreadable")
    found = dx.mark_causes([failure, service, unreadable], ["remote1", "remote2"], ["node1"])
    assert service.cause and not failure.cause
    assert unreadable.cause and "why remote2 is offline" in unreadable.message
    assert not [f for f in found if f.check == "node-offline"]
    (unexplained,) = dx.mark_causes([failure], ["remote3"], ["node1"])[1:]
    assert (unexplained.check, unexplained.node, unexplained.severity) == ("node-offline", "remote3", "critical")
    assert unexplained.cause and unexplained.fix is None  # no resource known
    (refresh,) = dx.mark_causes([], ["remote3"], [], {"remote3": "remote3"})
    assert (refresh.fix, refresh.fix_on) == ("crm_resource --refresh --resource remote3", "cluster")


# --- output ----------------------------------------------------------------------------------------------------------


def result(findings):
    nodes = [NodeHealth("remote1", "remote", False, False, {"node1": True, "node2": False}, 1),
             NodeHealth('we"ird\\', "guest", True, True, {"node1": True}, 0)]
    return DoctorResult(dx.sort_findings(findings), nodes, list(dx.CHECKS), [], "live")


def test_exit_codes_and_nagios():
    crit = dx.Finding("key-mismatch", "critical", "remote1", "odd key", cause=True)
    warn = dx.Finding("no-reconnect-interval", "warning", "remote1", "no interval")
    info = dx.Finding("failed-connection", "info", "remote1", "later")
    assert [result(f).exit_code() for f in ([crit, warn], [warn], [info], [])] == [1, 3, 0, 0]
    line = render_nagios(result([crit, warn]))
    assert line.startswith("REMOTECTL DOCTOR CRITICAL - remote1 key-mismatch; remote1 no-reconnect-interval | ")
    assert line.count("|") == 1 and "\n" not in line
    perf = line.split("|")[1].split()
    assert perf == ["critical=1;;1", "warning=1;1", "info=0", "nodes=2", "offline=1"]
    assert render_nagios(result([])).startswith("REMOTECTL DOCTOR OK - ")


def test_prometheus_output_parses():
    parser = pytest.importorskip("prometheus_client.parser")
    text = render_prometheus(result([dx.Finding("key-mismatch", "critical", "remote1", "odd key")]))
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert set(families) == {"remotectl_node_online", "remotectl_node_key_match", "remotectl_node_port_open",
                             "remotectl_node_fail_count", "remotectl_doctor_findings", "remotectl_doctor_finding"}
    online = {s.labels["node"]: s.value for s in families["remotectl_node_online"].samples}
    assert online == {"remote1": 0, 'we"ird\\': 1}
    ports = {(s.labels["node"], s.labels["from"]): s.value for s in families["remotectl_node_port_open"].samples}
    assert ports[("remote1", "node2")] == 0
    findings = {s.labels["severity"]: s.value for s in families["remotectl_doctor_findings"].samples}
    assert findings == {"critical": 1, "warning": 0, "info": 0}


def _golden(name, argv, capsys):
    code = run(argv)
    captured = capsys.readouterr()
    shown = [a if not a.startswith(str(DATA)) else os.path.relpath(a, DATA.parent.parent) for a in argv]
    got = f"$ remotectl {' '.join(shown)}\n--- exit {code}\n--- stdout\n{captured.out}--- stderr\n{captured.err}"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("REMOTECTL_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert path.exists(), f"no golden file {path.name}: run with REMOTECTL_UPDATE_GOLDEN=1 and review it"
    assert got == path.read_text()
    return code, captured


def test_text_output_on_a_support_dump(capsys):
    code, _ = _golden("doctor-cib-faults", ["--cib", str(CIBS / "faults.xml"), "doctor"], capsys)
    assert code == 3


def test_json_on_a_support_dump(capsys):
    code = run(["--cib", str(CIBS / "faults.xml"), "doctor", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and doc["source"] == "cib-file" and doc["healthy"] is False
    assert sorted(s["check"] for s in doc["skipped"]) == sorted(dx.LIVE_CHECKS)
    assert checks(dx.Finding(**f) for f in doc["findings"]) == [
        ("failed-connection", "remote1"), ("no-reconnect-interval", "remote2"), ("stale-node", "remote9")]
    assert doc["counts"] == {"critical": 0, "warning": 3, "info": 0}
    node = doc["nodes"][0]
    assert set(node) == {"node", "type", "online", "key_match", "port_open", "fail_count"}


def test_healthy_dump_exits_0_and_nagios_ok(capsys):
    assert run(["--cib", str(CIBS / "healthy.xml"), "doctor"]) == 0
    assert "healthy: no problem found on 3 remote/guest nodes" in capsys.readouterr().out
    assert run(["--cib", str(CIBS / "healthy.xml"), "doctor", "--format", "nagios"]) == 0
    assert capsys.readouterr().out.startswith("REMOTECTL DOCTOR OK - ")


def test_usage_errors(capsys):
    assert run(["--cib", str(CIBS / "healthy.xml"), "doctor", "nosuch"]) == 2
    assert "no such node: nosuch" in capsys.readouterr().err
    assert run(["--cib", str(CIBS / "healthy.xml"), "doctor", "node1"]) == 2
    assert run(["--cib", str(CIBS / "healthy.xml"), "doctor", "--json", "--format", "nagios"]) == 2
    assert run(["--cib", str(CIBS / "missing.xml"), "doctor", "--format", "nagios"]) == 3
    assert capsys.readouterr().out.startswith("REMOTECTL DOCTOR UNKNOWN - ")


# --- --fix -----------------------------------------------------------------------------------------------------------


def test_fix_plan_applies_only_the_safe_fixes():
    from remotectl.actions.doctor_fix import plan_fixes

    cib = index("faults.xml")
    (failure,) = dx.connection_failures(cib)
    findings = (dx.stale_nodes(cib) + dx.no_reconnect_interval(cib)
                + dx.failure_findings([failure], live=True, healthy={"remote1"}, offline=set())
                + dx.key_findings({"node1": "sha256:aa", "node2": "sha256:aa", "remote1": "sha256:bb"}, [])
                + [dx.Finding("port-unreachable", "critical", "remote2", "dropped (needs a person)")])
    result = DoctorResult(findings, [], list(dx.CHECKS), [], "live")
    fixes = {(f.check, f.node): f for f in plan_fixes(result)}
    assert {key: f.status for key, f in fixes.items()} == {
        ("stale-node", "remote9"): "planned", ("failed-connection", "remote1"): "planned",
        ("no-reconnect-interval", "remote2"): "skipped", ("key-mismatch", "remote1"): "skipped"}
    assert fixes[("key-mismatch", "remote1")].reason == "changes every node: run it yourself"
    assert fixes[("stale-node", "remote9")].repair.argvs == (("crm_node", "--force", "--remove=remote9"),)
    result.fixes = list(fixes.values())
    doc = result.to_json()
    assert doc["fixes"][0] == {"check": "stale-node", "node": "remote9", "fix": "crm_node --force --remove=remote9",
                               "fix_on": "cluster", "status": "planned", "reason": None}
    assert "repair" not in json.dumps(doc) and "fixes" not in DoctorResult([], [], [], [], "live").to_json()


def test_fix_usage_and_refusal(capsys):
    dump = str(CIBS / "faults.xml")
    assert run(["--cib", dump, "doctor", "--yes"]) == 2
    assert "--yes goes with --fix" in capsys.readouterr().err
    assert run(["--cib", dump, "doctor", "--fix", "--yes", "--format", "nagios"]) == 2
    assert run(["--cib", dump, "doctor", "--fix", "--yes"]) == 2
    assert "--fix needs the live cluster" in capsys.readouterr().err
    # --json never asks, and is refused before anything is contacted (here: a cluster that does not exist)
    assert run(["--cluster", "ssh:nowhere.invalid", "doctor", "--fix", "--json"]) == 4
    captured = capsys.readouterr()
    assert captured.out == "" and "add --yes to confirm (--json never asks)" in captured.err
