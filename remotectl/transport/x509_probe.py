"""Non-disruptive X.509 probe for a pacemaker-remoted in certificate mode (Pacemaker 3.0+), GnuTLS through ctypes.

A remoted with ``PCMK_ca_file``/``PCMK_cert_file``/``PCMK_key_file`` offers no PSK; it requires a client
certificate. A *completed* handshake with a valid client certificate makes remoted notify the cluster's own
connection of a new client ("unexpected client takeover": the node gets fenced). On 3.0.2/3.0.3 even a client
certificate of ANOTHER CA does that: remoted logs the verification failure and still treats the client as
accepted (lib/common/tls.c ``pcmk__read_handshake_data``), so the probe must never send a certificate at all.

How it stays safe: TLS 1.3 order is ServerHello, {EncryptedExtensions, CertificateRequest, Certificate,
CertificateVerify, Finished} from the server, then the client's {Certificate, CertificateVerify, Finished}.
GnuTLS verifies the server's CertificateVerify signature and Finished as they arrive, so when the PRE hook for our
FIRST outgoing message after the ClientHello runs (our Certificate, or our Finished when none was requested), the
server has proven it holds the key of the certificate it sent. The hook checks that chain against the CA file
(``gnutls_certificate_verify_peers*``: signature, issuer, validity dates, and the expected names) and aborts the
handshake right there: no Certificate and no Finished of ours ever leave, the server's handshake never completes
(it logs one failed handshake). TLS <= 1.2 is refused at the ServerHello, as in the PSK probe.

It reuses the GnuTLS loading, transport and hook plumbing of :mod:`remotectl.transport.psk_probe`. Locally it adds
the certificate details with ``cryptography`` (imported lazily); with ``check --from cluster`` this module's source
is shipped verbatim to the cluster nodes and run there without them (:mod:`remotectl.transport.x509_node`), so it
imports only the standard library and psk_probe, and stays Python 3.6 compatible.
"""

import ctypes
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone

from remotectl.transport import psk_probe as base
from remotectl.transport.psk_probe import (NOT_TLS, PROBE_BUG, TIMEOUT, TLS12_ONLY, BAD_SERVER_FINISHED, ProbeError,
                                           ProbeResult)

# --- verdicts (stable strings, used in JSON) -------------------------------------------------------------------
X509_TRUSTED = "x509-trusted"
X509_UNTRUSTED = "x509-untrusted"
X509_EXPIRED = "x509-expired"
X509_NAME_MISMATCH = "x509-name-mismatch"
TLS_NOT_X509 = "tls-not-x509"

VERDICTS = (X509_TRUSTED, X509_UNTRUSTED, X509_EXPIRED, X509_NAME_MISMATCH, TLS_NOT_X509, TLS12_ONLY, NOT_TLS,
            BAD_SERVER_FINISHED, TIMEOUT, base.REFUSED, base.UNREACHABLE, base.UNRESOLVED, base.TCP_TIMEOUT,
            PROBE_BUG)

HINTS = {
    X509_TRUSTED: "the node's certificate chains to the CA, is valid now and names {target} (proven without"
                  " completing the handshake)",
    X509_UNTRUSTED: "the node's certificate does not chain to the given CA: another CA, or not signed by it;"
                    " run `remotectl tls verify`",
    X509_EXPIRED: "the node's certificate (or its CA) has expired or is not valid yet: renew it and restart"
                  " pacemaker-remoted",
    X509_NAME_MISMATCH: "the node's certificate is from the CA but does not name {target}: reissue it with that"
                        " name or address",
    TLS_NOT_X509: "port {port} speaks TLS but did not present an X.509 certificate (PSK mode: no PCMK_cert_file"
                  " on the node?)",
    TLS12_ONLY: "the server negotiated TLS <= 1.2: the certificate is not checked (the client would have to"
                " speak first)",
}

# gnutls_certificate_status_t bits (gnutls.h, GnuTLS 3.7.9)
CERT_INVALID = 1 << 1
CERT_NOT_ACTIVATED = 1 << 9
CERT_EXPIRED = 1 << 10
CERT_UNEXPECTED_OWNER = 1 << 14
# every other bit (issuer unknown, signature failure, signer not a CA, revoked, insecure algorithm, constraints,
# purpose) means the chain is not trusted
DATE_BITS = CERT_NOT_ACTIVATED | CERT_EXPIRED

GNUTLS_CRD_CERTIFICATE = 1
GNUTLS_X509_FMT_PEM = 1
HS_CLIENT_HELLO = 1
E_PK_SIG_VERIFY_FAILED = -89

RC_CHECKED = -1010  # our first message after the ClientHello is due: the server's proofs verified, chain checked

# Certificate key exchanges only (NORMAL has no PSK); TLS 1.2 only to recognise and refuse a TLS 1.2 server.
PRIORITY = b"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
DEFAULT_WORKERS = base.DEFAULT_WORKERS


def hint_for(verdict, target="", port="", address="", timeout=""):
    text = HINTS.get(verdict)
    if text is None:
        return base.hint_for(verdict, target, port, address, timeout)
    return text.format(target=target, port=port, address=address or target, timeout=timeout)


def classify(rc, server_hello_seen, chain_status=None, name_ok=None):
    """Verdict of an aborted handshake (pure). chain_status: the verify status without names (None when the hook
    never got to check); name_ok: whether one of the expected names matched."""
    if rc == RC_CHECKED:
        if not server_hello_seen:
            return PROBE_BUG
        if chain_status is None:
            return TLS_NOT_X509
        if chain_status & ~(CERT_INVALID | DATE_BITS):
            return X509_UNTRUSTED
        if chain_status & DATE_BITS:
            return X509_EXPIRED
        if chain_status:
            return X509_UNTRUSTED  # "invalid" alone: no reason given, never call it trusted
        return X509_TRUSTED if name_ok else X509_NAME_MISMATCH
    if rc == base.RC_NO_TLS13:
        return TLS12_ONLY
    if rc == base.RC_HOOK_BUG or rc >= 0:
        return PROBE_BUG  # rc 0 would be a completed handshake: impossible with the hook
    if rc == base.E_TIMEDOUT:
        return TIMEOUT
    if rc == base.E_UNSUPPORTED_VERSION_PACKET and server_hello_seen:
        return TLS12_ONLY
    if rc in base.NOT_TLS_RCS:
        return NOT_TLS
    if rc in base.LOCAL_ERROR_RCS:
        return PROBE_BUG
    if not server_hello_seen:
        # a PSK-only remoted closes on a ClientHello without a PSK; so does any server without a certificate
        return TLS_NOT_X509 if rc in base.EOF_RCS or rc == base.E_FATAL_ALERT_RECEIVED else NOT_TLS
    if rc in (base.E_ERROR_IN_FINISHED_PACKET, E_PK_SIG_VERIFY_FAILED):
        return BAD_SERVER_FINISHED  # the server does not hold the key of its certificate, or tampering
    return TLS_NOT_X509


# --- results ---------------------------------------------------------------------------------------------------
class X509Result(ProbeResult):
    """ProbeResult plus what the server's certificate says. ``ok`` only for x509-trusted."""

    __slots__ = ("subject", "issuer", "dns_names", "ip_addresses", "not_after", "days_left", "cert_status")
    _fields = ProbeResult.__slots__ + __slots__

    def __init__(self, subject=None, issuer=None, dns_names=(), ip_addresses=(), not_after=None, days_left=None,
                 cert_status=None, **kw):
        ProbeResult.__init__(self, **kw)
        self.ok = self.verdict == X509_TRUSTED
        self.subject, self.issuer, self.not_after, self.days_left = subject, issuer, not_after, days_left
        self.dns_names, self.ip_addresses, self.cert_status = tuple(dns_names), tuple(ip_addresses), cert_status


def describe_certificate(der, now=None):
    """Subject, issuer, SANs, end of validity and whole days left of a DER certificate (values from the node:
    hostile text, rendered by the caller through remotectl.display)."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(bytes(der))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    not_after = cert.not_valid_after_utc
    left = not_after - (now or datetime.now(timezone.utc))
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(), "dns_names": dns,
            "ip_addresses": ips, "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": left.days}


# --- GnuTLS ----------------------------------------------------------------------------------------------------
_proto_lock = threading.Lock()


def _gnutls():
    """psk_probe's libgnutls with the certificate functions prototyped as well."""
    lib = base._gnutls_tls13()
    with _proto_lock:
        if getattr(lib, "remotectl_x509", False):
            return lib
        c_void_p, c_int, c_uint, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p
        protos = {
            "gnutls_certificate_allocate_credentials": (c_int, [ctypes.POINTER(c_void_p)]),
            "gnutls_certificate_free_credentials": (None, [c_void_p]),
            "gnutls_certificate_set_x509_trust_file": (c_int, [c_void_p, c_char_p, c_int]),
            "gnutls_certificate_set_x509_trust_mem": (c_int, [c_void_p, ctypes.POINTER(base._Datum), c_int]),
            "gnutls_certificate_verify_peers2": (c_int, [c_void_p, ctypes.POINTER(c_uint)]),
            "gnutls_certificate_verify_peers3": (c_int, [c_void_p, c_char_p, ctypes.POINTER(c_uint)]),
            "gnutls_certificate_get_peers": (ctypes.POINTER(base._Datum), [c_void_p, ctypes.POINTER(c_uint)]),
        }
        for name, (restype, argtypes) in protos.items():
            try:
                func = getattr(lib, name)
            except AttributeError:
                raise ProbeError("GnuTLS lacks %s (too old?)" % name)
            func.restype, func.argtypes = restype, argtypes
        lib.remotectl_x509 = True
    return lib


class _TrustCredentials(object):
    """Certificate credentials holding only the CA (trust list): we never own a client certificate. The CA comes
    from a file, or from memory (PEM bytes: on a cluster node, the CA shipped with the probe)."""

    def __init__(self, lib, ca_path=None, ca_pem=None):
        self.lib = lib
        self.handle = ctypes.c_void_p()
        rc = lib.gnutls_certificate_allocate_credentials(ctypes.byref(self.handle))
        if rc < 0:
            raise ProbeError("gnutls_certificate_allocate_credentials: %s" % base._rc_name(lib, rc))
        if ca_pem is not None:
            buf = ctypes.create_string_buffer(bytes(ca_pem), len(ca_pem))
            datum = base._Datum(ctypes.cast(buf, ctypes.c_void_p), len(ca_pem))
            rc = lib.gnutls_certificate_set_x509_trust_mem(self.handle, ctypes.byref(datum), GNUTLS_X509_FMT_PEM)
        else:
            rc = lib.gnutls_certificate_set_x509_trust_file(self.handle, ca_path.encode("utf-8", "surrogateescape"),
                                                            GNUTLS_X509_FMT_PEM)
        if rc <= 0:
            self.close()
            why = base._rc_name(lib, rc) if rc < 0 else "no certificate in it"
            raise ProbeError("cannot load the CA %s: %s" % ("given" if ca_path is None else "file " + ca_path, why))

    def close(self):
        if self.handle:
            self.lib.gnutls_certificate_free_credentials(self.handle)
            self.handle = ctypes.c_void_p()


class _X509HookState(base._HookState):
    """Aborts at our first message after the ClientHello, after checking the server's chain and names there."""

    def __init__(self, lib, names):
        base._HookState.__init__(self, lib, "probe")
        self.names = names
        self.chain_status = None
        self.name_ok = None
        self.der = None

    def on_event(self, session, htype, when, incoming):
        self.events.append(base.event_name(incoming, htype, when))
        if incoming:
            if htype == base.HS_SERVER_HELLO and when == base.GNUTLS_HOOK_POST:
                self.server_hello_seen = True
                self.read_params(session)
                if self.version_num != base.GNUTLS_TLS1_3:
                    return base.RC_NO_TLS13
            return 0
        if htype == HS_CLIENT_HELLO:
            return 0  # also the second ClientHello after a HelloRetryRequest
        # Anything else we would send (Certificate, CertificateVerify, Finished) must never leave: stop here.
        if when == base.GNUTLS_HOOK_PRE and self.server_hello_seen and self.version_num == base.GNUTLS_TLS1_3:
            self.read_params(session)
            self._check(session)
            return RC_CHECKED
        return base.RC_NO_TLS13

    def _check(self, session):
        lib = self.lib
        count = ctypes.c_uint(0)
        peers = lib.gnutls_certificate_get_peers(session, ctypes.byref(count))
        if not peers or count.value == 0:
            return
        self.der = ctypes.string_at(peers[0].data, peers[0].size)
        status = ctypes.c_uint(0)
        if lib.gnutls_certificate_verify_peers2(session, ctypes.byref(status)) < 0:
            self.chain_status = CERT_INVALID
            return
        self.chain_status = status.value
        self.name_ok = False
        for name in self.names:
            status = ctypes.c_uint(0)
            rc = lib.gnutls_certificate_verify_peers3(session, name.encode("idna" if not _is_ascii(name) else "ascii"),
                                                      ctypes.byref(status))
            if rc >= 0 and not status.value & CERT_UNEXPECTED_OWNER:
                self.name_ok = True
                return


def _is_ascii(text):
    try:
        text.encode("ascii")
        return True
    except UnicodeError:
        return False


def _handshake(lib, cred, sock, names, deadline):
    """One aborted client handshake on a connected socket. Returns (session, keep, state, rc, alert)."""
    session = ctypes.c_void_p()
    rc = lib.gnutls_init(ctypes.byref(session), base.GNUTLS_CLIENT | base.GNUTLS_NO_SIGNAL)
    if rc < 0:
        raise ProbeError("gnutls_init: %s" % base._rc_name(lib, rc))
    state = _X509HookState(lib, names)
    state.deadline = deadline
    fd = sock.fileno()
    keep = (state.make_hook(), state.make_pull_timeout(fd))
    try:
        err_pos = ctypes.c_char_p()
        for what, rc in (("gnutls_priority_set_direct",
                          lib.gnutls_priority_set_direct(session, PRIORITY, ctypes.byref(err_pos))),
                         ("gnutls_credentials_set",
                          lib.gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred.handle))):
            if rc < 0:
                raise ProbeError("%s: %s" % (what, base._rc_name(lib, rc)))
        lib.gnutls_transport_set_int2(session, fd, fd)
        lib.gnutls_transport_set_pull_timeout_function(session, keep[1])
        remaining = deadline - time.monotonic()
        base._set_socket_timeouts(sock, remaining)
        lib.gnutls_handshake_set_timeout(session, max(1, int(remaining * 1000)))
        lib.gnutls_handshake_set_hook_function(session, base.GNUTLS_HANDSHAKE_ANY, base.GNUTLS_HOOK_BOTH, keep[0])
        for _attempt in range(1000):
            rc = lib.gnutls_handshake(session)
            if rc not in (base.E_AGAIN, base.E_INTERRUPTED):
                break
            if deadline - time.monotonic() <= 0:
                rc = base.E_TIMEDOUT
                break
            if rc == base.E_AGAIN:
                time.sleep(0.01)
        alert = lib.gnutls_alert_get(session) if rc == base.E_FATAL_ALERT_RECEIVED else None
    except BaseException:
        base._end_session(lib, session, keep)
        raise
    return session, keep, state, rc, alert


def _probe_with(lib, cred, host, port, names, timeout, family, describe):
    start = time.monotonic()
    target = str(host)
    sock, address, port, failed = base._open(X509Result, target, port, timeout, family, start)
    if failed is not None:
        return failed
    session = keep = None
    try:
        session, keep, state, rc, alert = _handshake(lib, cred, sock, names, start + timeout)
        verdict = classify(rc, state.server_hello_seen, state.chain_status, state.name_ok)
        if (state.transport_error or state.hook_error) and verdict != TIMEOUT:
            verdict = PROBE_BUG
        detail = base._rc_name(lib, rc) if rc != RC_CHECKED else "aborted before our Certificate/Finished"
        if state.chain_status:
            detail += "; certificate status 0x%x" % state.chain_status
        if alert is not None:
            detail += "; alert %s" % (base._cstr(lib.gnutls_alert_get_name(alert)) or alert)
        for what, error in (("hook", state.hook_error), ("transport", state.transport_error)):
            if error:
                detail += "; %s error %s" % (what, error)
        pending, der = state.pending, state.der
        extra = {}
        if der is not None and describe:
            try:
                extra = describe_certificate(der)
            except Exception as exc:  # an unparsable certificate: the verdict stands, the details are missing
                detail += "; certificate not parsed: %s" % type(exc).__name__
        result = X509Result(target=target, address=address, port=port, tcp=base.TCP_OPEN, verdict=verdict,
                            tls_version=state.version, cipher=state.cipher, kx=state.kx,
                            hint=hint_for(verdict, names[0] if names else target, port, address, timeout),
                            gnutls_rc=rc, detail=detail, events=state.events, cert_status=state.chain_status,
                            **extra)
    finally:
        base._end_session(lib, session, keep)
        keep = None
        sock.close()  # plain close: no gnutls_bye on an aborted handshake
    if pending is not None:
        raise pending
    result.elapsed_ms = base._ms(start)
    return result


def _probe_one(lib, cred, host, port, names, timeout, family, describe):
    start = time.monotonic()
    try:
        return _probe_with(lib, cred, host, port, names, timeout, family, describe)
    except ProbeError:
        raise
    except OSError as exc:
        if exc.errno in base.LOCAL_LIMIT_ERRNOS:
            raise base._local_limit(exc, "run a probe")
        return base._bug(str(host), port, start, exc, None, cls=X509Result)
    except Exception as exc:
        return base._bug(str(host), port, start, exc, None, cls=X509Result)


def probe_many(targets, ca_path=None, timeout=5.0, workers=DEFAULT_WORKERS, callback=None, family=0, ca_pem=None,
               describe=True):
    """Probe (host, port, names) triples against the CA file (or ``ca_pem`` bytes); results in input order.
    ``names``: the names the certificate must carry (one is enough; default: the host). ``describe`` False leaves
    the certificate details out (no ``cryptography`` needed: on a cluster node). ProbeError when the probe cannot
    run at all."""
    jobs = []
    for item in targets:
        host, port = item[0], item[1]
        names = [n for n in (item[2] if len(item) > 2 else ()) if n] or [str(host)]
        jobs.append((host, port, names))
    if not jobs:
        return []
    lib = _gnutls()
    cred = _TrustCredentials(lib, ca_path, ca_pem)
    results = [None] * len(jobs)
    try:
        pool = ThreadPoolExecutor(max_workers=max(1, min(int(workers), len(jobs))))
        futures = {}
        try:
            for index, (host, port, names) in enumerate(jobs):
                try:
                    futures[pool.submit(_probe_one, lib, cred, host, port, names, timeout, family,
                                         describe)] = index
                except RuntimeError as exc:
                    raise ProbeError("cannot start a probe thread: %s; use fewer --workers" % exc)
            for future in as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                if callback is not None:
                    callback(result)
        finally:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
    finally:
        cred.close()
    return results


def probe(host, port, ca_path, names=(), timeout=5.0, family=0):
    return probe_many([(host, port, list(names))], ca_path, timeout=timeout, workers=1, family=family)[0]
