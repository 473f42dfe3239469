"""What the authkey push / verify / rotate tests share, on the hosts lab (test_hosts_authkey_lab.py) and on the
loopback sshd hosts (test_authkey_push.py): running the CLI, writing a --key file, the forms a leaked key would take,
and waiting for the remote writers a SIGKILL of remotectl leaves running."""

import base64
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def remotectl(options, *args, popen=False, timeout=120):
    """`python -m remotectl OPTIONS ARGS...` from the repository, output as bytes: the finished process, or with
    popen the running one (to be killed midway)."""
    argv = [sys.executable, "-m", "remotectl", *options, *args]
    if popen:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    return subprocess.run(argv, capture_output=True, check=False, cwd=REPO, timeout=timeout)


def key_file(tmp_path, data, name="key"):
    """A private local key file for --key; its path."""
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(0o400)
    return str(path)


def leak_forms(key):
    """The forms in which key bytes could leak into output or a command line."""
    return [key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key), key[:64]]


def wait_for_remote_writers(path, timeout=30.0):
    """After a SIGKILL of remotectl, the remote write scripts that had already received the whole key still finish
    their rename (that is the point of the atomic write); wait until no process on this machine has the target
    path on its command line, so the files are checked in their final state."""
    needle = path.encode()
    deadline = time.monotonic() + timeout
    while True:
        busy = []
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        if needle in handle.read():
                            busy.append(pid)
                except OSError:
                    continue
        if not busy:
            return
        assert time.monotonic() < deadline, f"remote writers still running: {busy}"
        time.sleep(0.05)
