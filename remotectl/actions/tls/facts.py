"""What a node says about its TLS files, in one round trip (two when its PCMK_* settings point elsewhere): root?,
hacluster:haclient present?, the env files, and the state (and, for verify, the content) of the three files.

The node's private key is read for verify only, into memory, to compare its public half with the certificate's;
it is never stored, logged, shown or returned.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Dict, Optional

from remotectl.pacemaker import x509 as model
from remotectl.pacemaker.authkey import ENV_FILES, FileFacts
from remotectl.transport import files
from remotectl.transport.base import Runner


def default_paths(remote_dir: str) -> Dict[str, str]:
    return {role: posixpath.join(remote_dir, model.REMOTE_NAMES[role]) for role in model.ROLES}


@dataclass
class TlsFacts:
    root: bool
    account: bool  # hacluster and haclient exist there
    settings: model.TlsSettings
    paths: Dict[str, str]  # role → the path looked at
    states: Dict[str, FileFacts]  # role → its state
    contents: Dict[str, Optional[bytes]] = field(repr=False)  # role → bytes (verify only); None: not read


def _configured_paths(settings: model.TlsSettings, remote_dir: str) -> Dict[str, str]:
    """X.509 mode: the files the daemons load; otherwise the ones `tls push` installs."""
    paths = default_paths(remote_dir)
    if settings.mode == "x509":
        paths = {role: settings.path(role) or paths[role] for role in model.ROLES}
    return paths


def inspect(runner: Runner, remote_dir: str, *, read_files: bool, follow_settings: bool) -> TlsFacts:
    """`read_files`: also bring back the files' content (verify). `follow_settings`: look at the files the
    PCMK_* settings name when the node is in X.509 mode (verify), rather than at remote_dir (push)."""
    guess = default_paths(remote_dir)
    reads = list(ENV_FILES) + ([guess[role] for role in model.ROLES] if read_files else [])
    probe = files.host_probe(runner, user=model.DAEMON_USER, group=model.DAEMON_GROUP, read=reads,
                             paths=[guess[role] for role in model.ROLES], reader=model.DAEMON_USER)
    texts = {p: probe.files[p].decode("utf-8", "replace") for p in ENV_FILES if probe.files.get(p) is not None}
    settings = model.tls_settings(texts)
    paths = _configured_paths(settings, remote_dir) if follow_settings else guess
    states = {role: state for role, state in zip(model.ROLES, probe.states)}
    contents = {role: probe.files.get(guess[role]) for role in model.ROLES}
    if paths != guess:
        ordered = [paths[role] for role in model.ROLES]
        again = files.host_probe(runner, read=ordered if read_files else (), paths=ordered,
                                 reader=model.DAEMON_USER)
        states = {role: state for role, state in zip(model.ROLES, again.states)}
        contents = {role: again.files.get(paths[role]) for role in model.ROLES}
    if not read_files:
        contents = {role: None for role in model.ROLES}
    return TlsFacts(probe.root, probe.account, settings, paths, states, contents)
