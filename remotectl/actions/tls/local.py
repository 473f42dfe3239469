"""The cluster CA and the node certificates on this machine: `tls ca create` and `tls issue`.

Keys are written with their final mode (0400) before any byte, atomically (transport.localfiles); nothing but
fingerprints and certificate facts leave this module. An existing file is replaced only with --force, and only when
it is a regular file (a symlink or a device is never followed or replaced).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import x509 as model
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, per_node_exit
from remotectl.transport import localfiles


def default_dir() -> str:
    """$REMOTECTL_TLS_DIR, else $XDG_DATA_HOME/remotectl/tls (~/.local/share/remotectl/tls)."""
    explicit = os.environ.get("REMOTECTL_TLS_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "remotectl", "tls")


def _paths_free(paths: Sequence[str], force: bool) -> None:
    for path in paths:
        if not localfiles.is_regular_or_absent(path):
            raise RefusedError(f"{path} exists and is not a regular file; refusing to replace it")
        if os.path.lexists(path) and not force:
            raise RefusedError(f"{path} already exists; pass --force to replace it")


def _write_pair(key_path: str, key_pem: bytes, cert_path: str, cert_pem: bytes, force: bool) -> None:
    """The key first (0400), then the certificate (0644): a certificate never names a key that is not there."""
    localfiles.write_secret_file(key_path, key_pem, mode=model.LOCAL_KEY_MODE, overwrite=force)
    localfiles.write_secret_file(cert_path, cert_pem, mode=model.LOCAL_CERT_MODE, overwrite=force)


@dataclass
class CaResult:
    directory: str
    certificate: str
    key: str
    ca: model.CertInfo
    key_type: str
    reports: List[Report] = json_field(omit=True, default_factory=list)

    def to_json(self) -> dict:
        return jsonable(self)


def create_ca(directory: str, *, name: str, days: int, key_type: str, force: bool) -> CaResult:
    directory = os.path.abspath(directory)
    cert_path, key_path = os.path.join(directory, model.CA_FILE), os.path.join(directory, model.CA_KEY_FILE)
    _paths_free([key_path, cert_path], force)
    try:
        key_pem, cert_pem = model.new_ca(name, days, key_type=key_type)
    except model.CertificateError as exc:
        raise RemotectlError(str(exc), exit_code=ExitCode.USAGE) from None
    localfiles.make_private_dir(directory)
    _write_pair(key_path, key_pem, cert_path, cert_pem, force)
    info = model.describe(model.load_certificates(cert_pem, "the CA certificate")[0])
    return CaResult(directory, cert_path, key_path, info, key_type)


def read_ca(directory: str) -> tuple:
    """(certificate PEM, key PEM) of the CA in directory."""
    cert = localfiles.read_secret_file(os.path.join(directory, model.CA_FILE), model.MAX_PEM_BYTES,
                                       what="CA certificate")
    key = localfiles.read_secret_file(os.path.join(directory, model.CA_KEY_FILE), model.MAX_PEM_BYTES,
                                      what="CA key")
    return cert, key


def read_ca_certificate(directory: str) -> Optional[bytes]:
    """The CA certificate of directory, or None when there is none."""
    path = os.path.join(directory, model.CA_FILE)
    if not os.path.exists(path):
        return None
    return localfiles.read_secret_file(path, model.MAX_PEM_BYTES, what="CA certificate")


def node_paths(directory: str, node: str) -> tuple:
    """(certificate path, key path) of node's files in the CA directory."""
    stem = model.file_stem(node)
    return os.path.join(directory, f"{stem}.pem"), os.path.join(directory, f"{stem}.key")


@dataclass
class IssuedNode:
    node: str
    type: Optional[str]
    ok: bool
    status: str  # issued | exists | failed | skipped
    certificate: Optional[str] = None
    key: Optional[str] = None
    dns_names: List[str] = field(default_factory=list)
    ip_addresses: List[str] = field(default_factory=list)
    not_after: Optional[str] = None
    fingerprint: Optional[str] = None
    message: Optional[str] = None
    error: Optional[str] = None


@dataclass
class IssueResult:
    directory: str
    ca: str  # the CA certificate's fingerprint
    days: int
    nodes: List[IssuedNode]
    reports: List[Report] = json_field(omit=True, default_factory=list)

    def exit_code(self) -> int:
        return per_node_exit(self.nodes)

    def to_json(self) -> dict:
        return jsonable(self)


@dataclass(frozen=True)
class IssueRequest:
    """One node to issue for: its name, type and the address the cluster connects to (None for cluster nodes)."""

    node: str
    type: Optional[str] = None
    address: Optional[str] = None
    skip: Optional[str] = None


def requests_from_nodes(specs: Sequence[str], nodes: Sequence, *, all_nodes: bool) -> List[IssueRequest]:
    """NODE names (or --all) → IssueRequests from the cluster's node records; an unknown name is refused."""
    from remotectl.actions.nodes import connect_address, find_node

    chosen = list(nodes) if all_nodes else []
    for spec in specs:
        node = find_node(nodes, spec)
        if node is None:
            raise RemotectlError(f"{spec} is not a node of this cluster")
        if node not in chosen:
            chosen.append(node)
    out = []
    for node in chosen:
        skip = "bundle replica: the bundle's container image carries its files" if node.type == "bundle" else None
        address = None if node.type == "cluster" else connect_address(node)
        out.append(IssueRequest(node.name, node.type, address, skip))
    return out


def issue(requests: Sequence[IssueRequest], directory: str, *, days: int, key_type: str,
          force: bool) -> IssueResult:
    """A key and a certificate per node, signed by the CA in directory. A node that already has files there keeps
    them (status `exists`) unless force."""
    directory = os.path.abspath(directory)
    try:
        model.check_days(days, model.MAX_DAYS)
    except model.CertificateError as exc:
        raise RemotectlError(str(exc), exit_code=ExitCode.USAGE) from None
    ca_cert, ca_key = read_ca(directory)
    ca_print = model.describe(model.load_certificates(ca_cert, "the CA certificate")[0]).fingerprint
    nodes = []
    for request in requests:
        nodes.append(_issue_one(request, directory, ca_cert, ca_key, days, key_type, force))
    return IssueResult(directory, ca_print, days, nodes)


def _issue_one(request: IssueRequest, directory: str, ca_cert: bytes, ca_key: bytes, days: int, key_type: str,
               force: bool) -> IssuedNode:
    row = IssuedNode(request.node, request.type, ok=False, status="failed")
    if request.skip:
        row.ok, row.status, row.message = True, "skipped", request.skip
        return row
    try:
        cert_path, key_path = node_paths(directory, request.node)
        row.certificate, row.key = cert_path, key_path
        if not force and (os.path.lexists(cert_path) or os.path.lexists(key_path)):
            row.ok, row.status = True, "exists"
            row.message = "already issued (--force issues a new key and certificate)"
            return row
        _paths_free([key_path, cert_path], force)
        dns, ips = model.subject_alt_names(request.node, request.address)
        key_pem, cert_pem, notes = model.new_node_certificate(ca_key, ca_cert, request.node, dns, ips, days,
                                                              key_type=key_type)
        _write_pair(key_path, key_pem, cert_path, cert_pem, force)
        info = model.describe(model.load_certificates(cert_pem, "the certificate")[0])
        row.dns_names, row.ip_addresses = info.dns_names, info.ip_addresses
        row.not_after, row.fingerprint = info.not_after, info.fingerprint
        row.ok, row.status, row.message = True, "issued", "; ".join(notes) or None
    except model.CertificateError as exc:
        row.error = str(exc)
    except RemotectlError as exc:
        row.error = exc.message
    return row
