"""The full check: a COMPLETE TLS handshake plus executor registration with pacemaker-remoted (``check --full``).

DISRUPTIVE against a node a cluster is connected to: the cluster sees an "unexpected client takeover", marks the
node unclean and may fence it, so ``actions.check.plan_check`` guards every call. It runs only here, never on a
cluster node, which is why it is not in :mod:`remotectl.transport.psk_probe` (the file shipped to nodes holds the
safe probe only). It shares the probe's GnuTLS plumbing (library loading, credentials, the handshake with its hook in
``full`` mode, TCP connect) and its verdicts.
"""

from __future__ import annotations

import ctypes
import struct
import time

from remotectl.transport.psk_probe import (EOF_RCS, E_AGAIN, E_FATAL_ALERT_RECEIVED, E_INTERRUPTED, E_TIMEDOUT,
                                           E_UNEXPECTED_PACKET, LOCAL_LIMIT_ERRNOS, MATCH, MISMATCH, MISMATCH_ALERTS,
                                           REGISTER_FAILED, TCP_OPEN, TLS12_ONLY, TLS_NOT_PSK, ProbeError,
                                           ProbeResult, _bug, _check_key, _cstr, _end_session, _handshake,
                                           _local_limit, _ms, _open, _PskCredentials, _rc_name, classify, gnutls,
                                           hint_for)

GNUTLS_SHUT_WR = 1

# Pacemaker Remote message framing (40-byte header, then NUL-terminated XML)
MSG_MAGIC = 0xBADADBBD
MSG_HEADER = struct.Struct("<IIQQIIII")
MAX_REPLY = 1 << 20


class CheckResult(ProbeResult):
    """Outcome of ``full_check``: a probe result plus what the executor reported on registration."""

    __slots__ = ("protocol_version", "lrmd_rc", "uptime")
    _fields = ProbeResult._fields + __slots__

    def __init__(self, protocol_version=None, lrmd_rc=None, uptime=None, **kw):
        ProbeResult.__init__(self, **kw)
        self.protocol_version = protocol_version
        self.lrmd_rc = lrmd_rc
        self.uptime = uptime
        if self.verdict == MATCH and lrmd_rc != 0:
            self.ok = False


def classify_full(rc, server_hello_seen, events=(), alert=None, version=None):
    """Like ``classify`` for a *completed* handshake attempt (full_check): TLS 1.2 is fine there."""
    if rc == 0:
        return MATCH
    events = frozenset(events)
    if version == "TLS1.2" and server_hello_seen and "out:FINISHED:post" in events:
        # TLS 1.2: the server rejects our Finished (it cannot decrypt it) and closes
        if rc in EOF_RCS or rc in (E_UNEXPECTED_PACKET, -24) or (
                rc == E_FATAL_ALERT_RECEIVED and alert in MISMATCH_ALERTS + (20,)):
            return MISMATCH
    verdict = classify(rc, server_hello_seen, events, alert)
    # a full handshake accepts TLS 1.2, so "tls12-only" cannot be its answer: the server refused our PSK suites
    return TLS_NOT_PSK if verdict == TLS12_ONLY else verdict


def _send_all(lib, session, data):
    buf = ctypes.create_string_buffer(data, len(data))
    offset = 0
    while offset < len(data):
        sent = lib.gnutls_record_send(session, ctypes.byref(buf, offset), len(data) - offset)
        if sent in (E_AGAIN, E_INTERRUPTED):
            continue
        if sent < 0:
            raise ProbeError("send failed: %s" % _rc_name(lib, sent))
        offset += sent


def _send_message(lib, session, xml, msg_id):
    """Header and payload as two separate TLS records, as Pacemaker does (2.1.5 hangs otherwise)."""
    body = xml + b"\0"
    _send_all(lib, session, MSG_HEADER.pack(MSG_MAGIC, 1, msg_id, 0, MSG_HEADER.size + len(body),
                                            MSG_HEADER.size, 0, len(body)))
    _send_all(lib, session, body)


def _recv_some(lib, session, deadline):
    buf = ctypes.create_string_buffer(16384)
    while True:
        if time.monotonic() > deadline:
            raise ProbeError("timed out waiting for the executor's reply")
        got = lib.gnutls_record_recv(session, buf, len(buf))
        if got > 0:
            return buf.raw[:got]
        if got == 0:
            raise ProbeError("connection closed before the executor replied")
        if got in (E_AGAIN, E_INTERRUPTED):
            continue
        if got == E_TIMEDOUT:
            raise ProbeError("timed out waiting for the executor's reply")
        raise ProbeError("receive failed: %s" % _rc_name(lib, got))


def _parse_header(data):
    magic = struct.unpack("<I", data[:4])[0]
    if magic == MSG_MAGIC:
        fmt = "<IIQQIIII"
    elif struct.unpack(">I", data[:4])[0] == MSG_MAGIC:
        fmt = ">IIQQIIII"
    else:
        raise ProbeError("reply is not a Pacemaker Remote message (bad magic)")
    _m, _v, _id, _flags, size_total, offset, compressed, uncompressed = struct.unpack(fmt, data[:40])
    if size_total > MAX_REPLY or offset < 40 or offset > size_total:
        raise ProbeError("reply header is implausible")
    return size_total, offset, compressed, uncompressed


def _recv_message(lib, session, pending, deadline):
    data = pending
    while len(data) < MSG_HEADER.size:
        data += _recv_some(lib, session, deadline)
    size_total, offset, compressed, uncompressed = _parse_header(data)
    while len(data) < size_total:
        data += _recv_some(lib, session, deadline)
    payload = data[offset:offset + (compressed or uncompressed)]
    rest = data[size_total:]
    if compressed:
        import bz2
        payload = bz2.decompress(payload)
    return payload.rstrip(b"\0"), rest


def _parse_xml(payload):
    import xml.etree.ElementTree as ElementTree
    if b"<!DOCTYPE" in payload or b"<!ENTITY" in payload:
        raise ProbeError("reply contains a DTD; refusing to parse it")
    try:
        return ElementTree.fromstring(payload)
    except ElementTree.ParseError as exc:
        raise ProbeError("reply is not XML: %s" % exc)


def _register(lib, session, timeout, client_name):
    xml = ('<lrmd_command t="lrmd" lrmd_op="register" lrmd_clientname="%s" lrmd_protocol_version="1.1" '
           'lrmd_remote_msg_id="1" lrmd_remote_msg_type="request"/>' % _xml_attr(client_name)).encode("utf-8")
    lib.gnutls_record_set_timeout(session, max(1, int(timeout * 1000)))
    _send_message(lib, session, xml, 1)
    deadline = time.monotonic() + timeout
    pending = b""
    for _ in range(100):
        payload, pending = _recv_message(lib, session, pending, deadline)
        element = _parse_xml(payload)
        if element.get("lrmd_remote_msg_type") == "notify":
            continue
        if element.get("lrmd_remote_msg_id") not in (None, "1"):
            continue
        return element
    raise ProbeError("no reply to the registration")


def _xml_attr(text):
    return (str(text).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;"))


def full_check(host, port, key, timeout=5.0, family=0, client_name="remotectl-check"):
    """Complete handshake + executor registration. DISRUPTIVE against a node a cluster is connected to
    (the cluster sees an "unexpected client takeover" and may fence the node): the caller must guard it.

    Returns a CheckResult with ``protocol_version`` and ``lrmd_rc`` from the register reply."""
    _check_key(key)
    lib = gnutls()
    start = time.monotonic()
    target = str(host)
    cred = _PskCredentials(lib, key)
    try:
        sock, address, port, failed = _open(CheckResult, target, port, timeout, family, start)
        if failed is not None:
            return failed
        session = hook = None
        try:
            session, hook, state, rc, alert = _handshake(lib, cred, sock, "full", timeout,
                                                         deadline=start + timeout)
            common = dict(target=target, address=address, port=port, tcp=TCP_OPEN, tls_version=state.version,
                          cipher=state.cipher, kx=state.kx, gnutls_rc=rc, events=state.events)
            if rc < 0:
                verdict = classify_full(rc, state.server_hello_seen, state.events, alert, state.version)
                detail = _rc_name(lib, rc)
                if alert is not None:
                    detail += "; alert %s" % (_cstr(lib.gnutls_alert_get_name(alert)) or alert)
                return CheckResult(verdict=verdict, hint=hint_for(verdict, target, port, address, timeout),
                                   elapsed_ms=_ms(start), detail=detail, **common)
            state.read_params(session)  # TLS 1.2: the record cipher is only active now
            common.update(tls_version=state.version, cipher=state.cipher, kx=state.kx)
            state.deadline = time.monotonic() + timeout  # the registration has its own time
            try:
                reply = _register(lib, session, timeout, client_name)
            except ProbeError as exc:
                return CheckResult(verdict=REGISTER_FAILED, hint=hint_for(REGISTER_FAILED), elapsed_ms=_ms(start),
                                   detail=str(exc), **common)
            lrmd_rc = reply.get("lrmd_rc")
            try:
                lrmd_rc = int(lrmd_rc)
            except (TypeError, ValueError):
                lrmd_rc = None
            ok = reply.get("lrmd_op") == "register" and lrmd_rc == 0 and reply.get("lrmd_clientid")
            verdict = MATCH if ok else REGISTER_FAILED
            uptime = reply.get("uptime")
            lib.gnutls_bye(session, GNUTLS_SHUT_WR)
            return CheckResult(verdict=verdict, protocol_version=reply.get("lrmd_protocol_version"), lrmd_rc=lrmd_rc,
                               uptime=int(uptime) if uptime and uptime.isdigit() else None,
                               hint=("the node accepts this key (full handshake and registration)" if ok
                                     else hint_for(REGISTER_FAILED)),
                               elapsed_ms=_ms(start), detail="reply %s lrmd_rc=%s" % (reply.tag, lrmd_rc), **common)
        finally:
            _end_session(lib, session, hook)
            hook = None
            sock.close()
    except ProbeError:
        raise  # cannot run here at all (e.g. out of file descriptors): not this target's fault
    except OSError as exc:
        if exc.errno in LOCAL_LIMIT_ERRNOS:
            raise _local_limit(exc, "run a check")
        return _bug(target, port, start, exc, key, cls=CheckResult)
    except Exception as exc:
        return _bug(target, port, start, exc, key, cls=CheckResult)
    finally:
        cred.close()
