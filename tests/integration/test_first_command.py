"""README's first set-up command works as written on this Debian 12 machine with the system python3, in a clean
HOME and a fresh copy of the repository (pip refuses system-wide installs there: PEP 668)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def first_command() -> str:
    block = re.search(r"## Set-up\n\n```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no Set-up code block"
    return block.group(1).splitlines()[0]


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="no system python3 at /usr/bin/python3")
def test_readme_first_command(tmp_path):
    checkout = tmp_path / "remotectl"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    result = subprocess.run(["bash", "-ec", first_command()], cwd=checkout, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^remote1\s+remote\s+online", result.stdout, re.M), result.stdout
