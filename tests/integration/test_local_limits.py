"""Local limits give one clear error line and exit 1, never "internal error": a full stdout, a closed stdout, a
non-UTF-8 stdout (shown escaped)."""

import os
import shutil
import subprocess
import sys

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

