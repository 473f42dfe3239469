"""Local limits give one clear error line and exit 1, never "internal error": a full stdout, a closed stdout, a
non-UTF-8 stdout (shown escaped), no file descriptor left for `check`'s probes."""

import json
import os
import resource
import shutil
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CIB = os.path.join(ROOT, "examples", "cib.xml")


def remotectl(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "remotectl", *args], text=True, timeout=60, cwd=ROOT, **kwargs)


def test_full_stdout():
    with open("/dev/full", "w") as full:
        result = remotectl("--cib", CIB, "nodes", stdout=full, stderr=subprocess.PIPE)
    assert result.returncode == 1
    assert result.stderr == "remotectl: error: cannot write the output: No space left on device\n"


def test_closed_stdout():
    result = remotectl("--cib", CIB, "nodes", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       preexec_fn=lambda: os.close(1))
    assert result.returncode == 1
    assert result.stderr.strip() == "remotectl: error: standard output is closed; nothing can be printed"


def test_ascii_stdout_shows_escapes(tmp_path):
    cib = tmp_path / "cib.xml"
    shutil.copy(CIB, cib)
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    result = remotectl("--cib", str(cib), "unstandby", "remote1", "--lifetime", "reboot", capture_output=True,
                       env=env)
    assert result.returncode == 0, result.stderr
    assert "\\u2192" in result.stdout and "internal error" not in result.stderr



def _listener():
    """A loopback listener that never accepts: the kernel completes up to its backlog of connections, each of
    which then waits for a TLS answer (so the probes hold their sockets until their deadline)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    return sock


def _nofile(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@pytest.mark.parametrize("full", [False, True], ids=["probe", "full"])
def test_check_out_of_file_descriptors_is_one_clear_error(tmp_path, full):
    """EMFILE while opening the probes' sockets: one error line naming the limit, exit 1; never `probe-bug` or
    "internal error" (socket() used to sit outside the probe's error handling)."""
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(64))
    with _listener() as listener:
        targets = ["127.0.0.1:%d" % listener.getsockname()[1]] * 64
        extra = ["--full", "--force", "--workers", "16"] if full else ["--workers", "64"]
        result = remotectl("--cib", CIB, "check", "--key", str(key), "--timeout", "2", *extra, *targets,
                           capture_output=True, preexec_fn=_nofile(16 if full else 40))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("remotectl: error: the key probe cannot run here: cannot open a socket: Too many "
                                    "open files (EMFILE); raise the open-file limit (ulimit -n)"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 or "--full --force" in result.stderr, result.stderr
    assert "probe-bug" not in result.stdout + result.stderr and "internal error" not in result.stderr


def test_check_default_parallel_fits_a_low_open_file_limit(tmp_path):
    """Without --parallel the worker count is cut to what the open-file limit holds: 64 targets under a limit of
    40 descriptors all get their verdict (timeout: the listener never answers), no EMFILE."""
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(64))
    with _listener() as listener:
        targets = ["127.0.0.1:%d" % listener.getsockname()[1]] * 64
        result = remotectl("--cib", CIB, "check", "--json", "--key", str(key), "--timeout", "0.3", *targets,
                           capture_output=True, preexec_fn=_nofile(40))
    assert result.returncode == 3, (result.stdout, result.stderr)
    verdicts = [r["verdict"] for r in json.loads(result.stdout)["results"]]
    assert verdicts == ["timeout"] * 64, verdicts
    assert "EMFILE" not in result.stderr


def test_probe_module_out_of_file_descriptors_raises_probe_error(tmp_path):
    """The module as shipped to a cluster node (any Python >= 3.6): with every descriptor in use, probe() raises
    ProbeError (main() turns it into the JSON document's one-line "error"), not a probe-bug verdict."""
    script = (
        "import os, sys\n"
        "sys.path.insert(0, %r)\n"
        "from remotectl.transport import psk_probe as pp\n"
        "pp.gnutls()\n"
        "held = []\n"
        "try:\n"
        "    while True:\n"
        "        held.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError:\n"
        "    pass\n"
        "try:\n"
        "    result = pp.probe('127.0.0.1', %d, b'k' * 32, timeout=1)\n"
        "    print('verdict', result.verdict, result.detail)\n"
        "except pp.ProbeError as exc:\n"
        "    print('ProbeError', exc)\n"
    )
    with _listener() as listener:
        code = script % (ROOT, listener.getsockname()[1])
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                                preexec_fn=_nofile(64))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ProbeError cannot "), result.stdout
