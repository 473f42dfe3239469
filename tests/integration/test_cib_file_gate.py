"""Every read and every write of a --cib file passes the hostile-XML gate first: crm_attribute never gets to
rewrite a file with a DOCTYPE, a truncated file, a document that is not a CIB, or a compressed dump."""

import bz2
import gzip
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CIB = os.path.join(ROOT, "tests", "data", "cib", "remote-online.xml")

pytestmark = pytest.mark.skipif(shutil.which("crm_attribute") is None,
                                reason="Pacemaker's tools (crm_attribute) are not installed here")

ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE cib [<!ENTITY x "boom">]>
<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes/><resources/><constraints/>
</configuration><status/></cib>
"""


def remotectl(cib, *args):
    return subprocess.run([sys.executable, "-m", "remotectl", "--cib", str(cib), *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def hostile_files(tmp_path):
    good = open(CIB, "rb").read()
    yield "doctype", ENTITY
    yield "truncated", good[: len(good) // 2]
    yield "not-a-cib", b"<pacemaker-result><status code='0'/></pacemaker-result>"
    yield "gzip", gzip.compress(good)
    yield "bzip2", bz2.compress(good)
    yield "empty", b""


@pytest.mark.parametrize("command", [["standby", "remote1"], ["maintenance", "remote1"], ["unstandby", "remote1"],
                                     ["constraint", "prefer", "dummy1", "remote1"], ["constraint", "list"],
                                     ["nodes"]])
def test_hostile_cib_files_are_refused_and_left_untouched(tmp_path, command):
    for name, data in hostile_files(tmp_path):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(data)
        result = remotectl(path, *command)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, name
        assert path.read_bytes() == data, f"{name}: the file was changed"


def test_a_cib_file_is_never_taken_for_a_file_name_nor_echoed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n")
    link = tmp_path / "link.xml"
    link.symlink_to(secret)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    names_a_fifo = tmp_path / "names-a-fifo.xml"
    names_a_fifo.write_text(str(fifo))
    names_a_cib = tmp_path / "names-a-cib.xml"
    names_a_cib.write_text(CIB)
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    for path in (link, names_a_fifo, names_a_cib, empty):
        result = remotectl(path, "nodes")  # remotectl() times out after 60 s: a FIFO opened for reading hangs
        assert result.returncode == 1 and result.stdout == "", path.name
        assert "SECRET-CONTENT" not in result.stderr and "remote1" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "empty document" in remotectl(empty, "nodes").stderr
    fifo_cib = tmp_path / "fifo.xml"
    os.mkfifo(fifo_cib)
    assert "not a regular file" in remotectl(fifo_cib, "nodes").stderr


def test_cib_paths_that_are_no_regular_file_or_too_large(tmp_path):
    """A device, a directory: one clear line (exit 1, or 2 for click's own path check), never read; a relative path
    works; a file over the size limit is refused from its first MAX_BYTES + 1 bytes."""
    from remotectl.pacemaker import xmlsafe

    for path in ("/dev/zero", "/dev/null", str(tmp_path)):
        result = remotectl(path, "nodes")
        assert result.returncode in (1, 2) and result.stdout == "", (path, result.stderr)
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        assert any(("not a regular file" in ln or "is a directory" in ln) for ln in lines), (path, lines)
        assert "Traceback" not in result.stderr
    shutil.copy(CIB, tmp_path / "relative.xml")
    relative = subprocess.run([sys.executable, "-m", "remotectl", "--cib", "relative.xml", "nodes"],
                              capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
                              env=dict(os.environ, PYTHONPATH=ROOT))
    assert relative.returncode == 0 and "remote1" in relative.stdout, relative.stderr
    big = tmp_path / "big.xml"
    with open(big, "wb") as handle:
        handle.write(b"<cib>" + b" " * (xmlsafe.MAX_BYTES + 10) + b"</cib>")
    result = remotectl(big, "nodes")
    assert result.returncode == 1 and "too large" in result.stderr and len(result.stderr.strip().splitlines()) == 1
