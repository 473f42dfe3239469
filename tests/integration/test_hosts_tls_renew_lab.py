"""X.509 after the first issue, on the hosts lab with Pacemaker 3.0 (LAB_PACEMAKER=3.0), without switching the
cluster: a node whose env file names certificate files (its running daemons keep PSK: they read the file at start)
is judged by `doctor` from those settings and that certificate, and `tls renew` renews it; `check` without --ca
checks an X.509 pacemaker-remoted (spare1's own, outside the cluster) with the PCMK_ca_file its host names."""

import json
import subprocess
import sys

import pytest

from tests.integration.test_hosts_tls_lab import (LOG, REMOTE_DIR, UNIT, _all_online, _wait_for_log,
                                                  clean_tls, push_spare1_certificate, rctl)

pytestmark = [pytest.mark.hosts_lab, pytest.mark.lab_pacemaker("3.0")]  # deselected on other versions
__all__ = ["clean_tls"]  # the fixture

ENV_FILE = "/etc/default/pacemaker"
SETTINGS = "".join(f"PCMK_{role}_file={REMOTE_DIR}/{name}\n" for role, name in
                   (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")))


def _with_settings(lab, name):
    """Append the X.509 settings to the host's env file; returns what to put back."""
    before = lab.host_run(name, ["cat", ENV_FILE], check=False)
    original = before.stdout if before.returncode == 0 else None
    # a newline first: the file's last line may have none
    lab.host_run(name, ["sh", "-c", 'cat >> "$1"', "-", ENV_FILE], input="\n" + SETTINGS)
    return original


def _restore(lab, name, original):
    if original is None:
        lab.host_run(name, ["rm", "-f", "--", ENV_FILE])
    else:
        lab.host_run(name, ["sh", "-c", 'cat > "$1"', "-", ENV_FILE], input=original)


def test_doctor_flags_an_expiring_certificate_and_the_mode_and_renew_replaces_it(clean_tls, tmp_path):
    lab = clean_tls
    before = _all_online(lab)
    directory = str(tmp_path / "ca")
    assert rctl(lab, "tls", "ca", "create", "--dir", directory).returncode == 0
    issued = rctl(lab, "tls", "issue", "remote2", "--days", "10", "--dir", directory)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    assert rctl(lab, "tls", "push", "remote2", "--dir", directory).returncode == 0
    key_before = open(f"{directory}/remote2.key", "rb").read()
    original = _with_settings(lab, "remote2")
    try:
        proc = rctl(lab, "doctor", "remote2", "--json")
        doc = json.loads(proc.stdout)
        found = {(f["check"], f["severity"], f["node"]) for f in doc["findings"]}
        assert ("cert-expiry", "warning", "remote2") in found, doc["findings"]
        assert ("tls-mode-mismatch", "critical", "remote2") in found and ("tls-mode-mixed", "warning", None) in found
        assert proc.returncode == 1
        expiry = next(f for f in doc["findings"] if f["check"] == "cert-expiry")
        assert "expires in 9 day(s)" in expiry["message"] or "expires in 10 day(s)" in expiry["message"], expiry
        assert expiry["fix"] == "remotectl tls renew remote2"
        # the PSK probe's tls-not-psk is not what doctor reports for a node its settings put in X.509 mode: the
        # running remoted is still on PSK here, and its key still matches
        assert not [f for f in doc["findings"] if f["check"] in ("key-mismatch", "config-drift")], doc["findings"]
        dry = json.loads(rctl(lab, "tls", "renew", "remote2", "--dir", directory, "--dry-run", "--json").stdout)
        assert [(n["node"], n["status"], n["push"]) for n in dry["nodes"]] == [("remote2", "would-renew", None)]
        renewed = rctl(lab, "tls", "renew", "remote2", "--dir", directory, "--json")
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        row = json.loads(renewed.stdout)["nodes"][0]
        assert (row["status"], row["push"], row["tls_mode"], row["restart"]) == ("renewed", "written", "x509",
                                                                                 "needed"), row
        assert json.loads(renewed.stdout)["restart_needed"] == ["remote2"]
        assert "tls-restart-needed" in [r["code"] for r in json.loads(renewed.stdout)["reports"]]
        assert open(f"{directory}/remote2.key", "rb").read() == key_before
        verified = json.loads(rctl(lab, "tls", "verify", "remote2", "--dir", directory, "--json").stdout)
        node = verified["nodes"][0]
        assert node["problems"] == [] and node["days_left"] >= 364, node
        assert node["certificate"]["fingerprint"] == row["fingerprint"]
        again = json.loads(rctl(lab, "tls", "renew", "remote2", "--dir", directory, "--json").stdout)
        assert [(n["status"], n["push"], n["restart"]) for n in again["nodes"]] == [("current", "unchanged", None)]
    finally:
        _restore(lab, "remote2", original)
    assert _all_online(lab) == before


def test_check_without_ca_uses_the_pcmk_ca_file_of_the_host(clean_tls, tmp_path):
    lab = clean_tls
    directory = tmp_path / "ca"
    push_spare1_certificate(lab, directory)
    address = lab.host("spare1").address
    original = _with_settings(lab, "spare1")
    try:
        started = lab.host_run("spare1", ["systemd-run", "--unit", UNIT, "-p", f"EnvironmentFile={ENV_FILE}",
                                          f"--setenv=PCMK_logfile={LOG}", "/usr/sbin/pacemaker-remoted"])
        assert started.returncode == 0, started.stderr
        _wait_for_log(lab, "accepting connections")
        # from spare1's own namespace, as the 200-probe test does: its remoted is not reachable from here
        done = subprocess.run(["ip", "netns", "exec", lab.host("spare1").netns, sys.executable, "-m", "remotectl",
                               *lab.remotectl_ssh_options, "check", address, "--key", str(lab.authkey), "--json"],
                              capture_output=True, text=True, timeout=240)
        doc = json.loads(done.stdout)
        (entry,) = doc["results"]
        assert done.returncode == 0, (entry["verdict"], entry["hint"], entry.get("detail"), doc["reports"])
        assert (entry["verdict"], entry["ok"], entry["ca"]) == ("x509-trusted", True, f"PCMK_ca_file of {address}")
        assert entry["subject"] == "CN=spare1" and entry["days_left"] >= 28 and doc["mode"] == "here"
        assert "Remote client connection accepted" not in lab.host_run("spare1", ["cat", LOG]).stdout
    finally:
        lab.host_run("spare1", ["systemctl", "stop", UNIT], check=False)
        lab.host_run("spare1", ["systemctl", "reset-failed", UNIT], check=False)
        lab.host_run("spare1", ["rm", "-rf", "--", LOG], check=False)
        _restore(lab, "spare1", original)
