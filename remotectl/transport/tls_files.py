"""The directory that holds a node's TLS files: created root:haclient 0750 when missing, so that the daemons'
group can reach the files in it (transport.files.write_file_atomic would create it 0750 root:root); and this
machine's own X.509 settings and CA file, for `check`."""

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


def local_tls_settings(env_files=None):
    """This machine's X.509 settings (pacemaker.x509.TlsSettings) from its env files, as its own daemons read
    them: what `check` uses when --ca is not given and this machine is a cluster node in X.509 mode."""
    from remotectl.pacemaker import x509
    from remotectl.pacemaker.authkey import ENV_FILES

    texts = {}
    for name, path in zip(ENV_FILES, env_files or ENV_FILES):  # `env_files`: the same two, elsewhere (tests)
        try:
            with open(path, "rb") as handle:
                texts[name] = handle.read(x509.MAX_PEM_BYTES).decode("utf-8", "replace")
        except OSError:
            continue
    return x509.tls_settings(texts)


def read_local_ca(path: str) -> bytes:
    """A CA file here (public; read with the checks of a secret file: a regular file, bounded)."""
    from remotectl.pacemaker.x509 import MAX_PEM_BYTES
    from remotectl.transport.localfiles import read_secret_file

    return read_secret_file(path, MAX_PEM_BYTES, what="CA file")
