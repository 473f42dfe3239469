"""`check` progress on a terminal: a real `python -m remotectl check` with stderr on a pseudo-terminal. A fan-out
that takes over a second shows the count and the target waited for longest; a piped stderr or --json show
nothing (a quick fan-out showing nothing: tests/unit/test_output_progress.py, with the delay under its control).
Targets: loopback listeners that never accept (the probe runs into its --timeout)."""

import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CIB = ROOT / "examples" / "cib.xml"


def _silent():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def _run_on_pty(args, key):
    """(rc, stdout, what stderr's terminal showed)."""
    primary, secondary = pty.openpty()
    env = dict(os.environ, COLUMNS="200", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "remotectl", "--cib", str(CIB), "check", "--key", str(key),
                             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=secondary, stdin=subprocess.DEVNULL,
                            env=env)
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(primary)
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=30), stdout, shown.decode(errors="replace")


def test_a_slow_fan_out_shows_the_count_and_the_slowest_target(tmp_path):
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(64))
    with _silent() as slow:
        target = "127.0.0.1:%d" % slow.getsockname()[1]
        rc, stdout, shown = _run_on_pty(["--timeout", "2.5", "--parallel", "1", target, target, target], key)
    assert rc == 3, (stdout, shown)
    assert "probing" in shown and "/3" in shown, shown
    assert "waiting for " + target in shown, shown
    assert "3 probes" in stdout


def test_json_and_a_piped_stderr_show_nothing(tmp_path):
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(64))
    with _silent() as slow:
        targets = ["127.0.0.1:%d" % slow.getsockname()[1]] * 2
        rc, stdout, shown = _run_on_pty(["--json", "--timeout", "1.5", "--parallel", "1", *targets], key)
        assert rc == 3 and stdout.lstrip().startswith("{")
        assert "probing" not in shown and "waiting for" not in shown, shown
        piped = subprocess.run([sys.executable, "-m", "remotectl", "--cib", str(CIB), "check", "--key", str(key),
                                "--timeout", "1.5", "--parallel", "1", *targets], cwd=ROOT, capture_output=True,
                               text=True, timeout=60)
    assert piped.returncode == 3 and piped.stderr == "", piped.stderr
