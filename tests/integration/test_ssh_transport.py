"""SshRunner and the file helpers against a real OpenSSH sshd on loopback."""

import os
import stat

import pytest

from remotectl.transport.base import TransportError
from remotectl.pacemaker.authkey import fingerprint
from remotectl.transport.files import file_states, write_file_atomic
from remotectl.transport.ssh import SshOptions, SshRunner

HOSTILE = ["x; touch /tmp/remotectl-pwned", "$(id)", "`id`", "a b", "'quoted'", '"dq"', "\\", "-n", "", "*"]


def runner_for(sshd, **overrides):
    options = dict(identity_files=(str(sshd.client_key),), known_hosts=str(sshd.known_hosts),
                   config_file=os.devnull)
    options.update(overrides)
    return SshRunner(sshd.destination, SshOptions(**options))


def test_hostile_arguments_arrive_as_literal_arguments(sshd):
    runner = runner_for(sshd)
    try:
        result = runner.run(["printf", "%s\\n", *HOSTILE])
    finally:
        runner.close()
    assert result.rc == 0
    assert result.stdout.split("\n")[:-1] == HOSTILE
    assert not os.path.exists("/tmp/remotectl-pwned")


def test_exit_status_stderr_and_stdin(sshd):
    runner = runner_for(sshd)
    try:
        failing = runner.run(["sh", "-c", "echo oops >&2; exit 7"])
        echoed = runner.run(["cat"], stdin=b"\x00\x01binary\xff")
    finally:
        runner.close()
    assert (failing.rc, failing.stderr) == (7, "oops\n")
    assert echoed.stdout.encode("utf-8", "surrogateescape") != b"" and echoed.rc == 0


def test_large_output_is_drained_without_hanging(sshd):
    runner = runner_for(sshd)
    try:
        result = runner.run(["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x; head -c 300000 /dev/zero >&2"],
                            timeout=60)
    finally:
        runner.close()
    assert result.rc == 0 and len(result.stdout) == 5_000_000 and len(result.stderr) == 300_000


def test_unknown_host_key_is_refused(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    runner = runner_for(sshd, known_hosts=str(empty))
    with pytest.raises(TransportError, match="unknown SSH host key.*--accept-new-host-keys"):
        runner.run(["true"])


def test_accept_new_records_the_key_like_openssh(sshd, tmp_path):
    recorded = tmp_path / "new_known_hosts"
    runner = runner_for(sshd, known_hosts=str(recorded), accept_new_host_keys=True)
    try:
        assert runner.run(["true"]).rc == 0
    finally:
        runner.close()
    host_key = sshd.host_key_pub.read_text().split()[1]
    assert host_key in recorded.read_text()
    assert runner_for(sshd, known_hosts=str(recorded)).run(["true"]).rc == 0


def test_changed_host_key_is_refused_even_with_accept_new(sshd, tmp_path):
    other = tmp_path / "other_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other}")
    algo, key = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[{sshd.host}]:{sshd.port} {algo} {key}\n")
    runner = runner_for(sshd, known_hosts=str(wrong), accept_new_host_keys=True)
    with pytest.raises(TransportError, match="does not match"):
        runner.run(["true"])


def test_ssh_config_alias_is_honoured(sshd, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(f"Host node-alias\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
                      f"  IdentityFile {sshd.client_key}\n")
    runner = SshRunner("node-alias", SshOptions(config_file=str(config), known_hosts=str(sshd.known_hosts)))
    try:
        assert runner.run(["echo", "hi"]).stdout == "hi\n"
    finally:
        runner.close()


def test_connection_refused_is_a_one_line_error(tmp_path):
    runner = SshRunner("127.0.0.1:1", SshOptions(config_file=os.devnull, known_hosts=str(tmp_path / "kh")))
    with pytest.raises(TransportError, match="cannot connect"):
        runner.run(["true"])


def test_atomic_write_mode_backup_and_state(sshd, tmp_path):
    runner = runner_for(sshd)
    target = tmp_path / "pacemaker" / "authkey"
    key = os.urandom(256)
    try:
        write_file_atomic(runner, str(target), key, mode=0o400)
        assert target.read_bytes() == key
        assert stat.S_IMODE(target.stat().st_mode) == 0o400
        newer = os.urandom(4096)
        write_file_atomic(runner, str(target), newer, mode=0o400, backup_path=str(target) + ".bak-1")
        assert target.read_bytes() == newer
        assert (tmp_path / "pacemaker" / "authkey.bak-1").read_bytes() == key
        state, missing = file_states(runner, [str(target), str(tmp_path / "nope")])
    finally:
        runner.close()
    assert state.fingerprint == fingerprint(newer) and state.size == 4096 and state.mode == 0o400
    assert not missing.exists
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".remotectl")] == []


def test_truncated_transfer_never_replaces_the_file(sshd, tmp_path):
    """A transfer whose content does not hash to the expected value (as when the client dies mid-way)
    must leave the old file in place and no temp file behind."""
    from remotectl.transport import files

    runner = runner_for(sshd)
    target = tmp_path / "authkey"
    target.write_bytes(b"old-key")
    try:
        result = files._sh(runner, files._WRITE_SCRIPT, str(target), "400", "", "0" * 64, "", "", stdin=b"partial")
    finally:
        runner.close()
    assert result.rc == 65
    assert target.read_bytes() == b"old-key"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".remotectl")] == []


def test_a_malformed_known_hosts_line_is_skipped_with_a_warning(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("badhost ssh-ed25519 !!!notbase64\n# a comment\ngarbage\n" + sshd.known_hosts.read_text())
    warnings = []
    runner = runner_for(sshd, known_hosts=str(known), on_warning=warnings.append)
    try:
        assert runner.run(["true"]).rc == 0
    finally:
        runner.close()
    assert warnings == [f"{known}: skipped 2 malformed line(s) (1, 3)"]
