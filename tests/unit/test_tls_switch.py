"""`tls enable` / `tls disable`: the pure rules (env file edits, versions, the restart order, the plan) and the two
hooks of the shared restart procedure they use (edit under maintenance, prove and roll back before it ends)."""

import pytest

from remotectl.actions.authkey import restart as procedure
from remotectl.actions.targets import Target
from remotectl.cli import run
from remotectl.pacemaker import tls_switch as model
from remotectl.reports import Reporter
from tests.unit.test_authkey_actions import MM_OFF, MM_ON, FakeRestarter

PATHS = {"ca": "/etc/pacemaker/tls/ca.pem", "cert": "/etc/pacemaker/tls/cert.pem", "key": "/etc/pacemaker/tls/key.pem"}
DEBIAN = """# Pacemaker settings
# PCMK_ca_file
# Default: PCMK_ca_file=""
VALGRIND_OPTS="--trace-children=no"
"""


def test_enable_appends_the_settings_under_a_mark_and_disable_gives_the_file_back():
    enabled = model.edit_env_text(DEBIAN, model.enable_settings(PATHS))
    assert enabled == DEBIAN + "\n" + model.MARK + "\nPCMK_ca_file=/etc/pacemaker/tls/ca.pem\n" \
        "PCMK_cert_file=/etc/pacemaker/tls/cert.pem\nPCMK_key_file=/etc/pacemaker/tls/key.pem\n"
    assert model.edit_env_text(enabled, model.enable_settings(PATHS)) == enabled  # a second enable changes nothing
    assert model.edit_env_text(enabled, model.disable_settings()) == DEBIAN


def test_existing_assignments_are_replaced_in_place_and_duplicates_dropped():
    text = "A=1\nexport PCMK_cert_file='/old/cert.pem'\n# PCMK_key_file=/commented\nPCMK_cert_file=/older\nB=2\n"
    out = model.edit_env_text(text, model.enable_settings(PATHS))
    lines = out.splitlines()
    assert lines[:4] == ["A=1", "PCMK_cert_file=/etc/pacemaker/tls/cert.pem", "# PCMK_key_file=/commented", "B=2"]
    assert lines[-2:] == ["PCMK_ca_file=/etc/pacemaker/tls/ca.pem", "PCMK_key_file=/etc/pacemaker/tls/key.pem"]
    removed = model.edit_env_text("PCMK_crl_file=/crl.pem\nA=1\n PCMK_ca_file = /x\n", model.disable_settings())
    assert removed == "A=1\n"


def test_a_value_that_needs_quoting_is_refused():
    with pytest.raises(ValueError, match="cannot be written"):
        model.edit_env_text("", model.enable_settings(dict(PATHS, ca="/etc/my dir/ca.pem")))


def test_every_env_file_the_node_has_is_edited_and_none_is_unknown():
    settings = model.enable_settings(PATHS)
    both = {"/etc/sysconfig/pacemaker": "", "/etc/default/pacemaker": "A=1\n"}
    assert [e.path for e in model.env_edits(both, settings)] == ["/etc/sysconfig/pacemaker", "/etc/default/pacemaker"]
    done = {path: model.edit_env_text(text, settings) for path, text in both.items()}
    assert model.env_edits(done, settings) == []
    assert model.env_edits({}, settings) is None


def test_versions():
    assert model.version_refusal("r1", (2, 1, 5)) == "r1: Pacemaker 2.1.5 has no X.509 mode (it needs 3.0.0)"
    assert "unknown" in model.version_refusal("r1", None)
    assert model.version_refusal("r1", (3, 0, 0)) is None
    versions = {"r1": (3, 0, 1), "r2": (3, 0, 3), "g1": (3, 0, 2), "r3": None}
    assert model.auth_bypass(versions) == ["g1", "r2"]
    message = model.auth_bypass_message(["g1", "r2"], versions)
    assert "3.0.2 and 3.0.3" in message and "g1 (3.0.2), r2 (3.0.3)" in message and "NOT trusted" in message


def test_restart_order_cluster_nodes_first_then_every_remoted():
    steps = model.switch_steps([("r1", "remote"), ("n1", "cluster"), ("g1", "guest"), ("n2", "cluster")], "x509")
    assert [(s.node, s.kind, " ".join(s.argv)) for s in steps] == [
        ("n1", "cluster", "systemctl restart pacemaker"), ("n2", "cluster", "systemctl restart pacemaker"),
        ("r1", "remote", "systemctl restart pacemaker_remote"), ("g1", "guest", "systemctl restart pacemaker_remote")]
    assert all(s.needed for s in steps)


def test_plan_names_every_node_and_the_rollback():
    steps = model.switch_steps([("n1", "cluster"), ("r1", "remote")], "psk")
    edits = {"n1": model.env_edits({"/etc/default/pacemaker": "PCMK_ca_file=/x\n"}, model.disable_settings()),
             "r1": []}
    lines = model.switch_plan("psk", edits, steps, model.disable_settings())
    text = "\n".join(lines)
    assert lines[0] == "switch every node to the PSK authkey:"
    assert "node maintenance on r1, then maintenance-mode=true" in text
    assert "- n1: /etc/default/pacemaker" in text and "- r1: already set (unchanged)" in text
    assert "PSK safe probe" in text and "before maintenance ends" in text


# -- the hooks of the shared restart procedure -------------------------------------------------------------------
def _targets():
    return {"n1": Target("n1", "n1", node="n1", type="cluster"), "r1": Target("r1", "r1", node="r1", type="remote")}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_a_failed_preparation_restarts_nothing_and_puts_maintenance_back():
    restarter = FakeRestarter()
    steps = model.switch_steps([("n1", "cluster"), ("r1", "remote")], "x509")
    rows = procedure.run_restarts(steps, _targets(), restarter, Reporter(), prepare=lambda run: False)
    assert not [entry for entry in restarter.log if entry[0] == "run"]
    assert MM_ON in restarter.log and MM_OFF in restarter.log
    assert {r.node: r.status for r in rows if r.kind in ("cluster", "remote")} == {"n1": "skipped", "r1": "skipped"}


def test_finish_runs_under_maintenance_and_can_restart_again_before_it_ends():
    restarter = FakeRestarter()
    steps = model.switch_steps([("n1", "cluster"), ("r1", "remote")], "x509")
    seen = []

    def finish(run, done):
        seen.append((list(done), MM_OFF in restarter.log))
        again, failed = run.restart_each(steps)
        assert not failed
        restarter.log.append(("rolled back",))
        return again

    journal = procedure.Journal(["n1", "r1"], "sha256:ca", kind="tls-switch")
    journal.extra = {"mode": "x509"}
    procedure.run_restarts(steps, _targets(), restarter, Reporter(), journal, finish=finish)
    assert seen == [(["n1", "r1"], False)]
    runs = [entry[1] for entry in restarter.log if entry[0] == "run"]
    assert runs == ["n1", "r1", "n1", "r1"]
    assert restarter.log.index(("rolled back",)) < restarter.log.index(MM_OFF)
    assert not journal.load()  # removed once the procedure ended


def test_journal_keeps_the_extra_record_for_resume():
    journal = procedure.Journal(["n1", "r1"], "sha256:ca", kind="tls-switch")
    journal.extra = {"mode": "psk", "backups": {"n1": {"/etc/default/pacemaker": "/etc/default/pacemaker.bak-1"}}}
    journal.save()
    again = procedure.Journal(["r1", "n1"], kind="tls-switch")
    assert again.load() and again.extra == journal.extra and again.fingerprint == "sha256:ca"
    assert not procedure.Journal(["n1", "r1"]).load()  # rotate's journal is another file


@pytest.mark.parametrize("command", ["enable", "disable"])
def test_json_without_yes_is_refused_before_anything_is_contacted(command, capsys):
    assert run(["--cluster", "ssh:nowhere.invalid", "tls", command, "--json"]) == 4
    captured = capsys.readouterr()
    assert captured.out == "" and "add --yes to confirm (--json never asks)" in captured.err


def test_rotate_restart_waits_for_an_interrupted_switch():
    from remotectl.actions import authkey as actions
    from remotectl.reports import RefusedError
    from tests.unit.test_authkey_actions import factory, make_hosts, target

    hosts = make_hosts("n1", "r1", version="Pacemaker 3.0.3")
    journal = procedure.Journal(["n1", "r1"], "sha256:ca", kind="tls-switch")
    journal.extra = {"mode": "x509"}
    journal.save()
    with pytest.raises(RefusedError, match="tls enable"):
        actions.rotate_key([target("n1", "cluster"), target("r1", "remote")], factory(hosts), restart=True,
                           restarter=FakeRestarter())


# -- disable end to end on fake hosts (the same code path as enable after its preflight) -----------------------
ENV = "/etc/default/pacemaker"
X509_ENV = DEBIAN + "PCMK_ca_file=/etc/pacemaker/tls/ca.pem\nPCMK_cert_file=/etc/pacemaker/tls/cert.pem\n" \
    "PCMK_key_file=/etc/pacemaker/tls/key.pem\n"


def _x509_hosts():
    from tests.fakes import FakeHost
    from tests.unit.test_authkey_actions import KEY_B

    class EnvHost(FakeHost):
        """The env file is a file like any other: read by the probe, written and restored by the scripts."""

        def _probe(self, argv, args):
            self.env = {p: self.files[p][0].decode() for p in ("/etc/sysconfig/pacemaker", ENV) if p in self.files}
            return super()._probe(argv, args)

        def run(self, argv, **kwargs):
            if argv[:1] == ["chmod"]:
                self.files[argv[-1]][1] = int(argv[1], 8)
                return self._result(argv)
            return super().run(argv, **kwargs)

    hosts = {}
    for name in ("n1", "r1"):
        hosts[name] = EnvHost(name, version="Pacemaker 3.0.3")
        hosts[name].put("/etc/pacemaker/authkey", KEY_B)
        hosts[name].put(ENV, X509_ENV.encode(), mode=0o644, owner="root", group="root")
    return hosts


def _disable(hosts, restarter):
    from remotectl.actions.tls import switch
    from tests.fakes import FakeClock
    from tests.unit.test_authkey_actions import factory, target

    clock = FakeClock()
    restarter.clock, restarter.sleep, restarter.poll = clock, clock.sleep, 1.0

    targets = [target("n1", "cluster"), target("r1", "remote")]
    plan = switch.prepare_switch(targets, factory(hosts), mode="psk", remote_dir="/etc/pacemaker/tls",
                                 restarter=restarter)
    assert [e.path for e in plan.edits["n1"]] == [ENV] and not plan.nothing_to_do
    return switch.execute_switch(plan, restarter)


def test_disable_edits_restarts_and_proves_with_the_psk_probe():
    hosts = _x509_hosts()
    restarter = FakeRestarter()
    result = _disable(hosts, restarter)
    assert result.ok and result.exit_code() == 0, result.reports
    assert {n.node: n.status for n in result.nodes} == {"n1": "edited", "r1": "edited"}
    for host in hosts.values():
        assert host.data(ENV).decode() == DEBIAN and host.files[ENV][1] == 0o644
        (backup,) = [p for p in host.files if p.startswith(ENV + ".bak-")]
        assert host.data(backup).decode() == X509_ENV
    assert [p.verdict for p in result.probes] == ["match"]
    mm_on, mm_off = restarter.log.index(MM_ON), restarter.log.index(MM_OFF)
    assert mm_on < restarter.log.index(("run", "n1", "systemctl restart pacemaker")) < mm_off


def test_a_switch_the_probe_does_not_prove_is_rolled_back_before_maintenance_ends():
    hosts = _x509_hosts()
    restarter = FakeRestarter(verdicts={"r1": "tls-not-psk"})
    result = _disable(hosts, restarter)
    assert not result.ok and result.rolled_back and result.exit_code() == 3
    codes = [r.code for r in result.reports]
    assert "tls-switch-not-proven" in codes and "restart-rollback" in codes
    for host in hosts.values():
        assert host.data(ENV).decode() == X509_ENV and host.files[ENV][1] == 0o644
    assert {n.node: n.status for n in result.nodes} == {"n1": "restored", "r1": "restored"}
    runs = [i for i, entry in enumerate(restarter.log) if entry[0] == "run"]
    assert len(runs) == 4 and runs[-1] < restarter.log.index(MM_OFF)
    assert restarter.clock() >= 30  # the probe was given its time before the rollback


def test_disable_is_refused_without_the_same_authkey_everywhere():
    from remotectl.reports import RefusedError

    hosts = _x509_hosts()
    del hosts["r1"].files["/etc/pacemaker/authkey"]
    with pytest.raises(RefusedError, match="authkey on every node"):
        _disable(hosts, FakeRestarter())
    assert all(h.data(ENV).decode() == X509_ENV for h in hosts.values())


def test_an_interrupted_disable_stays_in_maintenance_and_resume_finishes_it():
    from remotectl.actions.tls import switch
    from remotectl.reports import RefusedError
    from tests.unit.test_authkey_actions import Interrupted, factory, target

    hosts = _x509_hosts()
    with pytest.raises(KeyboardInterrupt):
        _disable(hosts, Interrupted("r1"))
    assert all(h.data(ENV).decode() == DEBIAN for h in hosts.values())  # edited, n1 restarted, r1 not yet
    targets = [target("n1", "cluster"), target("r1", "remote")]
    with pytest.raises(RefusedError, match="tls disable --resume"):
        switch.prepare_switch(targets, factory(hosts), mode="psk", remote_dir="/etc/pacemaker/tls")
    with pytest.raises(RefusedError, match="not `tls enable`"):
        switch.prepare_switch(targets, factory(hosts), mode="x509", remote_dir="/etc/pacemaker/tls", resume=True)
    restarter = FakeRestarter(maintenance="true", node_maintenance={"r1": "true"})
    plan = switch.prepare_switch(targets, factory(hosts), mode="psk", remote_dir="/etc/pacemaker/tls", resume=True,
                                 restarter=restarter)
    assert plan.edits == {"n1": [], "r1": []} and plan.lines[0].startswith("resume")
    result = switch.execute_switch(plan, restarter)
    assert result.ok, result.reports
    assert [entry[1] for entry in restarter.log if entry[0] == "run"] == ["r1"]  # n1 was restarted before
    assert MM_OFF in restarter.log  # maintenance back to what it was before the interrupted run (unset)
    assert ("cluster", "crm_attribute --node=r1 --name=maintenance --delete --lifetime=forever") in restarter.log
    with pytest.raises(RefusedError, match="nothing to resume"):
        switch.prepare_switch(targets, factory(hosts), mode="psk", remote_dir="/etc/pacemaker/tls", resume=True)


def test_a_rollback_that_cannot_restore_an_env_file_keeps_the_cluster_in_maintenance():
    from remotectl.actions.authkey.restart import Journal

    hosts = _x509_hosts()
    hosts["r1"].fail_restore = True
    restarter = FakeRestarter(verdicts={"r1": "tls-not-psk"})
    result = _disable(hosts, restarter)
    assert not result.ok and result.exit_code() == 3
    codes = [r.code for r in result.reports]
    assert "tls-rollback-failed" in codes and "maintenance-kept" in codes
    assert MM_ON in restarter.log and MM_OFF not in restarter.log  # mixed modes: ending maintenance could fence
    assert result.restarts[-1].kind == "maintenance-mode" and result.restarts[-1].status == "failed"
    assert Journal(["n1", "r1"], kind="tls-switch").load()  # for --resume
