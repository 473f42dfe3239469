"""The directory that holds a node's TLS files: created root:haclient 0750 when missing, so that the daemons'
group can reach the files in it (transport.files.write_file_atomic would create it 0750 root:root)."""

from __future__ import annotations

from remotectl.transport.base import Runner, TransportError

_DIR_SCRIPT = r"""
set -eu
dir=$1 mode=$2 group=$3
[ -d "$dir" ] && { echo "exists"; exit 0; }
umask 022
mkdir -p -- "$dir"
chmod "$mode" "$dir"
[ -z "$group" ] || chgrp -- "$group" "$dir"
echo "created"
"""


def ensure_directory(runner: Runner, path: str, *, mode: int, group: str = "") -> bool:
    """Create path (parents 0755) with mode and group when it does not exist; True when it was created. An
    existing directory is left as it is."""
    result = runner.run(["sh", "-c", _DIR_SCRIPT, "remotectl", path, f"{mode:o}", group])
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot create {path}: {result.first_error_line()}")
    return result.stdout.strip().endswith("created")
