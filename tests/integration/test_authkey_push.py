"""authkey push / verify / rotate for real: the remotectl CLI against several real sshd "hosts" (each with its own
private key directory, see authkey_hosts.py), including a SIGKILL in the middle of pushes and a scan of every
process's command line for the key while a push runs."""

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from remotectl.pacemaker import authkey as model
from tests.integration import authkey_helpers, authkey_hosts
from tests.integration.authkey_helpers import key_file, leak_forms
from tests.integration.authkey_hosts import KEY_PATH
from tests.integration.conftest import require

OLD = bytes(range(256)) * 16  # 4096 bytes, like the lab's and Debian's default key


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    require(authkey_hosts.available(), "needs root, sshd, unshare and nsenter")
    started = authkey_hosts.start_hosts(tmp_path_factory.mktemp("authkey-hosts"), 3)
    yield started
    started.stop()


@pytest.fixture
def fresh(hosts):
    """Every host starts with the same old key (0640 root:haclient, as the Debian package installs it)."""
    for host in hosts.hosts:
        host.clear()
        host.write(OLD)
    return hosts


def remotectl(hosts, *args, popen=False):
    return authkey_helpers.remotectl(hosts.remotectl_options, *args, popen=popen, timeout=120)


def test_push_to_every_host_then_unchanged(fresh, tmp_path):
    new = os.urandom(256)
    result = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                       *fresh.destinations, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [n["status"] for n in doc["nodes"]] == ["written"] * 3
    for host, entry in zip(fresh.hosts, doc["nodes"]):
        assert host.read() == new
        assert host.stat() == (0o400, "hacluster", "haclient")
        assert entry["fingerprint"] == model.fingerprint(new) and entry["mode"] == "0400"
        assert (entry["owner"], entry["group"], entry["path"]) == ("hacluster", "haclient", KEY_PATH)
        assert entry["previous_fingerprint"] == model.fingerprint(OLD)
        assert host.read(entry["backup"]) == OLD
        assert host.stat(entry["backup"])[0] & 0o077 == 0
        assert [n for n in host.listdir() if n.startswith(".remotectl")] == []
    again = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                      *fresh.destinations, "--json")
    assert again.returncode == 0
    assert [n["status"] for n in json.loads(again.stdout)["nodes"]] == ["unchanged"] * 3
    human = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                      *fresh.destinations)
    assert b"3 unchanged" in human.stdout
    for output in (result, again, human):
        for form in leak_forms(new) + leak_forms(OLD):
            assert form not in output.stdout and form not in output.stderr


def test_one_unreachable_target_gives_exit_3_and_the_others_are_done(fresh, tmp_path):
    new = os.urandom(256)
    from tests.integration.sshd import free_port

    dead = f"root@127.0.0.1:{free_port()}"
    result = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                       fresh.destinations[0], dead, fresh.destinations[1], "--json")
    assert result.returncode == 3, result.stderr
    doc = json.loads(result.stdout)
    assert [n["status"] for n in doc["nodes"]] == ["written", "failed", "written"]
    assert doc["nodes"][1]["ok"] is False and "connect" in doc["nodes"][1]["error"]
    assert fresh.hosts[0].read() == new and fresh.hosts[1].read() == new and fresh.hosts[2].read() == OLD
    everything_down = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                                dead)
    assert everything_down.returncode == 1


def test_dry_run_and_no_backup(fresh, tmp_path):
    new = os.urandom(256)
    dry = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                    fresh.destinations[0], "--dry-run", "--json")
    assert json.loads(dry.stdout)["nodes"][0]["status"] == "would-write" and fresh.hosts[0].read() == OLD
    remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
              fresh.destinations[0], "--no-backup")
    assert fresh.hosts[0].read() == new and fresh.hosts[0].listdir() == ["authkey"]


def test_verify_finds_one_byte_difference_and_mode_0644(fresh, tmp_path):
    good = os.urandom(256)
    for host in fresh.hosts:
        host.write(good, mode=0o400, owner="hacluster:haclient")
    ok = remotectl(fresh, "authkey", "verify", "--path", KEY_PATH, *fresh.destinations, "--json")
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["consistent"] is True
    fresh.hosts[1].write(good[:100] + bytes([good[100] ^ 1]) + good[101:], mode=0o400, owner="hacluster:haclient")
    fresh.hosts[2].write(good, mode=0o644, owner="hacluster:haclient")
    bad = remotectl(fresh, "authkey", "verify", "--path", KEY_PATH, *fresh.destinations, "--json")
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["consistent"] is False and doc["differing"] == [fresh.destinations[1]]
    nodes = doc["nodes"]
    assert [n["matches"] for n in nodes] == [True, False, True]
    assert "world-readable" in [p["code"] for p in nodes[2]["problems"]] and nodes[2]["mode"] == "0644"
    assert [n["ok"] for n in nodes] == [True, False, False]
    with_key = remotectl(fresh, "authkey", "verify", "--key", key_file(tmp_path, good), "--path", KEY_PATH,
                         *fresh.destinations)
    assert with_key.returncode == 1
    assert b"DIFFERS" in with_key.stdout and b"world-readable" in with_key.stdout
    for output in (ok, bad, with_key):
        for form in leak_forms(good):
            assert form not in output.stdout and form not in output.stderr


def test_verify_missing_key_and_unreadable_by_hacluster(fresh):
    fresh.hosts[0].run(f"rm -f {KEY_PATH}")
    fresh.hosts[1].write(OLD, mode=0o400, owner="root:root")
    result = remotectl(fresh, "authkey", "verify", "--path", KEY_PATH, *fresh.destinations, "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 1
    assert [p["code"] for p in doc["nodes"][0]["problems"]] == ["missing"]
    assert doc["nodes"][1]["hacluster_can_read"] is False
    assert "unreadable-by-hacluster" in [p["code"] for p in doc["nodes"][1]["problems"]]


def _logins(hosts):
    """SSH logins each host's sshd has accepted so far."""
    return [h.log.read_text().count("Accepted publickey for") for h in hosts.hosts]


def test_rotate_on_explicit_targets_and_rollback(fresh):
    before = _logins(fresh)
    result = remotectl(fresh, "authkey", "rotate", "--path", KEY_PATH, *fresh.destinations, "--json")
    assert result.returncode == 0, result.stderr
    # preflight, push and verify over one connection per node
    assert [after - was for after, was in zip(_logins(fresh), before)] == [1, 1, 1]
    doc = json.loads(result.stdout)
    new = fresh.hosts[0].read()
    assert len(new) == 256 and new != OLD and all(h.read() == new for h in fresh.hosts)
    assert doc["fingerprint"] == model.fingerprint(new) and doc["consistent"] is True
    assert all(fresh.hosts[i].read(n["backup"]) == OLD for i, n in enumerate(doc["nodes"]))
    for form in leak_forms(new):
        assert form not in result.stdout and form not in result.stderr
    # make the third host fail at write time (its key directory is a file), after the first two were written
    sub_path = KEY_PATH.replace("/authkey", "/sub/authkey")
    for host in fresh.hosts[:2]:
        host.write(OLD, path=sub_path)
    fresh.hosts[2].run(f"mkdir -p $(dirname {KEY_PATH}) && : > $(dirname {KEY_PATH})/sub")
    failed = remotectl(fresh, "authkey", "rotate", "--path", sub_path, *fresh.destinations, "--json")
    assert failed.returncode == 3, failed.stderr
    doc = json.loads(failed.stdout)
    assert doc["rolled_back"] is True and doc["ok"] is False
    assert [n["status"] for n in doc["nodes"]] == ["rolled-back", "rolled-back", "failed"]
    assert fresh.hosts[0].read(sub_path) == OLD and fresh.hosts[1].read(sub_path) == OLD


def test_rotate_refuses_to_start_when_a_node_is_unreachable(fresh):
    from tests.integration.sshd import free_port

    result = remotectl(fresh, "authkey", "rotate", "--path", KEY_PATH, fresh.destinations[0],
                       f"root@127.0.0.1:{free_port()}", "--json")
    assert result.returncode == 1
    assert fresh.hosts[0].read() == OLD


def _cmdlines():
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as handle:
                    yield pid, name, handle.read()
            except OSError:
                continue


def test_key_never_appears_in_any_process_argv_or_environment_during_a_push(fresh, tmp_path):
    new = os.urandom(65536)  # large, so the push lasts long enough to be observed
    forms = leak_forms(new)
    found = []
    scans = [0]
    stop = threading.Event()

    def scan():
        while not stop.is_set():
            for pid, name, data in _cmdlines():
                if any(form in data for form in forms):
                    found.append((pid, name))
            scans[0] += 1

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        for _ in range(3):
            for host in fresh.hosts:
                host.write(OLD)
            result = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new, f"k{_}"), "--path",
                               KEY_PATH, *fresh.destinations, "--json")
            assert result.returncode == 0, result.stderr
            for form in forms:
                assert form not in result.stdout and form not in result.stderr
    finally:
        stop.set()
        scanner.join()
    assert scans[0] > 3
    assert found == []
    assert all(h.read() == new for h in fresh.hosts)


def test_sigkill_midway_leaves_old_or_new_key_and_no_loose_temp_files(fresh, tmp_path):
    """Kill remotectl at random moments while it pushes a 64 KiB key to every host; every target must then hold
    the old key or the new one, with the mode of one of them, and any temp file left behind must be private and
    disappear with the next push."""
    rng = random.Random(int(os.environ.get("REMOTECTL_KILL_SEED", "5")))
    rounds = int(os.environ.get("REMOTECTL_KILL_ROUNDS", "25"))
    start = time.monotonic()
    probe = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, os.urandom(65536), "probe"), "--path",
                      KEY_PATH, *fresh.destinations, "--no-backup")
    duration = time.monotonic() - start
    assert probe.returncode == 0
    outcomes = {"old": 0, "new": 0}
    leftovers = 0
    previous = {id(h): h.read() for h in fresh.hosts}
    for round_number in range(rounds):
        new = os.urandom(65536)
        path = key_file(tmp_path, new, f"kill{round_number}")
        process = remotectl(fresh, "authkey", "push", "--key", path, "--path", KEY_PATH, *fresh.destinations,
                            "--no-backup", popen=True)
        time.sleep(rng.uniform(0.05, duration))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        fresh.wait_idle()
        for host in fresh.hosts:
            content = host.read()
            assert content in (previous[id(host)], new), "a target holds neither the old nor the new key"
            outcomes["new" if content == new else "old"] += 1
            mode, owner, group = host.stat()
            assert mode in (0o400, 0o640)
            for name in host.listdir():
                if name.startswith(".remotectl"):
                    leftovers += 1
                    tmp_mode = host.stat(f"{os.path.dirname(KEY_PATH)}/{name}")[0]
                    assert tmp_mode & 0o077 == 0, f"loose temp file {name} mode {tmp_mode:o}"
            previous[id(host)] = content
    print(f"\nSIGKILL rounds={rounds} push duration={duration:.2f}s targets old={outcomes['old']} "
          f"new={outcomes['new']} temp files seen={leftovers}")
    final = os.urandom(256)
    result = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, final, "final"), "--path", KEY_PATH,
                       *fresh.destinations, "--no-backup", "--json")
    assert result.returncode == 0, result.stderr
    for host in fresh.hosts:
        assert host.read() == final
        assert [n for n in host.listdir() if n.startswith(".remotectl")] == []
    assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes


def test_next_push_removes_temp_files_left_by_a_killed_writer(fresh, tmp_path):
    """A writer killed hard on the node (not just the client) leaves its private temp file; the next push removes
    it because its writer pid is gone, and leaves alone the temp file of a writer that is still running."""
    host = fresh.hosts[0]
    directory = os.path.dirname(KEY_PATH)
    script = f'umask 077; t=$(mktemp "{directory}/.remotectl.$$.XXXXXXXX"); chmod 400 "$t"; echo partial > "$t"'
    assert host.run(script).returncode == 0  # its shell has exited: a dead writer
    alive = subprocess.Popen(["nsenter", "-t", str(host.process.pid), "-m", "--", "sh", "-c",
                              f'umask 077; : > "{directory}/.remotectl.$$.livewriter"; exec sleep 30'])
    try:
        time.sleep(0.3)
        assert len([n for n in host.listdir() if n.startswith(".remotectl.")]) == 2
        result = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, os.urandom(256)), "--path",
                           KEY_PATH, fresh.destinations[0], "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["nodes"][0]["removed_temp_files"] == 1
        assert [n for n in host.listdir() if n.startswith(".remotectl.")] == [f".remotectl.{alive.pid}.livewriter"]
    finally:
        alive.kill()
        alive.wait()
        host.run(f'rm -f "{directory}"/.remotectl.*')


def test_a_held_back_writer_does_not_overwrite_the_key_of_a_newer_push(fresh, tmp_path):
    """The interleaving behind a killed push overtaken by its own late write: push A's remote writer is held back
    before its rename (stopped while it waits for the directory lock), a newer push B installs its key, then A's
    writer goes on. A must see that the key is no longer the one it started from, leave B's key, and say so."""
    host = fresh.hosts[0]
    late, newer = os.urandom(256), os.urandom(256)
    with host.holding_key_dir() as hold:
        first = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, late, "late"), "--path", KEY_PATH,
                          host.destination, "--json", popen=True)
        waiter = hold.stop_writer()
    try:
        second = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, newer, "newer"), "--path",
                           KEY_PATH, host.destination, "--json")
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["nodes"][0]["previous_fingerprint"] == model.fingerprint(OLD)
    finally:
        os.kill(waiter, signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=90)
    fresh.wait_idle()
    assert host.read() == newer, "the late writer overwrote the newer push's key"
    assert [n for n in host.listdir() if n.startswith(".remotectl")] == []
    doc = json.loads(stdout)
    node = doc["nodes"][0]
    assert first.returncode == 1, stderr
    assert (node["status"], node["ok"]) == ("changed-underneath", False)
    assert node["previous_fingerprint"] == model.fingerprint(OLD) and node["fingerprint"] == model.fingerprint(newer)
    assert model.fingerprint(newer) in node["error"] and "changed" in node["error"]
    assert [r["code"] for r in doc["reports"]] == ["key-changed-underneath"]
    assert b"Traceback" not in stderr


MALFORMED_CIB = os.path.join(authkey_helpers.REPO, "tests", "data", "cib-hostile", "malformed-addresses.xml")
MALFORMED = ["control", "dash", "guest-empty", "port", "spaces", "v6junk"]


def test_a_malformed_address_in_the_cib_fails_that_node_alone(fresh, tmp_path):
    """push --all and verify --all on a CIB whose remote nodes' addresses include spaces, control characters, a
    blank, an IPv6 address with junk, `user@host:junk` and a leading dash: those nodes fail with a clear line, the
    three nodes with good names (mapped to the sshd hosts by an ssh_config) are done, exit 3."""
    config = tmp_path / "ssh_config"
    config.write_text("".join(f"Host authhost{i}\n  HostName {h.host}\n  Port {h.port}\n  User root\n"
                              for i, h in enumerate(fresh.hosts)))
    options = ["--cib", MALFORMED_CIB, "--ssh-config", str(config), "--identity", str(fresh.client_key),
               "--known-hosts", str(fresh.known_hosts)]
    new = os.urandom(256)
    pushed = authkey_helpers.remotectl(options, "authkey", "push", "--key", key_file(tmp_path, new), "--path",
                                       KEY_PATH, "--all", "--json")
    assert pushed.returncode == 3, pushed.stderr
    nodes = {n["node"]: n for n in json.loads(pushed.stdout)["nodes"]}
    assert {name: n["status"] for name, n in nodes.items() if n["status"] != "failed"} == {
        "authhost0": "written", "good1": "written", "good2": "written"}
    assert sorted(name for name, n in nodes.items() if n["status"] == "failed") == MALFORMED
    for name in MALFORMED:
        assert "is not a host name or IP address" in nodes[name]["error"], nodes[name]
    assert all(h.read() == new for h in fresh.hosts)
    human = authkey_helpers.remotectl(options, "authkey", "push", "--key", key_file(tmp_path, new), "--path",
                                      KEY_PATH, "--all")
    assert human.returncode == 3 and b"3 unchanged" in human.stdout and b"6 failed" in human.stdout
    assert b"\t" not in human.stdout and b"Traceback" not in human.stderr
    verified = authkey_helpers.remotectl(options, "authkey", "verify", "--path", KEY_PATH, "--all", "--json")
    assert verified.returncode == 3, verified.stdout
    doc = json.loads(verified.stdout)
    assert [n["node"] for n in doc["nodes"] if n["ok"] and n["matches"]] == ["authhost0", "good1", "good2"]
    assert sorted(r["node"] for r in doc["reports"] if r["code"] == "node-unreachable") == MALFORMED


def _written_except_held(fresh, hold, new=None, timeout=30.0):
    """Until every host but the held one holds `new` (None: any key but OLD) and the only write script left
    running on these hosts is the held one (waiting for its lock), and a moment more for remotectl to read the
    finished ones' answers."""
    sshds = {str(h.process.pid) for h in fresh.hosts}
    free = [h for h in fresh.hosts if str(h.process.pid) != hold.sshd_pid]
    deadline = time.monotonic() + timeout
    while True:
        waiting, busy = hold.waiting_writers(), authkey_hosts.writers(sshds)
        if len(waiting) == 1 and len(busy) == 1 and all((h.read() == new) if new else (h.read() != OLD)
                                                        for h in free):
            time.sleep(1.0)
            return
        assert time.monotonic() < deadline, f"writers still running: {busy}, waiting: {waiting}"
        time.sleep(0.05)


def _interrupted_push(fresh, tmp_path, *extra, signals=1):
    """Push to the three hosts and to a host that accepts TCP and never speaks SSH, with the second host's write
    held at its directory lock; SIGINT once the other two are written. (process result, seconds to exit)."""
    import socket

    for host in fresh.hosts:
        host.clear()
        host.write(OLD)
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(8)  # the kernel completes the handshake; no SSH banner ever comes
    new = os.urandom(256)
    held = fresh.hosts[1]
    try:
        with held.holding_key_dir() as hold:
            process = remotectl(fresh, "authkey", "push", "--key", key_file(tmp_path, new), "--path", KEY_PATH,
                                *fresh.destinations, f"root@127.0.0.1:{stalled.getsockname()[1]}", *extra,
                                popen=True)
            _written_except_held(fresh, hold, new)
            assert held.read() == OLD
            start = time.monotonic()
            for number in range(signals):
                if number:
                    time.sleep(0.05)
                process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=90)
            elapsed = time.monotonic() - start
    finally:
        stalled.close()
    fresh.wait_idle()
    assert held.read() in (OLD, new)  # the held write, released after remotectl exited: either, never torn
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), elapsed


def test_ctrl_c_during_a_push_reports_each_node_and_exits_130_at_once(fresh, tmp_path):
    result, elapsed = _interrupted_push(fresh, tmp_path, "--json")
    assert result.returncode == 130, result.stderr
    assert elapsed < 8, f"took {elapsed:.1f} s to exit after Ctrl-C"  # before: up to 60 s, the held write's timeout
    assert b"Traceback" not in result.stderr, result.stderr
    doc = json.loads(result.stdout)
    assert doc["interrupted"] is True
    assert [n["status"] for n in doc["nodes"]] == ["written", "unknown", "written", "not-written"]
    assert [n["ok"] for n in doc["nodes"]] == [True, False, True, False]
    report = [r for r in doc["reports"] if r["code"] == "interrupted"]
    assert len(report) == 1 and "2 node(s) written, 1 not written, 1 unknown" in report[0]["message"]


def test_ctrl_c_twice_during_a_push_exits_at_once_and_the_table_says_what_is_known(fresh, tmp_path):
    once, elapsed = _interrupted_push(fresh, tmp_path)
    assert once.returncode == 130 and elapsed < 8 and b"Traceback" not in once.stderr, once.stderr
    lines = once.stdout.decode().splitlines()
    rows = [line.split() for line in lines if line.startswith("root@") and not line.split()[0].endswith(":")]
    assert [row[1] for row in rows] == ["written", "unknown", "written", "not-written"], once.stdout
    assert b"interrupted: 2 node(s) written, 1 not written, 1 unknown" in once.stderr
    twice, elapsed = _interrupted_push(fresh, tmp_path, signals=2)
    # the second Ctrl-C exits at once (130), or, when the first one's report was done and the interpreter was
    # already shutting down (default SIGINT disposition again), the process dies of SIGINT, which a shell shows as
    # 130 too
    assert twice.returncode in (130, -signal.SIGINT), (twice.returncode, twice.stderr)
    assert elapsed < 8 and b"Traceback" not in twice.stderr, twice.stderr


def test_ctrl_c_during_a_rotation_reports_each_node_rolls_nothing_back_and_exits_130(fresh):
    held = fresh.hosts[1]
    with held.holding_key_dir() as hold:
        process = remotectl(fresh, "authkey", "rotate", "--path", KEY_PATH, *fresh.destinations, "--json",
                            popen=True)
        _written_except_held(fresh, hold)
        start = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
        elapsed = time.monotonic() - start
    fresh.wait_idle()
    assert process.returncode == 130 and elapsed < 8, (process.returncode, elapsed, stderr)
    assert b"Traceback" not in stderr, stderr
    doc = json.loads(stdout)
    assert doc["interrupted"] is True and doc["rolled_back"] is False
    assert [n["status"] for n in doc["nodes"]] == ["written", "unknown", "written"]
    new = fresh.hosts[0].read()
    assert doc["fingerprint"] == model.fingerprint(new) and fresh.hosts[2].read() == new
    assert held.read() in (OLD, new)
    for index in (0, 2):
        assert fresh.hosts[index].read(doc["nodes"][index]["backup"]) == OLD
    assert [r["code"] for r in doc["reports"]] == ["interrupted"]
