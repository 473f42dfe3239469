"""The local key: generate a new one, read one for --key, fingerprint one. Only fingerprints leave this module."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import authkey as model
from remotectl.reports import RemotectlError, Report, Reporter
from remotectl.transport import localfiles


@dataclass
class KeyFileResult:
    """A local key file that generate wrote or fingerprint read (path "-" and no mode/owner for stdin)."""

    path: str
    fingerprint: str
    size: int
    mode: Optional[int] = json_field(default=None, convert=model.format_mode)
    owner: Optional[str] = None
    group: Optional[str] = None
    reports: List[Report] = json_field(omit=True, default_factory=list)

    @property
    def mode_text(self) -> Optional[str]:
        return model.format_mode(self.mode)

    def to_json(self) -> dict:
        return jsonable(self)


def check_size(size: int, reporter: Reporter) -> None:
    """Refuse a key size Pacemaker cannot use; warn about one that some clients cannot use."""
    error = model.key_size_error(size)
    if error:
        raise RemotectlError(error)
    warning = model.key_size_warning(size)
    if warning:
        reporter.warning(warning, code="key-size")


def _warn_if_world_readable(path: str, mode: int, reporter: Reporter) -> None:
    if mode & 0o004:
        reporter.warning(f"{path} is world-readable (mode {model.format_mode(mode)})", code="key-world-readable")


def generate_key(size: int = model.DEFAULT_KEY_BYTES) -> bytes:
    error = model.key_size_error(size)
    if error:
        raise RemotectlError(error)
    return os.urandom(size)


def generate_to_file(path: str, *, size: int, force: bool, mode: int = model.KEY_MODE) -> KeyFileResult:
    """Write a new random key to a local file, atomically, with its final mode (and hacluster:haclient when run
    as root and those exist) before any byte is written. Refuses to replace an existing file unless force."""
    reporter = Reporter()
    path = os.path.abspath(path)
    check_size(size, reporter)
    owner_ids = None
    if os.geteuid() == 0:
        owner_ids = localfiles.account_ids(model.KEY_OWNER, model.KEY_GROUP)
        if owner_ids is None:
            reporter.warning(f"no {model.KEY_OWNER} user or {model.KEY_GROUP} group here: the key is owned by root",
                             code="no-hacluster-account")
    data = generate_key(size)
    localfiles.write_secret_file(path, data, mode=mode, owner=owner_ids, overwrite=force)
    return _described(path, data, reporter)


def _described(path: str, data: bytes, reporter: Reporter) -> KeyFileResult:
    info = localfiles.file_info(path)
    return KeyFileResult(path=path, fingerprint=model.fingerprint(data), size=len(data), mode=info.mode,
                         owner=info.owner, group=info.group, reports=reporter.reports)


def read_key(path: str) -> Tuple[bytes, List[Report]]:
    """A local key file (for --key and fingerprint), size-checked; warns when it is world-readable."""
    reporter = Reporter()
    data = localfiles.read_secret_file(path, model.MAX_KEY_BYTES)
    error = model.key_size_error(len(data))
    if error:
        raise RemotectlError(f"{path}: {error}")
    try:
        _warn_if_world_readable(path, localfiles.file_info(path).mode, reporter)
    except RemotectlError:
        pass
    return data, reporter.reports


def fingerprint_file(path: str) -> KeyFileResult:
    reporter = Reporter()
    data = localfiles.read_secret_file(path, model.MAX_KEY_BYTES)
    if not data:
        reporter.warning(f"{path} is empty: Pacemaker treats an empty key file as no key", code="key-empty")
    elif len(data) < model.MIN_KEY_BYTES:
        reporter.warning(f"{path} is {len(data)} bytes: too weak for a PSK (push refuses keys under "
                         f"{model.MIN_KEY_BYTES} bytes)", code="key-too-short")
    result = _described(path, data, reporter)
    _warn_if_world_readable(path, result.mode, reporter)
    return result


def fingerprint_bytes(data: bytes, label: str = "-") -> KeyFileResult:
    return KeyFileResult(path=label, fingerprint=model.fingerprint(data), size=len(data))
