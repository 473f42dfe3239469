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
