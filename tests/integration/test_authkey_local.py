"""authkey generate / fingerprint for real, and the remote file scripts run for real through a LocalRunner."""

import base64
import os
import pty
import stat
import subprocess
import sys
import time

import pytest

from remotectl.pacemaker import authkey as model
from remotectl.reports import RefusedError
from remotectl.transport import files, localfiles
from remotectl.transport.local import LocalRunner
from tests.integration.conftest import require


def remotectl(*args, stdin=b"", stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "remotectl", *args], input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, check=False, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))


def leaks(key: bytes, *texts: bytes) -> bool:
    forms = [key, key.hex().encode(), base64.b64encode(key), key.hex().upper().encode()]
    return any(form in text for form in forms for text in texts)


# -- generate ----------------------------------------------------------------------------------------------------------
def test_generate_default_size_mode_owner_and_fingerprint(tmp_path):
    path = tmp_path / "pacemaker" / "authkey"
    result = remotectl("authkey", "generate", "--output", str(path), "--json")
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    key = path.read_bytes()
    assert len(key) == 256 and doc["size"] == 256
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o400 and doc["mode"] == "0400"
    if os.geteuid() == 0 and localfiles.account_ids("hacluster", "haclient"):
        assert (doc["owner"], doc["group"]) == ("hacluster", "haclient")
    assert doc["fingerprint"] == model.fingerprint(key)
    assert not leaks(key, result.stdout, result.stderr)
    assert [p for p in os.listdir(path.parent) if p.startswith(".remotectl")] == []
    fp = remotectl("authkey", "fingerprint", str(path))
    assert fp.returncode == 0 and fp.stdout.decode().strip() == model.fingerprint(key)
    assert not leaks(key, fp.stdout, fp.stderr)


def test_generate_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "authkey"
    path.write_bytes(b"old key material!")
    refused = remotectl("authkey", "generate", "-o", str(path))
    assert refused.returncode == 4 and b"--force" in refused.stderr
    assert path.read_bytes() == b"old key material!"
    forced = remotectl("authkey", "generate", "-o", str(path), "--force", "--bytes", "512")
    assert forced.returncode == 0 and len(path.read_bytes()) == 512
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


@pytest.mark.parametrize("size,rc", [("15", 2), ("16", 0), ("65536", 0), ("65537", 2), ("abc", 2)])
def test_generate_size_range(tmp_path, size, rc):
    result = remotectl("authkey", "generate", "-o", str(tmp_path / "k"), "--bytes", size)
    assert result.returncode == rc, result.stderr
    if rc == 0:
        assert (tmp_path / "k").stat().st_size == int(size)
    else:
        assert not (tmp_path / "k").exists()


def test_generate_warns_above_openssl_limit(tmp_path):
    result = remotectl("authkey", "generate", "-o", str(tmp_path / "k"), "--bytes", "4096")
    assert result.returncode == 0 and b"OpenSSL" in result.stderr


def test_generate_to_stdout_only_when_not_a_terminal(tmp_path):
    piped = remotectl("authkey", "generate", "--output", "-")
    assert piped.returncode == 0 and len(piped.stdout) == 256
    assert model.fingerprint(piped.stdout).encode() in piped.stderr
    master, slave = pty.openpty()
    try:
        tty = remotectl("authkey", "generate", "--output", "-", stdout=slave)
    finally:
        os.close(slave)
        os.set_blocking(master, False)
        try:
            on_tty = os.read(master, 65536)
        except OSError:
            on_tty = b""
        os.close(master)
    assert tty.returncode == 4 and b"terminal" in tty.stderr
    assert on_tty == b""


def test_fingerprint_of_stdin_and_missing_file(tmp_path):
    result = remotectl("authkey", "fingerprint", "-", stdin=b"x" * 100)
    assert result.stdout.decode().strip() == model.fingerprint(b"x" * 100)
    missing = remotectl("authkey", "fingerprint", str(tmp_path / "nope"))
    assert missing.returncode == 1 and b"does not exist" in missing.stderr and b"Traceback" not in missing.stderr


# -- localfiles ----------------------------------------------------------------------------------------------------
def test_write_secret_file_has_final_mode_before_content_and_is_atomic(tmp_path, monkeypatch):
    seen = []
    real_write = os.write

    def spying_write(fd, data):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spying_write)
    target = tmp_path / "k"
    localfiles.write_secret_file(str(target), b"s" * 300, mode=0o400)
    assert seen and set(seen) == {0o400}
    with pytest.raises(RefusedError):
        localfiles.write_secret_file(str(target), b"t" * 300)
    assert target.read_bytes() == b"s" * 300
    assert sorted(os.listdir(tmp_path)) == ["k"]


def test_write_secret_file_removes_stale_temps_of_dead_writers(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".remotectl.{dead.pid}.abcdef"
    stale.write_bytes(b"partial")
    live = tmp_path / f".remotectl.{os.getpid()}.zzzzzz"
    live.write_bytes(b"in progress")
    localfiles.write_secret_file(str(tmp_path / "k"), b"k" * 32)
    assert not stale.exists() and live.exists()


# -- the remote scripts, for real ------------------------------------------------------------------------------------
def test_write_file_atomic_backup_is_private_and_refuses_to_clobber(tmp_path):
    runner = LocalRunner()
    target = tmp_path / "authkey"
    target.write_bytes(b"old" * 20)
    target.chmod(0o644)
    files.write_file_atomic(runner, str(target), b"new" * 20, mode=0o400, backup_path=str(target) + ".bak-1")
    assert target.read_bytes() == b"new" * 20 and stat.S_IMODE(target.stat().st_mode) == 0o400
    backup = tmp_path / "authkey.bak-1"
    assert backup.read_bytes() == b"old" * 20
    assert stat.S_IMODE(backup.stat().st_mode) & 0o077 == 0
    from remotectl.transport.base import TransportError

    with pytest.raises(TransportError, match="already exists"):
        files.write_file_atomic(runner, str(target), b"newer" * 20, backup_path=str(backup))
    assert target.read_bytes() == b"new" * 20 and backup.read_bytes() == b"old" * 20
    assert [p for p in os.listdir(tmp_path) if p.startswith(".remotectl")] == []


def test_incomplete_transfer_never_installs_and_leaves_no_temp(tmp_path):
    runner = LocalRunner()
    target = tmp_path / "authkey"
    target.write_bytes(b"old" * 20)
    script = files._WRITE_SCRIPT
    result = runner.run(["sh", "-c", script, "remotectl", str(target), "400", "", "0" * 64, "", ""], stdin=b"partial")
    assert result.rc == 65 and target.read_bytes() == b"old" * 20
    assert [p for p in os.listdir(tmp_path) if p.startswith(".remotectl")] == []


def test_file_states_and_stale_temp_cleanup(tmp_path):
    runner = LocalRunner()
    key = tmp_path / "authkey"
    key.write_bytes(b"k" * 64)
    key.chmod(0o640)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".remotectl.{dead.pid}.AAAAAAAA").write_bytes(b"partial")
    (tmp_path / f".remotectl.{os.getpid()}.BBBBBBBB").write_bytes(b"being written")
    old_style = tmp_path / ".remotectl.CCCCCCCC"
    old_style.write_bytes(b"x")
    states = files.file_states(runner, [str(key), str(tmp_path / "missing")], reader="nobody", clean_temps=True)
    assert states.removed_temps == [f".remotectl.{dead.pid}.AAAAAAAA"]
    assert states[0].exists and states[0].size == 64 and states[0].mode == 0o640
    assert states[0].fingerprint == model.fingerprint(b"k" * 64)
    assert not states[1].exists
    if os.geteuid() == 0:
        assert states[0].reader_can_read is False  # nobody cannot read a 0640 root file
    (tmp_path / f".remotectl.{os.getpid()}.BBBBBBBB").unlink()
    past = time.time() - 3600
    os.utime(old_style, (past, past))
    again = files.file_states(runner, [str(key)], clean_temps=True)
    assert again.removed_temps == [".remotectl.CCCCCCCC"]


def test_host_probe_reads_env_files_version_and_states_in_one_go(tmp_path):
    env = tmp_path / "pacemaker"
    env.write_text("# comment\nPCMK_authkey_location=/srv/k\n")
    key = tmp_path / "authkey"
    key.write_bytes(b"z" * 40)
    runner = CountingRunner()
    probe = files.host_probe(runner, user="root", group="root", read=[str(env), str(tmp_path / "none")],
                             version_tools=["pacemakerd", "crm_mon"], paths=[str(key), str(tmp_path / "nokey")])
    assert runner.calls == 1
    assert probe.files[str(env)] == env.read_bytes() and probe.files[str(tmp_path / "none")] is None
    assert probe.root is (os.geteuid() == 0) and probe.account is True
    assert [s.exists for s in probe.states] == [True, False]
    assert probe.states[0].fingerprint == model.fingerprint(b"z" * 40)
    require(probe.version_line is not None, "pacemakerd/crm_mon not installed")
    assert model.parse_version(probe.version_line) is not None


def test_write_file_atomic_reports_the_installed_file(tmp_path):
    state = files.write_file_atomic(LocalRunner(), str(tmp_path / "k"), b"q" * 50, mode=0o400)
    assert state.fingerprint == model.fingerprint(b"q" * 50) and state.mode == 0o400 and state.size == 50


class CountingRunner(LocalRunner):
    calls = 0

    def run(self, argv, **kwargs):
        self.calls += 1
        return super().run(argv, **kwargs)


def test_restore_file_atomic(tmp_path):
    runner = LocalRunner()
    (tmp_path / "k").write_bytes(b"new")
    backup = tmp_path / "k.bak"
    backup.write_bytes(b"old")
    backup.chmod(0o400)
    files.restore_file_atomic(runner, str(backup), str(tmp_path / "k"))
    assert (tmp_path / "k").read_bytes() == b"old" and stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o400
    assert [p for p in os.listdir(tmp_path) if p.startswith(".remotectl")] == []


# -- generate --force replaces a regular file only ----------------------------------------------------------------
def _refused_with(path, text):
    result = remotectl("authkey", "generate", "-o", str(path), "--force")
    assert result.returncode == 4, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and str(path) in lines[0], lines
    assert [p for p in os.listdir(os.path.dirname(str(path))) if p.startswith(".remotectl")] == []
    return lines[0]


def test_generate_force_refuses_a_fifo(tmp_path):
    path = tmp_path / "authkey"
    os.mkfifo(str(path))
    _refused_with(path, "is a FIFO; --force replaces only a regular file")
    assert stat.S_ISFIFO(os.lstat(str(path)).st_mode)


def test_generate_force_refuses_a_directory(tmp_path):
    path = tmp_path / "authkey"
    path.mkdir()
    (path / "keep").write_bytes(b"x")
    _refused_with(path, "is a directory; --force replaces only a regular file")
    assert (path / "keep").read_bytes() == b"x"


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_generate_force_refuses_a_symlink_and_names_it(tmp_path, dangling):
    target = tmp_path / "elsewhere" / "real-key"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"old key material!")
    link = tmp_path / "authkey"
    link.symlink_to(target)
    line = _refused_with(link, "is a symbolic link (to %s)" % target)
    assert "refusing to replace it" in line
    assert os.path.islink(str(link)) and os.readlink(str(link)) == str(target)
    assert (target.read_bytes() == b"old key material!") if not dangling else not target.exists()


def test_generate_force_refuses_a_device_node(tmp_path):
    """A character device made with mknod (the same kind as /dev/null: 1,3) in a private directory."""
    require(os.geteuid() == 0, "mknod of a character device needs root")
    path = tmp_path / "authkey"
    try:
        os.mknod(str(path), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        require(False, "mknod refused here (no CAP_MKNOD, or a nodev mount)")
    _refused_with(path, "is a character device; --force replaces only a regular file")
    st = os.lstat(str(path))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def test_generate_force_still_replaces_a_regular_file(tmp_path):
    path = tmp_path / "authkey"
    path.write_bytes(b"old key material!")
    os.chmod(str(path), 0o600)
    result = remotectl("authkey", "generate", "-o", str(path), "--force", "--bytes", "256")
    assert result.returncode == 0, result.stderr
    assert len(path.read_bytes()) == 256 and stat.S_ISREG(os.lstat(str(path)).st_mode)


# -- key files that are not regular files, and short keys ----------------------------------------------------------
def _key_file_kinds(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    directory = tmp_path / "dir"
    directory.mkdir()
    return [(str(fifo), "not a regular file"), ("/dev/zero", "not a regular file"), (str(directory), "directory")]


@pytest.mark.parametrize("command", [["authkey", "fingerprint"], ["check", "127.0.0.1:1", "--key"]],
                         ids=["fingerprint", "check-key"])
def test_key_files_that_are_no_regular_file_are_refused_before_reading(tmp_path, command):
    """A FIFO used to hang `fingerprint` and `check --key` forever; /dev/zero made `check --key` read without end
    (the size limit was checked after reading)."""
    for path, text in _key_file_kinds(tmp_path):
        try:
            result = subprocess.run([sys.executable, "-m", "remotectl", *command, path], capture_output=True,
                                    text=True, timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s %s hung" % (" ".join(command), path))
        assert result.returncode == 1, (path, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0].lower() and path in lines[0], (path, lines)


def test_relative_key_path_and_symlink_to_a_key_are_read(tmp_path):
    (tmp_path / "real").write_bytes(b"k" * 256)
    os.chmod(str(tmp_path / "real"), 0o600)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for name in ("real", "link", "./link"):
        result = subprocess.run([sys.executable, "-m", "remotectl", "authkey", "fingerprint", name],
                                capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
        assert result.returncode == 0 and result.stdout.strip() == model.fingerprint(b"k" * 256), result.stderr


def test_fingerprint_flags_a_key_under_16_bytes(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"k" * 15)
    os.chmod(str(path), 0o600)
    result = remotectl("authkey", "fingerprint", str(path), "--json")
    assert result.returncode == 0, result.stderr
    import json

    codes = [r["code"] for r in json.loads(result.stdout)["reports"]]
    assert codes == ["key-too-short"]
    human = remotectl("authkey", "fingerprint", str(path))
    assert b"15 bytes: too weak for a PSK" in human.stderr
    path.write_bytes(b"k" * 16)
    assert b"too weak" not in remotectl("authkey", "fingerprint", str(path)).stderr


# -- --path on the nodes: the remote scripts for real (LocalRunner), and the CLI's check ---------------------------
def _special_paths(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    directory = tmp_path / "dir"
    directory.mkdir()
    return {"fifo": (str(fifo), "a FIFO"), "dir": (str(directory), "a directory"),
            "device": ("/dev/zero", "a character device")}


def test_file_states_never_read_a_fifo_or_a_device(tmp_path):
    """sha256sum < FIFO used to hang the node's inspection (verify, push) until the SSH timeout; /dev/zero never
    ends. They are reported as what they are, and judged as no key."""
    specials = _special_paths(tmp_path)
    paths = [path for path, _kind in specials.values()]
    try:
        states = files.file_states(LocalRunner(), paths)
    except subprocess.TimeoutExpired:
        raise AssertionError("file_states hung on a FIFO or a device")
    assert [(s.exists, s.kind, s.usable, s.fingerprint) for s in states] == [
        (True, kind, False, None) for _path, kind in specials.values()]
    location = model.key_location({}, override=specials["fifo"][0])
    problems = model.assess_node(location, (3, 0, 3), {states[0].path: states[0]}).problems
    assert [p.code for p in problems] == ["not-a-file"] and "is a FIFO, not a regular file" in problems[0].message


@pytest.mark.parametrize("which", ["fifo", "dir", "device", "symlink"])
def test_write_file_atomic_replaces_only_a_regular_file(tmp_path, which):
    """mv onto a directory used to move the key INTO it; onto a FIFO or device it replaced them; a symlink was
    replaced without a word. Now: one error line naming the path, nothing changed, no temp file left."""
    from remotectl.transport.base import TransportError

    if which == "symlink":
        real = tmp_path / "real-key"
        real.write_bytes(b"old" * 20)
        path = str(tmp_path / "authkey")
        os.symlink(str(real), path)
        text = "is a symbolic link (to %s): refusing to replace it" % real
    elif which == "device":
        require(os.geteuid() == 0, "mknod of a character device needs root")
        path = str(tmp_path / "null")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        text = "is not a regular file: refusing to replace it"
    else:
        path = _special_paths(tmp_path)[which][0]
        text = "is not a regular file: refusing to replace it"
    before = os.lstat(path)
    with pytest.raises(TransportError) as info:
        files.write_file_atomic(LocalRunner(), path, b"new" * 20, mode=0o400)
    assert text in str(info.value) and path in str(info.value)
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if which == "dir":
        assert os.listdir(path) == []
    if which == "symlink":
        assert (tmp_path / "real-key").read_bytes() == b"old" * 20
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith(".remotectl")] == []


@pytest.mark.parametrize("command", [["authkey", "verify"], ["authkey", "push"], ["authkey", "rotate"]])
@pytest.mark.parametrize("path,text", [("relative/authkey", "is not an absolute path"),
                                       ("/etc/pacemaker/", "does not name a file")])
def test_path_on_the_nodes_must_be_absolute_and_name_a_file(command, path, text):
    result = remotectl(*command, "--path", path, "node1")
    assert result.returncode == 2, result.stderr
    assert text.encode() in result.stderr and b"Traceback" not in result.stderr


def test_generate_relative_output_is_written_where_the_user_is(tmp_path):
    result = subprocess.run([sys.executable, "-m", "remotectl", "authkey", "generate", "-o", "sub/authkey", "--json"],
                            capture_output=True, text=True, timeout=30, cwd=str(tmp_path),
                            env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                                os.path.dirname(os.path.abspath(__file__))))))
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads(result.stdout)["path"] == str(tmp_path / "sub" / "authkey")
    assert len((tmp_path / "sub" / "authkey").read_bytes()) == 256


def test_push_in_one_round_trip_follows_push_rule_on_a_real_shell(tmp_path):
    """The node applies push's rule itself (transport.files._PUSH_SCRIPT); push_one checks it against _decide and
    fails the node when they disagree, so every state below also checks that the two rules agree."""
    from remotectl.actions import authkey as actions
    from remotectl.actions.targets import Target

    runner = LocalRunner()
    path = tmp_path / "key"
    old, new = b"o" * 64, b"n" * 64

    def push(data):
        runner_calls.clear()
        result = actions.push_key([Target(label="n", host="n", type="remote")], lambda _h: counting, data,
                                  actions.PushOptions(path=str(path)))
        return result.nodes[0]

    runner_calls = []

    class Counting(LocalRunner):
        def run(self, argv, **kwargs):
            runner_calls.append(argv)
            return runner.run(argv, **kwargs)

    counting = Counting()
    first = push(old)
    assert first.status == "written" and first.backup is None and path.read_bytes() == old, first
    assert stat.S_IMODE(path.stat().st_mode) == 0o400 and len(runner_calls) == 1
    assert push(old).status == "unchanged" and len(runner_calls) == 1
    path.chmod(0o640)
    fixed = push(old)
    assert fixed.status == "written" and fixed.message.startswith("same key; fixing") and fixed.backup is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    replaced = push(new)
    assert replaced.status == "written" and replaced.previous_fingerprint == model.fingerprint(old)
    assert replaced.backup.startswith(f"{path}.bak-") and replaced.backup.endswith("-" + model.fingerprint(old)[7:19])
    assert open(replaced.backup, "rb").read() == old and path.read_bytes() == new and len(runner_calls) == 1
    if os.geteuid() == 0 and localfiles.account_ids("hacluster", "haclient"):
        assert (replaced.owner, replaced.group) == ("hacluster", "haclient")
    path.unlink()
    path.mkdir()
    refused = push(new)
    assert refused.status == "failed" and "not a regular file" in refused.error and path.is_dir()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".remotectl")] == []


def test_probe_and_write_leaves_the_key_alone_when_an_env_file_may_move_it(tmp_path):
    env = tmp_path / "pacemaker"
    env.write_text("PCMK_authkey_location=/elsewhere/authkey\n")
    path = tmp_path / "authkey"
    done = files.probe_and_write(LocalRunner(), str(path), b"k" * 64, mode=0o400, owner="", user="", group="",
                                 read=[str(env)], defer_on=model.LOCATION_VARIABLE)
    assert done.action == "deferred" and not path.exists()
    assert done.probe.files[str(env)] == env.read_bytes() and not done.probe.states[0].exists
    for text in ("  export PCMK_authkey_location=/elsewhere/authkey\n", "# a comment\rPCMK_authkey_location=/x\n",
                 "# PCMK_authkey_location=/x \u2028 PCMK_authkey_location=/y\n"):
        env.write_text(text)  # an assignment, also after one of Python's line breaks: deferred
        done = files.probe_and_write(LocalRunner(), str(path), b"k" * 64, mode=0o400, owner="", user="", group="",
                                     read=[str(env)], defer_on=model.LOCATION_VARIABLE)
        assert done.action == "deferred" and not path.exists(), text
    env.write_text("# PCMK_authkey_location=/etc/pacemaker/authkey\n  ; PCMK_authkey_location=/x\nPCMK_remote_port=3121\n")
    done = files.probe_and_write(LocalRunner(), str(path), b"k" * 64, mode=0o400, owner="", user="", group="",
                                 read=[str(env)], defer_on=model.LOCATION_VARIABLE)
    assert done.action == "write" and done.installed.fingerprint == model.fingerprint(b"k" * 64)
    assert path.read_bytes() == b"k" * 64
