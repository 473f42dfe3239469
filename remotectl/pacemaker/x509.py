"""Pure knowledge about Pacemaker 3.0's X.509 mode for remote connections: which settings turn it on, where
remotectl puts the files, how it builds a cluster CA and node certificates, and the checks on certificate bytes.

No I/O here: callers pass bytes in and get bytes, records and problems out. `cryptography` is imported inside the
functions that need it, so importing this module stays cheap.

Facts used (Pacemaker 3.0.0-3.0.3, lib/common/tls.c, daemons/execd/remoted_tls.c, etc/sysconfig/pacemaker.in;
pacemaker3.md §3.4, lab-v2.md part B):
* X.509 is on when PCMK_ca_file, PCMK_cert_file and PCMK_key_file are all non-empty (`pcmk__x509_enabled`);
  PCMK_crl_file is optional. The mode is all-or-nothing per process: no PSK then, on either side.
* The daemons read the variables from their environment (systemd's EnvironmentFile=: /etc/sysconfig/pacemaker
  or /etc/default/pacemaker), once at start.
* All files are PEM. The CA file is a trust list (`gnutls_certificate_set_x509_trust_file`, at least one
  certificate); the key must be unencrypted (`GNUTLS_PKCS_PLAIN`) and match the first certificate of the cert
  file (`gnutls_certificate_set_x509_key_file2`).
* The peer's certificate is verified against the CA file with no host name check (`verify_peers3(session, NULL)`
  in 3.0.1, `gnutls_session_set_verify_cert(session, NULL, 0)` in 3.0.2+): chain, validity period, signature.
  The server requires a client certificate, so every node needs its own.
* The files must be readable by the hacluster user or the haclient group (the controller and the CIB manager of
  a cluster node run as hacluster; pacemaker-remoted runs as root).
* Pacemaker only logs a warning when its certificate expires within 30 days.
* Seen on 3.0.3 (tests/integration/test_hosts_tls_lab.py): a client certificate from another CA is refused by
  GnuTLS ("Certificate verification failed ... NOT trusted"), yet remoted then also logs "Remote client connection
  accepted": `pcmk__read_handshake_data` (3.0.2 lib/common/tls.c:420-428) logs that error and returns OK.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from remotectl.jsonable import jsonable
from remotectl.pacemaker.authkey import ENV_FILES, FileFacts, Problem, format_mode, parse_env_file

CA_VARIABLE = "PCMK_ca_file"
CERT_VARIABLE = "PCMK_cert_file"
KEY_VARIABLE = "PCMK_key_file"
CRL_VARIABLE = "PCMK_crl_file"
REQUIRED_VARIABLES = (CA_VARIABLE, CERT_VARIABLE, KEY_VARIABLE)

REMOTE_DIR = "/etc/pacemaker/tls"  # where `tls push` installs the files on a node
REMOTE_NAMES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}
ROLES = ("ca", "cert", "key")
DAEMON_USER = "hacluster"
DAEMON_GROUP = "haclient"
REMOTE_MODES = {"ca": 0o644, "cert": 0o644, "key": 0o440}  # the key: root and the haclient group only
REMOTE_DIR_MODE = 0o750  # root:haclient, so hacluster can reach the files
LOCAL_KEY_MODE = 0o400
LOCAL_CERT_MODE = 0o644

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
DEFAULT_CA_NAME = "remotectl cluster CA"
DEFAULT_CA_DAYS = 3650
MAX_CA_DAYS = 7300
DEFAULT_DAYS = 365
MAX_DAYS = 825  # the CA/Browser Forum's old ceiling: long enough for a cluster, short enough to be renewed
EXPIRY_WARNING_DAYS = 30  # Pacemaker's own warning threshold
KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072")
DEFAULT_KEY_TYPE = "ec-p256"
BACKDATE = timedelta(minutes=5)  # nodes whose clocks lag a little still accept a fresh certificate
MAX_PEM_BYTES = 256 * 1024

_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_DNS_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?")


class CertificateError(ValueError):
    """Bytes that are not what they should be (one line, no secret in it)."""


# -- settings -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsSettings:
    """What a node's env files say about X.509. `mode` is what its daemons would use: x509 or psk."""

    mode: str
    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    crl_file: Optional[str] = None
    missing: Tuple[str, ...] = ()  # required variables not set while others are (X.509 stays off)
    notes: Tuple[str, ...] = ()

    def path(self, role: str) -> Optional[str]:
        return {"ca": self.ca_file, "cert": self.cert_file, "key": self.key_file}[role]

    def to_json(self) -> dict:
        return jsonable(self)


def tls_settings(env_texts: Mapping[str, str]) -> TlsSettings:
    """The PCMK_* X.509 settings from the env files' texts (path → text, absent files left out), merged as
    pacemaker.authkey.key_location merges them (the first of ENV_FILES wins), with a note where they disagree."""
    parsed = {path: parse_env_file(env_texts[path]) for path in ENV_FILES if path in env_texts}
    merged: Dict[str, str] = {}
    notes: List[str] = []
    for path in reversed(ENV_FILES):
        for name in REQUIRED_VARIABLES + (CRL_VARIABLE,):
            value = parsed.get(path, {}).get(name)
            if value and merged.get(name) not in (None, value):
                notes.append(f"{name} differs between {ENV_FILES[0]} and {ENV_FILES[1]}; using {ENV_FILES[0]}")
            if value:
                merged[name] = value
    set_names = [name for name in REQUIRED_VARIABLES if merged.get(name)]
    missing = tuple(name for name in REQUIRED_VARIABLES if not merged.get(name)) if set_names else ()
    mode = "x509" if len(set_names) == len(REQUIRED_VARIABLES) else "psk"
    return TlsSettings(mode, merged.get(CA_VARIABLE), merged.get(CERT_VARIABLE), merged.get(KEY_VARIABLE),
                       merged.get(CRL_VARIABLE), missing, tuple(notes))


def cluster_mode(modes: Sequence[str]) -> str:
    """One word for the cluster: x509, psk, mixed (nodes differ: they cannot talk), unknown (no node checked)."""
    distinct = sorted(set(modes))
    if not distinct:
        return "unknown"
    return distinct[0] if len(distinct) == 1 else "mixed"


# -- names ----------------------------------------------------------------------------------------------------------
def file_stem(node: str) -> str:
    """The node's name as a file name in the CA directory; refuses what could name another file."""
    if not _FILE_NAME_RE.fullmatch(node or "") or node in (CA_FILE[:-4], CA_KEY_FILE[:-4]):
        raise CertificateError(f"node name {node!r} cannot be used as a file name for its certificate")
    return node


def subject_alt_names(name: str, address: Optional[str]) -> Tuple[List[str], List[str]]:
    """(DNS names, IP addresses) for a node: its name and the address the cluster connects to. What is neither
    an IP address nor a host name is left out."""
    dns: List[str] = []
    ips: List[str] = []
    for value in (name, address):
        if not value:
            continue
        if is_ip(value):
            text = str(ipaddress.ip_address(value))
            if text not in ips:
                ips.append(text)
        elif _DNS_RE.fullmatch(value) and value.lower() not in [d.lower() for d in dns]:
            dns.append(value)
    return dns, ips


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# -- building (cryptography) ----------------------------------------------------------------------------------------
def _new_key(key_type: str):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise CertificateError(f"unknown key type {key_type!r} (choose from {', '.join(KEY_TYPES)})")


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def check_days(days: int, maximum: int) -> None:
    if not 1 <= days <= maximum:
        raise CertificateError(f"--days must be between 1 and {maximum}, not {days}")


def new_ca(name: str, days: int, *, key_type: str = DEFAULT_KEY_TYPE,
           now: Optional[datetime] = None) -> Tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a new self-signed CA that can sign node certificates only (pathlen 0)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    check_days(days, MAX_CA_DAYS)
    if not name or len(name) > 64:
        raise CertificateError("the CA name must be 1 to 64 characters")
    now = now or datetime.now(timezone.utc)
    key = _new_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return _key_pem(key), _cert_pem(cert)


def new_node_certificate(ca_key_pem: bytes, ca_cert_pem: bytes, node: str, dns: Sequence[str], ips: Sequence[str],
                         days: int, *, key_type: str = DEFAULT_KEY_TYPE, now: Optional[datetime] = None,
                         key_pem: Optional[bytes] = None) -> Tuple[bytes, bytes, List[str]]:
    """(key PEM, certificate PEM, notes) for one node, signed by the CA: CN = the node name, the SANs given,
    usable as TLS server and client (every Pacemaker node is both). The lifetime ends at the CA's at the latest.
    `key_pem`: certify this key (a renewal) instead of a new one of `key_type`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    check_days(days, MAX_DAYS)
    ca_cert = load_certificates(ca_cert_pem, "the CA certificate")[0]
    ca_key = load_private_key(ca_key_pem, "the CA key")
    if not same_public_key(ca_key, ca_cert):
        raise CertificateError("the CA key does not belong to the CA certificate")
    now = now or datetime.now(timezone.utc)
    notes: List[str] = []
    not_after = now + timedelta(days=days)
    if not_after > ca_cert.not_valid_after_utc:
        not_after = ca_cert.not_valid_after_utc
        notes.append(f"the certificate ends with the CA on {not_after:%Y-%m-%d}")
    if not_after <= now:
        raise CertificateError("the CA has expired: create a new one")
    key = load_private_key(key_pem, "the node key") if key_pem is not None else _new_key(key_type)
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if not names:
        raise CertificateError(f"no usable name or address for {node}")
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node[:64])]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=rsa_key, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    cert = builder.sign(ca_key, hashes.SHA256())
    return key_pem if key_pem is not None else _key_pem(key), _cert_pem(cert), notes


# -- reading --------------------------------------------------------------------------------------------------------
def load_certificates(data: bytes, what: str) -> list:
    """Every certificate of a PEM file (at least one), or CertificateError."""
    from cryptography import x509

    if not data or b"-----BEGIN CERTIFICATE-----" not in data:
        raise CertificateError(f"{what} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(f"{what} is not a valid PEM certificate") from None


def load_private_key(data: bytes, what: str):
    """An unencrypted PEM private key (what Pacemaker can load), or CertificateError."""
    from cryptography.hazmat.primitives import serialization

    if not data or b"PRIVATE KEY-----" not in data:
        raise CertificateError(f"{what} holds no PEM private key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError(f"{what} is encrypted: Pacemaker loads only unencrypted keys") from None
    except (ValueError, Exception):
        raise CertificateError(f"{what} is not a valid PEM private key") from None


def same_public_key(key, cert) -> bool:
    from cryptography.hazmat.primitives import serialization

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def issued_by(cert, ca) -> bool:
    """cert is signed by ca's key and names it as issuer."""
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except Exception:  # ValueError (names), InvalidSignature, TypeError (unsupported key): not issued by it
        return False


def fingerprint_der(cert) -> str:
    from cryptography.hazmat.primitives import hashes

    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class CertInfo:
    """What a certificate says (nothing secret). Fields are the JSON record."""

    subject: str
    issuer: str
    serial: str
    not_before: str
    not_after: str
    days_left: int
    dns_names: List[str]
    ip_addresses: List[str]
    fingerprint: str

    def to_json(self) -> dict:
        return jsonable(self)


def describe(cert, now: Optional[datetime] = None) -> CertInfo:
    from cryptography import x509

    now = now or datetime.now(timezone.utc)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    left = cert.not_valid_after_utc - now
    return CertInfo(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                    serial=f"{cert.serial_number:x}", not_before=cert.not_valid_before_utc.isoformat(),
                    not_after=cert.not_valid_after_utc.isoformat(), days_left=left.days, dns_names=list(dns),
                    ip_addresses=ips, fingerprint=fingerprint_der(cert))


def _is_ca(cert) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def covers(info: CertInfo, name: str) -> bool:
    """The certificate's SANs name `name` (an IP address or a host name, case-insensitively)."""
    if is_ip(name):
        return str(ipaddress.ip_address(name)) in info.ip_addresses
    return name.rstrip(".").lower() in [d.rstrip(".").lower() for d in info.dns_names]


@dataclass
class NodeCheck:
    """The result of check_node_files: what the certificate says, the CA's fingerprint, and what is wrong."""

    cert: Optional[CertInfo] = None
    ca_fingerprint: Optional[str] = None
    problems: List[Problem] = field(default_factory=list)

    def add(self, code: str, severity: str, message: str) -> None:
        self.problems.append(Problem(code, severity, message))


def check_node_files(ca_pem: Optional[bytes], cert_pem: Optional[bytes], key_pem: Optional[bytes], *,
                     names: Sequence[str] = (), reference_ca_pem: Optional[bytes] = None,
                     now: Optional[datetime] = None) -> NodeCheck:
    """The checks on one node's three files (None: not read): PEM, key matches certificate, the certificate chains
    to the node's CA file (and to the reference CA, when given: the cluster's), validity period and days left,
    and whether the SANs name each of `names` (a warning: Pacemaker does not compare host names)."""
    now = now or datetime.now(timezone.utc)
    result = NodeCheck()
    cas: list = []
    cert = None
    if ca_pem is not None:
        try:
            cas = load_certificates(ca_pem, "the CA file")
            result.ca_fingerprint = fingerprint_der(cas[0])
            not_ca = [c for c in cas if not _is_ca(c)]
            if not_ca:
                result.add("tls-not-a-ca", "error", "the CA file holds a certificate that is not a CA "
                           f"({not_ca[0].subject.rfc4514_string()}): GnuTLS will not trust what it signed")
        except CertificateError as exc:
            result.add("tls-pem-invalid", "error", str(exc))
    if cert_pem is not None:
        try:
            cert = load_certificates(cert_pem, "the certificate file")[0]
            result.cert = describe(cert, now)
        except CertificateError as exc:
            result.add("tls-pem-invalid", "error", str(exc))
    if key_pem is not None:
        try:
            key = load_private_key(key_pem, "the key file")
            if cert is not None and not same_public_key(key, cert):
                result.add("tls-key-mismatch", "error", "the key does not belong to the certificate")
        except CertificateError as exc:
            code = "tls-key-encrypted" if "encrypted" in str(exc) else "tls-pem-invalid"
            result.add(code, "error", str(exc))
    if cert is None:
        return result
    if cas and not any(issued_by(cert, ca) for ca in cas):
        result.add("tls-untrusted", "error",
                   f"the certificate (issuer {cert.issuer.rfc4514_string()}) was not signed by the node's CA file")
    if reference_ca_pem is not None:
        reference = load_certificates(reference_ca_pem, "the cluster CA")
        if not any(issued_by(cert, ca) for ca in reference):
            result.add("tls-untrusted", "error", f"the certificate (issuer {cert.issuer.rfc4514_string()}) was not "
                       f"signed by the cluster CA ({reference[0].subject.rfc4514_string()})")
        reference_prints = {fingerprint_der(ca) for ca in reference}
        if cas and not reference_prints & {fingerprint_der(ca) for ca in cas}:
            result.add("tls-ca-differs", "error", "the node's CA file does not hold the cluster CA: it would refuse "
                       "the other nodes' certificates")
    _check_time(result, cert, now)
    info = result.cert
    for name in names:
        if name and not covers(info, name):
            result.add("tls-name-mismatch", "warning", f"the certificate's names ({', '.join(info.dns_names + info.ip_addresses) or 'none'}) do not include {name}")
    return result


def _check_time(result: NodeCheck, cert, now: datetime) -> None:
    if cert.not_valid_before_utc > now:
        result.add("tls-not-yet-valid", "error", f"the certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    elif cert.not_valid_after_utc <= now:
        result.add("tls-expired", "error", f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    elif cert.not_valid_after_utc - now <= timedelta(days=EXPIRY_WARNING_DAYS):
        result.add("tls-expires-soon", "warning", f"the certificate expires in {result.cert.days_left} day(s), on "
                   f"{cert.not_valid_after_utc:%Y-%m-%d}")


# -- file permissions on a node -------------------------------------------------------------------------------------
def permission_problems(role: str, facts: FileFacts) -> List[Problem]:
    """Owner/mode problems of one installed file: the key must not be readable or writable by others, and every
    file must be readable by the daemons (hacluster user or haclient group)."""
    problems: List[Problem] = []
    if not facts.exists or facts.mode is None:
        return problems
    mode, what = facts.mode, f"{facts.path} ({facts.owner}:{facts.group} {format_mode(facts.mode)})"
    if role == "key" and mode & 0o004:
        problems.append(Problem("tls-key-world-readable", "error",
                                f"{what}: every local user can read the node's private key; use 0440 root:haclient"))
    if role == "key" and mode & 0o040 and facts.group not in (DAEMON_GROUP, "root"):
        problems.append(Problem("tls-key-group-readable", "warning", f"{what} is readable by group {facts.group}"))
    if mode & 0o022:
        problems.append(Problem("tls-writable-by-others", "error", f"{what} is writable by group or others"))
    if facts.reader_can_read is False:
        problems.append(Problem("tls-unreadable-by-hacluster", "error",
                                f"{what} cannot be read by the {DAEMON_USER} user: a cluster node's controller cannot "
                                "load it"))
    return problems
