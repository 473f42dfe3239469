"""Non-disruptive TLS 1.3 PSK key probe for pacemaker-remoted (GnuTLS through ctypes).

This module is self-contained (standard library + ctypes, loads ``libgnutls.so.30``) and runs unchanged on
Python 3.6 and newer: remotectl imports it locally, and also ships its source verbatim to cluster nodes.

How the probe proves a key without disturbing the cluster
---------------------------------------------------------
The client offers TLS 1.3 with the external PSK (identity ``lrmd``, the raw authkey bytes). A TLS 1.3 server checks
the PSK binder in the ClientHello, answers ServerHello ... Finished, and only completes its handshake when the
client's Finished arrives. The client verifies the server Finished (only a holder of the same PSK can produce it)
*before* it generates its own, so a GnuTLS hook on the *outgoing* Finished (``GNUTLS_HOOK_PRE``) runs only once the
server has proven the key, and aborts the handshake right there with a private negative code: pacemaker-remoted
never reaches "Remote client connection accepted", the cluster's connection is not taken over (that gets a node
fenced).

Safety rules implemented here:

* every hook body is wrapped in ``try/except BaseException`` and returns a negative code on any error (fail closed:
  a ctypes callback that raises would otherwise return garbage, i.e. "continue", and send our Finished);
* the ``CFUNCTYPE`` object stays referenced until ``gnutls_deinit``;
* a ServerHello selecting TLS <= 1.2 aborts at once (in TLS 1.2 the client's Finished goes first, so the key
  cannot be proven safely) and the Finished hook also refuses anything that is not TLS 1.3 with a PSK key exchange;
* one deadline per target covers the TCP connect and the whole handshake: GnuTLS's own timeouts restart with
  every read (a server sending one byte every few seconds would hold a probe for hours), so the transport's
  pull-timeout callback waits at most until that deadline, and SO_RCVTIMEO/SO_SNDTIMEO bound any single blocking
  call beside it;
* the session is closed with a plain ``close()``: no ``gnutls_bye`` on an aborted session.

Key material is only ever passed in memory (``bytes``); it is never logged, put into exceptions, reprs, JSON or argv.

On a cluster node: ``remote_invocation(targets, key_path, timeout)`` gives ``(argv, stdin_bytes)``: no secret and
no target in argv (``python3 -c BOOTSTRAP --timeout T --workers W [--key-file PATH]``); stdin is a JSON header
line (format, targets as data, the SHA-256 of the source) and this module's source, which BOOTSTRAP (Python 3.6)
checks before running it (a truncated transfer is reported, not executed). Without ``--key-file`` the node's own
key is used, located as Pacemaker does (``key_candidates``). Output: one JSON document (``main``); exit 0 when the
probes ran, whatever the verdicts, 2 when they could not (key, library, usage, local limits).

By hand: ``python3 psk_probe.py --target HOST[:PORT] [--key-file PATH]``.
"""

import argparse
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import re
import select
import shlex
import socket
import stat
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

FORMAT = "remotectl-psk-probe/1"

# --- verdicts (stable strings, used in JSON) -------------------------------------------------------------------
MATCH = "match"
MISMATCH = "mismatch"
TLS12_ONLY = "tls12-only"
NOT_TLS = "not-tls"
TLS_NOT_PSK = "tls-not-psk"
BAD_SERVER_FINISHED = "bad-server-finished"
TIMEOUT = "timeout"
REFUSED = "refused"
UNREACHABLE = "unreachable"
UNRESOLVED = "unresolved"
TCP_TIMEOUT = "tcp-timeout"
PROBE_BUG = "probe-bug"
# lrmd_check.full_check only: the handshake completed but the executor did not register us
REGISTER_FAILED = "register-failed"

VERDICTS = (MATCH, MISMATCH, TLS12_ONLY, NOT_TLS, TLS_NOT_PSK, BAD_SERVER_FINISHED, TIMEOUT,
            REFUSED, UNREACHABLE, UNRESOLVED, TCP_TIMEOUT, PROBE_BUG, REGISTER_FAILED)

# TCP outcome (ProbeResult.tcp)
TCP_OPEN = "open"
TCP_REFUSED = "refused"
TCP_TIMEDOUT = "timeout"
TCP_UNREACHABLE = "unreachable"
TCP_UNRESOLVED = "unresolved"

HINTS = {
    MATCH: "the node accepts this key (TLS 1.3 PSK proven without completing the handshake)",
    MISMATCH: "the node's authkey differs from the one used; run `remotectl authkey verify`",
    TLS12_ONLY: "the server offers only TLS <= 1.2: the key cannot be checked without completing the handshake;"
                " use `remotectl authkey verify`",
    NOT_TLS: "the service on port {port} is not a Pacemaker Remote TLS server: check PCMK_remote_port"
             " and what listens there",
    TLS_NOT_PSK: "port {port} speaks TLS but not with a pre-shared key (Pacemaker 3 X.509 mode, or another"
                 " TLS service)",
    BAD_SERVER_FINISHED: "the server's Finished did not verify: not a genuine pacemaker-remoted, or something"
                         " tampers with the connection",
    TIMEOUT: "TCP connected but no complete TLS answer within {timeout}s: a proxy/firewall in between, an"
             " overloaded or hung pacemaker-remoted, or a service that waits for the client or trickles its answer",
    REFUSED: "nothing listens on {port}: is pacemaker-remoted running, PCMK_remote_port?",
    UNREACHABLE: "no route to {address}: check the node's address and the network",
    UNRESOLVED: "{target} does not resolve: check the node's address (DNS, /etc/hosts)",
    TCP_TIMEOUT: "no answer to the TCP connect within {timeout}s: a firewall probably drops port {port}",
    PROBE_BUG: "internal error in remotectl's key probe (please report it); the node was not disturbed",
    REGISTER_FAILED: "TLS handshake completed but the executor did not register us: see detail",
}

# --- GnuTLS constants (gnutls.h, GnuTLS 3.7.9) -----------------------------------------------------------------
GNUTLS_CLIENT = 1 << 1
GNUTLS_NO_SIGNAL = 1 << 6
GNUTLS_CRD_PSK = 4
GNUTLS_PSK_KEY_RAW = 0
GNUTLS_HANDSHAKE_ANY = 0xFFFFFFFF
GNUTLS_HOOK_PRE = 0
GNUTLS_HOOK_POST = 1
GNUTLS_HOOK_BOTH = -1
GNUTLS_TLS1_2 = 4
GNUTLS_TLS1_3 = 5
GNUTLS_KX_PSK = 9
GNUTLS_KX_DHE_PSK = 10
GNUTLS_KX_ECDHE_PSK = 14
PSK_KX = (GNUTLS_KX_PSK, GNUTLS_KX_DHE_PSK, GNUTLS_KX_ECDHE_PSK)

HS_SERVER_HELLO = 2
HS_FINISHED = 20
HANDSHAKE_NAMES = {
    0: "HELLO_REQUEST", 1: "CLIENT_HELLO", 2: "SERVER_HELLO", 3: "HELLO_VERIFY_REQUEST", 4: "NEW_SESSION_TICKET",
    5: "END_OF_EARLY_DATA", 8: "ENCRYPTED_EXTENSIONS", 11: "CERTIFICATE", 12: "SERVER_KEY_EXCHANGE",
    13: "CERTIFICATE_REQUEST", 14: "SERVER_HELLO_DONE", 15: "CERTIFICATE_VERIFY", 16: "CLIENT_KEY_EXCHANGE",
    20: "FINISHED", 22: "CERTIFICATE_STATUS", 23: "SUPPLEMENTAL", 24: "KEY_UPDATE", 25: "COMPRESSED_CERTIFICATE",
    254: "CHANGE_CIPHER_SPEC", 1025: "HELLO_RETRY_REQUEST",
}

E_UNSUPPORTED_VERSION_PACKET = -8
E_UNEXPECTED_PACKET_LENGTH = -9
E_LARGE_PACKET = -7
E_FATAL_ALERT_RECEIVED = -12
E_UNEXPECTED_PACKET = -15
E_ERROR_IN_FINISHED_PACKET = -18
E_UNEXPECTED_HANDSHAKE_PACKET = -19
E_MEMORY_ERROR = -25
E_AGAIN = -28
E_INVALID_REQUEST = -50
E_INTERRUPTED = -52
E_PULL_ERROR = -54
E_NO_CIPHER_SUITES = -87
E_PREMATURE_TERMINATION = -110
E_TIMEDOUT = -319
E_SESSION_EOF = -328
E_RECORD_OVERFLOW = -417

A_ILLEGAL_PARAMETER = 47
A_DECRYPT_ERROR = 51
A_UNKNOWN_PSK_IDENTITY = 115

# Private hook return codes (negative: GnuTLS aborts gnutls_handshake() with exactly this value).
RC_MATCH = -1000        # outgoing Finished reached in TLS 1.3 with PSK kx: server Finished verified
RC_NO_TLS13 = -1001     # ServerHello selected TLS <= 1.2
RC_HOOK_BUG = -1002     # exception inside the hook: fail closed
RC_NOT_PSK = -1003      # outgoing Finished reached but the kx is not PSK (never send Finished then either)
PRIVATE_RC_NAMES = {RC_MATCH: "PROBE_MATCH", RC_NO_TLS13: "PROBE_NO_TLS13", RC_HOOK_BUG: "PROBE_HOOK_BUG",
                    RC_NOT_PSK: "PROBE_NOT_PSK"}

EOF_RCS = (E_SESSION_EOF, E_PREMATURE_TERMINATION, E_PULL_ERROR)
NOT_TLS_RCS = (E_LARGE_PACKET, E_UNSUPPORTED_VERSION_PACKET, E_UNEXPECTED_PACKET_LENGTH, E_UNEXPECTED_PACKET,
               E_UNEXPECTED_HANDSHAKE_PACKET, E_RECORD_OVERFLOW)
LOCAL_ERROR_RCS = (E_MEMORY_ERROR, E_INVALID_REQUEST, E_NO_CIPHER_SUITES)
MISMATCH_ALERTS = (A_ILLEGAL_PARAMETER, A_DECRYPT_ERROR, A_UNKNOWN_PSK_IDENTITY)

EV_OUT_FINISHED_PRE = "out:FINISHED:pre"
EV_IN_SERVER_HELLO_POST = "in:SERVER_HELLO:post"

# Every PSK kx a node may accept (Pacemaker appends +DHE-PSK:+PSK to PCMK_tls_priorities, default NORMAL or @SYSTEM;
# a crypto policy may disable plain PSK), PSK first; TLS 1.2 only to recognise a TLS 1.2 server. Probe and --full.
PRIORITY = b"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+PSK:+ECDHE-PSK:+DHE-PSK"
PSK_IDENTITY = b"lrmd"
DEFAULT_PORT = 3121
DEFAULT_KEY_PATH = "/etc/pacemaker/authkey"
ALT_KEY_PATH = "/etc/corosync/authkey"
ENV_FILES = ("/etc/sysconfig/pacemaker", "/etc/default/pacemaker")
VERSION_TOOLS = ("pacemakerd", "pacemaker-remoted", "crm_mon")  # any prints "Pacemaker X.Y.Z" for --version
NO_FALLBACK_FROM = (3, 0, 0)  # Pacemaker 3.0 reads only PCMK_authkey_location (when set) or the default
DEFAULT_WORKERS = 16
MAX_KEY_BYTES = 65536  # the same limit as remotectl.pacemaker.authkey (a unit test holds them equal)


class ProbeError(Exception):
    """The probe cannot run at all (library missing, unusable key). Messages never contain key material."""


# --- results ---------------------------------------------------------------------------------------------------
class ProbeResult(object):
    """Outcome of one probe. ``ok`` is true only for ``match``. Never holds key material."""

    __slots__ = ("target", "address", "port", "tcp", "verdict", "tls_version", "cipher", "kx", "ok", "hint",
                 "elapsed_ms", "gnutls_rc", "detail", "events")
    _fields = __slots__

    def __init__(self, target=None, address=None, port=None, tcp=None, verdict=PROBE_BUG, tls_version=None,
                 cipher=None, kx=None, hint=None, elapsed_ms=None, gnutls_rc=None, detail=None, events=()):
        self.target, self.address, self.port, self.tcp = target, address, port, tcp
        self.verdict, self.tls_version, self.cipher, self.kx = verdict, tls_version, cipher, kx
        self.hint, self.elapsed_ms, self.gnutls_rc, self.detail = hint, elapsed_ms, gnutls_rc, detail
        self.ok, self.events = verdict == MATCH, tuple(events)

    def to_dict(self):
        out = {}
        for name in self._fields:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self):
        return "%s(target=%r, port=%r, verdict=%r, tls_version=%r, gnutls_rc=%r, elapsed_ms=%r)" % (
            type(self).__name__, self.target, self.port, self.verdict, self.tls_version, self.gnutls_rc,
            self.elapsed_ms)


def hint_for(verdict, target="", port="", address="", timeout=""):
    text = HINTS.get(verdict, HINTS[PROBE_BUG])
    return text.format(target=target, port=port, address=address or target, timeout=timeout)


# --- classification (pure) -------------------------------------------------------------------------------------
def classify(rc, server_hello_seen, events=(), alert=None):
    """Map the outcome of an aborted handshake to a verdict.

    rc: gnutls_handshake()'s return code (our hook's private codes included); server_hello_seen: a ServerHello was
    received and processed; events: hook trace strings like "out:FINISHED:pre"; alert: the alert number when rc
    is GNUTLS_E_FATAL_ALERT_RECEIVED.
    """
    events = frozenset(events)
    if rc == RC_MATCH:
        # belt and braces: only trust MATCH when the trace shows why it was returned
        if server_hello_seen and EV_OUT_FINISHED_PRE in events:
            return MATCH
        return PROBE_BUG
    if rc == RC_NO_TLS13:
        return TLS12_ONLY
    if rc == RC_NOT_PSK:
        return TLS_NOT_PSK
    if rc == RC_HOOK_BUG or rc >= 0:
        # rc 0 would mean a completed handshake: impossible with the hook, never report it as a match
        return PROBE_BUG
    if rc == E_TIMEDOUT:
        return TIMEOUT
    if rc == E_UNSUPPORTED_VERSION_PACKET and server_hello_seen:
        return TLS12_ONLY
    if rc in NOT_TLS_RCS:
        return NOT_TLS
    if rc in LOCAL_ERROR_RCS:
        return PROBE_BUG
    if not server_hello_seen:
        if rc in EOF_RCS:
            return MISMATCH
        if rc == E_FATAL_ALERT_RECEIVED:
            return MISMATCH if alert in MISMATCH_ALERTS else TLS_NOT_PSK
        return NOT_TLS
    if rc == E_ERROR_IN_FINISHED_PACKET:
        return BAD_SERVER_FINISHED
    return TLS_NOT_PSK


def event_name(incoming, htype, when):
    return "%s:%s:%s" % ("in" if incoming else "out", HANDSHAKE_NAMES.get(htype, str(htype)),
                         "post" if when else "pre")


# --- libgnutls via ctypes --------------------------------------------------------------------------------------
class _Datum(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_uint)]


_HOOK_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                              ctypes.c_void_p)
# int (*gnutls_pull_timeout_func)(gnutls_transport_ptr_t, unsigned int ms)
_PULL_TIMEOUT_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint)
GNUTLS_INDEFINITE_TIMEOUT = 0xFFFFFFFF

_lib = None
_lib_lock = threading.Lock()


def _load_library():
    names = ["libgnutls.so.30", "libgnutls.so"]
    last = None
    for name in names + [None]:
        if name is None:
            name = ctypes.util.find_library("gnutls")
            if not name:
                break
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            last = exc
    raise ProbeError("cannot load GnuTLS (libgnutls.so.30): %s" % (last or "not found"))


def _prototype(lib):
    c_void_p, c_int, c_uint, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p
    protos = {
        "gnutls_global_init": (c_int, []),
        "gnutls_check_version": (c_char_p, [c_char_p]),
        "gnutls_psk_allocate_client_credentials": (c_int, [ctypes.POINTER(c_void_p)]),
        "gnutls_psk_free_client_credentials": (None, [c_void_p]),
        "gnutls_psk_set_client_credentials": (c_int, [c_void_p, c_char_p, ctypes.POINTER(_Datum), c_int]),
        "gnutls_init": (c_int, [ctypes.POINTER(c_void_p), c_uint]),
        "gnutls_deinit": (None, [c_void_p]),
        "gnutls_priority_set_direct": (c_int, [c_void_p, c_char_p, ctypes.POINTER(c_char_p)]),
        "gnutls_credentials_set": (c_int, [c_void_p, c_int, c_void_p]),
        "gnutls_transport_set_int2": (None, [c_void_p, c_int, c_int]),
        "gnutls_handshake_set_timeout": (None, [c_void_p, c_uint]),
        "gnutls_record_set_timeout": (None, [c_void_p, c_uint]),
        "gnutls_handshake_set_hook_function": (None, [c_void_p, c_uint, c_int, _HOOK_FUNC]),
        "gnutls_transport_set_pull_timeout_function": (None, [c_void_p, _PULL_TIMEOUT_FUNC]),
        "gnutls_handshake": (c_int, [c_void_p]),
        "gnutls_record_send": (ctypes.c_ssize_t, [c_void_p, c_void_p, ctypes.c_size_t]),
        "gnutls_record_recv": (ctypes.c_ssize_t, [c_void_p, c_void_p, ctypes.c_size_t]),
        "gnutls_bye": (c_int, [c_void_p, c_int]),
        "gnutls_alert_get": (c_int, [c_void_p]),
        "gnutls_alert_get_name": (c_char_p, [c_int]),
        "gnutls_protocol_get_version": (c_int, [c_void_p]),
        "gnutls_protocol_get_name": (c_char_p, [c_int]),
        "gnutls_cipher_get": (c_int, [c_void_p]),
        "gnutls_cipher_get_name": (c_char_p, [c_int]),
        "gnutls_kx_get": (c_int, [c_void_p]),
        "gnutls_kx_get_name": (c_char_p, [c_int]),
        "gnutls_strerror": (c_char_p, [c_int]),
        "gnutls_strerror_name": (c_char_p, [c_int]),
    }
    for name, (restype, argtypes) in protos.items():
        try:
            func = getattr(lib, name)
        except AttributeError:
            raise ProbeError("GnuTLS lacks %s (too old?)" % name)
        func.restype = restype
        func.argtypes = argtypes


def gnutls():
    """The loaded, prototyped and initialised libgnutls (once per process). Raises ProbeError."""
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = _load_library()
            _prototype(lib)
            rc = lib.gnutls_global_init()
            if rc < 0:
                raise ProbeError("gnutls_global_init failed: %s" % _rc_name(lib, rc))
            version = lib.gnutls_check_version(None)
            lib.remotectl_version = version.decode("ascii", "replace") if version else "?"
            lib.remotectl_tls13 = bool(lib.gnutls_check_version(b"3.6.5"))
            _lib = lib
        return _lib


def gnutls_version():
    try:
        return gnutls().remotectl_version
    except ProbeError:
        return None


def _cstr(value):
    return value.decode("ascii", "replace") if value else None


def _rc_name(lib, rc):
    if rc in PRIVATE_RC_NAMES:
        return PRIVATE_RC_NAMES[rc]
    name = _cstr(lib.gnutls_strerror_name(rc))
    text = _cstr(lib.gnutls_strerror(rc))
    if name and text:
        return "%s (%s)" % (name, text)
    return name or text or str(rc)


class _PskCredentials(object):
    """GnuTLS PSK client credentials (identity "lrmd", raw key). Shareable between threads, read-only once set."""

    def __init__(self, lib, key):
        _check_key(key)
        size = len(key)
        self.lib = lib
        self.handle = ctypes.c_void_p()
        rc = lib.gnutls_psk_allocate_client_credentials(ctypes.byref(self.handle))
        if rc < 0:
            raise ProbeError("gnutls_psk_allocate_client_credentials: %s" % _rc_name(lib, rc))
        buf = ctypes.create_string_buffer(bytes(key), size)
        try:
            datum = _Datum(ctypes.cast(buf, ctypes.c_void_p), size)
            rc = lib.gnutls_psk_set_client_credentials(self.handle, PSK_IDENTITY, ctypes.byref(datum),
                                                      GNUTLS_PSK_KEY_RAW)
        finally:
            ctypes.memset(buf, 0, size)  # GnuTLS keeps its own copy
        if rc < 0:
            self.close()
            raise ProbeError("gnutls_psk_set_client_credentials: %s" % _rc_name(lib, rc))

    def close(self):
        if self.handle:
            self.lib.gnutls_psk_free_client_credentials(self.handle)
            self.handle = ctypes.c_void_p()

    def __repr__(self):
        return "<_PskCredentials>"


class _HookState(object):
    """Per-handshake state shared with the hook; ``probe`` mode aborts, ``full`` mode only records."""

    def __init__(self, lib, mode):
        self.lib = lib
        self.mode = mode
        self.events = []
        self.server_hello_seen = False
        self.version = None
        self.version_num = None
        self.cipher = None
        self.kx = None
        self.kx_num = None
        self.hook_error = None
        self.pending = None  # KeyboardInterrupt / SystemExit caught in the hook, re-raised after cleanup
        self.deadline = None  # time.monotonic() value no read may wait past (set by _handshake)
        self.transport_error = None

    def read_params(self, session):
        lib = self.lib
        self.version_num = lib.gnutls_protocol_get_version(session)
        self.version = _cstr(lib.gnutls_protocol_get_name(self.version_num))
        self.cipher = _cstr(lib.gnutls_cipher_get_name(lib.gnutls_cipher_get(session)))
        self.kx_num = lib.gnutls_kx_get(session)
        self.kx = _cstr(lib.gnutls_kx_get_name(self.kx_num))

    def on_event(self, session, htype, when, incoming):
        self.events.append(event_name(incoming, htype, when))
        if incoming:
            if htype == HS_SERVER_HELLO and when == GNUTLS_HOOK_POST:
                self.server_hello_seen = True
                self.read_params(session)
                if self.mode == "probe" and self.version_num != GNUTLS_TLS1_3:
                    return RC_NO_TLS13
            return 0
        if htype == HS_FINISHED and when == GNUTLS_HOOK_PRE:
            self.read_params(session)
            if self.mode != "probe":
                return 0
            # Our Finished is about to be generated: the server's Finished has been verified (TLS 1.3 order).
            if not self.server_hello_seen or self.version_num != GNUTLS_TLS1_3:
                return RC_NO_TLS13
            if self.kx_num not in PSK_KX:
                return RC_NOT_PSK
            return RC_MATCH
        return 0

    def make_hook(self):
        state = self

        def hook(session, htype, when, incoming, msg):
            try:
                rc = state.on_event(session, htype, when, incoming)
                return int(rc)
            except BaseException as exc:  # fail closed: never let GnuTLS see "continue" after an error
                state.hook_error = "%s: %s" % (type(exc).__name__, str(exc)[:200])
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    state.pending = exc
                return RC_HOOK_BUG if state.mode == "probe" else -1

        return _HOOK_FUNC(hook)

    def make_pull_timeout(self, fd):
        """GnuTLS asks this before each read whether data comes within ``ms``: never wait past the deadline. 0 is
        "timed out", also after an error here (recorded: probe-bug); -1 would be a pull error, i.e. a mismatch."""
        state = self

        def pull_timeout(_transport, ms):
            try:
                remaining = state.deadline - time.monotonic()
                if remaining <= 0:
                    return 0
                wait = remaining if ms == GNUTLS_INDEFINITE_TIMEOUT else min(ms / 1000.0, remaining)
                poller = select.poll()  # not select(): fds above 1023 are fine
                poller.register(fd, select.POLLIN | select.POLLPRI)
                return 1 if poller.poll(max(1, int(wait * 1000 + 0.999))) else 0
            except BaseException as exc:
                state.transport_error = "%s: %s" % (type(exc).__name__, str(exc)[:200])
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    state.pending = exc
                return 0

        return _PULL_TIMEOUT_FUNC(pull_timeout)


def _ms(start):
    return round((time.monotonic() - start) * 1000.0, 3)


def _connect(host, port, timeout, family):
    """Resolve and connect. Returns (sock or None, address, tcp_state, detail)."""
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        return None, None, TCP_UNRESOLVED, str(exc)
    if not infos:
        return None, None, TCP_UNRESOLVED, "no address"
    deadline = time.monotonic() + timeout
    last = (None, TCP_UNRESOLVED, "no address")
    for af, socktype, proto, _canon, sockaddr in infos:
        address = sockaddr[0]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = (address, TCP_TIMEDOUT, "timed out")
            break
        try:
            sock = socket.socket(af, socktype, proto)
        except OSError as exc:
            raise _local_limit(exc, "open a socket")
        try:
            sock.settimeout(remaining)
            sock.connect(sockaddr)
            sock.settimeout(None)  # blocking fd for GnuTLS (connect with a timeout leaves O_NONBLOCK set)
            return sock, address, TCP_OPEN, None
        except socket.timeout:
            last = (address, TCP_TIMEDOUT, "connect timed out")
        except ConnectionRefusedError:
            last = (address, TCP_REFUSED, "connection refused")
        except OSError as exc:
            last = (address, TCP_UNREACHABLE, exc.strerror or str(exc))
        sock.close()
    return (None,) + last


LOCAL_LIMIT_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS)


def _local_limit(exc, what):
    """ProbeError for a local resource limit (no file descriptor, no memory): no target is to blame for it."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    reason = exc.strerror or type(exc).__name__
    advice = "; raise the open-file limit (ulimit -n) or use fewer --workers" if exc.errno in (
        errno.EMFILE, errno.ENFILE) else ""
    return ProbeError("cannot %s: %s%s%s" % (what, reason, " (%s)" % name if name else "", advice))


def _set_socket_timeouts(sock, seconds):
    """No single recv/send on GnuTLS's blocking fd outlasts the deadline (a server that never reads would block a
    send for good): GnuTLS then returns GNUTLS_E_AGAIN and _handshake checks the deadline."""
    seconds = max(0.001, seconds)
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1000000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


_TCP_VERDICT = {TCP_REFUSED: REFUSED, TCP_TIMEDOUT: TCP_TIMEOUT, TCP_UNREACHABLE: UNREACHABLE,
                TCP_UNRESOLVED: UNRESOLVED}


def _handshake(lib, cred, sock, mode, timeout, deadline=None):
    """Run one client handshake on a connected socket, finished or failed by ``deadline`` (a time.monotonic()
    value; default: ``timeout`` from now). Returns (session, keep, state, rc, alert).

    The caller must call _end_session(lib, session, keep): ``keep`` holds the callbacks alive until
    gnutls_deinit. ``state.deadline`` bounds later record reads too (lrmd_check moves it on)."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    session = ctypes.c_void_p()
    rc = lib.gnutls_init(ctypes.byref(session), GNUTLS_CLIENT | GNUTLS_NO_SIGNAL)
    if rc < 0:
        raise ProbeError("gnutls_init: %s" % _rc_name(lib, rc))
    state = _HookState(lib, mode)
    state.deadline = deadline
    fd = sock.fileno()
    keep = (state.make_hook(), state.make_pull_timeout(fd))
    try:
        err_pos = ctypes.c_char_p()
        rc = lib.gnutls_priority_set_direct(session, PRIORITY, ctypes.byref(err_pos))
        if rc < 0:
            raise ProbeError("gnutls_priority_set_direct: %s" % _rc_name(lib, rc))
        rc = lib.gnutls_credentials_set(session, GNUTLS_CRD_PSK, cred.handle)
        if rc < 0:
            raise ProbeError("gnutls_credentials_set: %s" % _rc_name(lib, rc))
        lib.gnutls_transport_set_int2(session, fd, fd)
        lib.gnutls_transport_set_pull_timeout_function(session, keep[1])
        remaining = deadline - time.monotonic()
        _set_socket_timeouts(sock, remaining)
        lib.gnutls_handshake_set_timeout(session, max(1, int(remaining * 1000)))
        lib.gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_BOTH, keep[0])
        for _attempt in range(1000):
            rc = lib.gnutls_handshake(session)
            if rc not in (E_AGAIN, E_INTERRUPTED):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                rc = E_TIMEDOUT
                break
            if rc == E_AGAIN:  # a socket timeout, or a non-blocking fd: wait properly instead of spinning
                select.select([], [], [], min(remaining, 0.05))
        alert = lib.gnutls_alert_get(session) if rc == E_FATAL_ALERT_RECEIVED else None
    except BaseException:
        _end_session(lib, session, keep)
        raise
    return session, keep, state, rc, alert


def _end_session(lib, session, hook):
    if session:
        lib.gnutls_deinit(session)
    del hook  # only now may the callback thunk go away


def _scrub(text, key):
    """Make sure no key material ends up in a message (paranoia: GnuTLS and ctypes never put it there)."""
    text = str(text)[:300]
    if key and len(key) >= 4:
        raw = bytes(key)
        for needle in (raw.hex(), repr(raw)[2:-1][:64]):
            if needle and needle in text:
                return "<redacted>"
    return text


def _bug(target, port, start, exc, key, cls=ProbeResult):
    detail = "%s: %s" % (type(exc).__name__, _scrub(exc, key))
    return cls(target=target, port=port, verdict=PROBE_BUG, hint=hint_for(PROBE_BUG), elapsed_ms=_ms(start),
               detail=detail)


def _open(cls, target, port, timeout, family, start):
    """Check the port and connect to target:port. Returns (sock, address, int port, None), or (None, address, port,
    a ``cls`` result with the TCP-level verdict: unresolved (invalid port too), refused, tcp-timeout, unreachable)."""
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except (TypeError, ValueError):
        return None, None, port, cls(target=target, port=port, tcp=TCP_UNRESOLVED, verdict=UNRESOLVED,
                                     hint="invalid port %r" % (port,), elapsed_ms=_ms(start), detail="invalid port")
    sock, address, tcp, detail = _connect(target, port, timeout, family)
    if sock is None:
        verdict = _TCP_VERDICT[tcp]
        return None, address, port, cls(target=target, address=address, port=port, tcp=tcp, verdict=verdict,
                                        hint=hint_for(verdict, target, port, address, timeout),
                                        elapsed_ms=_ms(start), detail=detail)
    return sock, address, port, None


def _probe_with(lib, cred, host, port, timeout, family):
    start = time.monotonic()
    target = str(host)
    sock, address, port, failed = _open(ProbeResult, target, port, timeout, family, start)
    if failed is not None:
        return failed
    session = hook = None
    try:
        session, hook, state, rc, alert = _handshake(lib, cred, sock, "probe", timeout, deadline=start + timeout)
        verdict = classify(rc, state.server_hello_seen, state.events, alert)
        if state.transport_error and verdict != MATCH:
            verdict = PROBE_BUG
        detail = _rc_name(lib, rc)
        if alert is not None:
            detail += "; alert %s" % (_cstr(lib.gnutls_alert_get_name(alert)) or alert)
        if state.hook_error:
            detail += "; hook error %s" % state.hook_error
        if state.transport_error:
            detail += "; transport error %s" % state.transport_error
        if rc == 0:
            detail = "handshake completed although the hook should have aborted it"
        pending = state.pending
        result = ProbeResult(target=target, address=address, port=port, tcp=TCP_OPEN, verdict=verdict,
                             tls_version=state.version, cipher=state.cipher, kx=state.kx,
                             hint=hint_for(verdict, target, port, address, timeout), elapsed_ms=None,
                             gnutls_rc=rc, detail=detail, events=state.events)
    finally:
        _end_session(lib, session, hook)
        hook = None
        sock.close()  # plain close: no gnutls_bye on an aborted handshake
    if pending is not None:
        raise pending
    result.elapsed_ms = _ms(start)
    return result


def _check_key(key):
    if isinstance(key, str) or not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError("key must be bytes (the raw authkey file content)")
    if len(key) == 0:
        raise ProbeError("the key is empty")


def _gnutls_tls13():
    lib = gnutls()
    if not lib.remotectl_tls13:
        raise ProbeError("local GnuTLS %s has no TLS 1.3 (needs >= 3.6.5)" % lib.remotectl_version)
    return lib


def _probe_one(lib, cred, host, port, timeout, family, key):
    """_probe_with, with any unexpected error turned into a probe-bug result (KeyboardInterrupt still raises, and
    ProbeError: the probe cannot run here at all, e.g. out of file descriptors)."""
    start = time.monotonic()
    try:
        return _probe_with(lib, cred, host, port, timeout, family)
    except ProbeError:
        raise
    except OSError as exc:
        if exc.errno in LOCAL_LIMIT_ERRNOS:  # e.g. getaddrinfo's lazy import of the idna codec
            raise _local_limit(exc, "run a probe")
        return _bug(str(host), port, start, exc, key)
    except Exception as exc:
        return _bug(str(host), port, start, exc, key)


def probe(host, port, key, timeout=5.0, family=0):
    """Check that ``key`` (raw authkey bytes) matches the one of the pacemaker-remoted at host:port, safely.

    Never completes the TLS handshake. Per-target problems come back as verdicts; ProbeError is raised only when
    the probe cannot run at all (no libgnutls, empty key)."""
    _check_key(key)
    lib = _gnutls_tls13()
    cred = _PskCredentials(lib, key)
    try:
        return _probe_one(lib, cred, host, port, timeout, family, key)
    finally:
        cred.close()


def _port(text, default_port):
    text = text.strip()
    if not text:
        return default_port
    return int(text) if text.isdigit() else text  # an invalid port becomes an "unresolved" verdict, not an error


def parse_target(target, default_port=DEFAULT_PORT):
    """(host, port) from a (host, port) pair, {"host", "port"} dict, or "host", "host:port", "[v6]:port".

    Never raises: a malformed port is passed through and reported per target by the probe."""
    if isinstance(target, dict):
        return str(target.get("host", "")), target.get("port", default_port) or default_port
    if isinstance(target, (tuple, list)):
        if len(target) == 1:
            return str(target[0]), default_port
        return str(target[0]), target[1]
    text = str(target).strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, _port(rest[1:], default_port) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, default_port)
    return text, default_port


def probe_many(targets, key, timeout=5.0, workers=DEFAULT_WORKERS, callback=None, family=0):
    """Probe many targets concurrently (bounded thread pool). Results come back in input order.

    ``callback(result)``, if given, is called in the calling thread as each result arrives (completion order)."""
    _check_key(key)
    pairs = [parse_target(t) for t in targets]
    if not pairs:
        return []
    lib = _gnutls_tls13()
    cred = _PskCredentials(lib, key)
    results = [None] * len(pairs)
    try:
        pool = ThreadPoolExecutor(max_workers=max(1, min(int(workers), len(pairs))))
        futures = {}
        try:
            for index, (host, port) in enumerate(pairs):
                try:
                    future = pool.submit(_probe_one, lib, cred, host, port, timeout, family, key)
                except RuntimeError as exc:  # "can't start new thread": a local limit, no target's fault
                    raise ProbeError("cannot start a probe thread: %s; use fewer --workers" % exc)
                futures[future] = index
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


# --- keys ------------------------------------------------------------------------------------------------------
def read_key(path):
    """The raw bytes of an authkey file (every byte, trailing newline included, as Pacemaker uses it): a regular
    file of at most MAX_KEY_BYTES, both checked before reading (a FIFO would hang, /dev/zero fill the memory)."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ProbeError("key file %s is not a regular file" % path)
            key = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise ProbeError("cannot read key file %s: %s" % (path, exc.strerror or type(exc).__name__))
    if not key:
        raise ProbeError("key file %s is empty" % path)
    if len(key) > MAX_KEY_BYTES:
        raise ProbeError("key file %s is larger than %d bytes: not a Pacemaker authkey" % (path, MAX_KEY_BYTES))
    return key


def key_fingerprint(key):
    return "sha256:" + hashlib.sha256(bytes(key)).hexdigest()


def _env_file_value(path, name):
    """The last assignment of ``name`` in an environment file, or None. Read as remotectl.pacemaker.authkey's
    parse_env_file reads it (systemd's EnvironmentFile and sh: comments, ``export``, quotes); a copy, because this
    module imports nothing from remotectl, and a test feeds both the same files."""
    try:
        with open(path, "r", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    value = None
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, raw = line.partition("=")
        if not sep or key.strip() != name:
            continue
        try:
            value = " ".join(shlex.split(raw, comments=True))
        except ValueError:
            continue
    return value


def pacemaker_version():
    """(major, minor, patch) of the Pacemaker installed here, from ``--version`` of the first tool found, or None."""
    import subprocess

    for tool in VERSION_TOOLS:
        try:
            out = subprocess.run([tool, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(rb"Pacemaker\s+(\d+)\.(\d+)\.(\d+)", out or b"")
        if match:
            return tuple(int(part) for part in match.groups())
    return None


def key_candidates(env_files=ENV_FILES, version=None):
    """[(path, source)] in the order Pacemaker tries them (lrmd__init_remote_key): PCMK_authkey_location when set,
    else the default; before 3.0, or when ``version`` is unknown (so a silent fallback is never missed), also the
    default after an unusable configured key, then /etc/corosync/authkey. The same rule as
    remotectl.pacemaker.authkey.fallback_chain."""
    candidates = []
    empty_in = None
    for env_file in env_files:
        configured = _env_file_value(env_file, "PCMK_authkey_location")
        if configured:
            candidates.append((configured, "PCMK_authkey_location in %s" % env_file))
            break
        if configured == "" and empty_in is None:
            empty_in = env_file
    if version is not None and tuple(version) >= NO_FALLBACK_FROM:
        if not candidates and empty_in:
            return []  # set to nothing: 3.0 tries "" and loads no key, without falling back
        return candidates or [(DEFAULT_KEY_PATH, "default")]
    for path, source in ((DEFAULT_KEY_PATH, "default"), (ALT_KEY_PATH, "fallback (Pacemaker 2.1 only)")):
        if all(path != known for known, _source in candidates):
            candidates.append((path, source))
    return candidates


def locate_node_key(env_files=ENV_FILES, version=None):
    """Where this node's Pacemaker reads its remote key from (see key_candidates). Returns (key, path, source,
    warnings)."""
    warnings = []
    if version is None:
        warnings.append("the Pacemaker version could not be read here: guessing the locations of Pacemaker before "
                        "3.0 (with the fallbacks 3.0 dropped)")
    candidates = key_candidates(env_files, version)
    if not candidates:
        raise ProbeError("PCMK_authkey_location is set to nothing: Pacemaker %s loads no key (no fallback in 3.0)"
                         % ".".join(str(part) for part in version))
    errors = []
    for index, (path, source) in enumerate(candidates):
        try:
            key = read_key(path)
        except ProbeError as exc:
            errors.append(str(exc))
            if index == 0 and len(candidates) == 3:
                warnings.append("configured key unusable (%s); Pacemaker 2.1 falls back to %s, 3.0 does not"
                                % (exc, DEFAULT_KEY_PATH))
            continue
        return key, path, source, warnings
    raise ProbeError("no usable Pacemaker Remote key on this node: " + "; ".join(errors))


# --- remote invocation -----------------------------------------------------------------------------------------
BOOTSTRAP = (
    "import sys,json,hashlib\n"
    "h=json.loads(sys.stdin.buffer.readline().decode('utf-8'))\n"
    "s=sys.stdin.buffer.read()\n"
    "if hashlib.sha256(s).hexdigest()!=h.get('sha256'):\n"
    " sys.stdout.write(json.dumps({'format':h.get('format'),'results':[],"
    "'error':'probe module corrupted in transit'})+'\\n');sys.exit(2)\n"
    "g={'__name__':'remotectl_psk_probe'}\n"
    "exec(compile(s,'remotectl_psk_probe.py','exec'),g)\n"
    "sys.exit(g['main'](sys.argv[1:],header=h))\n"
)


def module_source():
    """This module's source, as bytes (what is shipped to the nodes)."""
    loader = globals().get("__loader__")
    path = globals().get("__file__")
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            return handle.read()
    if loader is not None and hasattr(loader, "get_source"):
        return loader.get_source(__name__).encode("utf-8")
    raise ProbeError("cannot find the probe module's source")


def remote_invocation(targets, key_path=None, timeout=5.0, workers=DEFAULT_WORKERS, python="python3"):
    """(argv, stdin_bytes) to run the probe on a cluster node: run argv there with stdin_bytes on its stdin.

    ``key_path`` None means: the node's own key, located like Pacemaker does (see ``locate_node_key``)."""
    pairs = [list(parse_target(target)) for target in targets]
    source = module_source()
    header = {"format": FORMAT, "targets": pairs, "sha256": hashlib.sha256(source).hexdigest()}
    argv = [python, "-c", BOOTSTRAP, "--timeout", repr(float(timeout)), "--workers", str(int(workers))]
    if key_path:
        argv += ["--key-file", str(key_path)]
    stdin = json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + source
    return argv, stdin


def _arg_parser():
    parser = argparse.ArgumentParser(prog="psk_probe", description="Safe TLS 1.3 PSK key probe for "
                                     "pacemaker-remoted; prints one JSON document.")
    parser.add_argument("--key-file", help="key to probe with (default: this node's Pacemaker Remote key)")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--target", action="append", default=[], help="HOST[:PORT], repeatable")
    return parser


class _ArgError(Exception):
    pass


def main(argv=None, header=None):
    """Probe targets (from the bootstrap header and/or --target) and print one JSON document on stdout."""
    doc = {"format": FORMAT, "node": socket.gethostname(), "python": "%d.%d.%d" % sys.version_info[:3],
           "gnutls": None, "key": None, "results": [], "error": None}
    status = 0
    try:
        parser = _arg_parser()
        parser.error = _raise_arg_error
        args = parser.parse_args(argv)
        targets = list((header or {}).get("targets") or []) + list(args.target)
        if args.key_file:
            key = read_key(args.key_file)
            path, source, warnings = args.key_file, "--key-file", []
        else:
            key, path, source, warnings = locate_node_key(version=pacemaker_version())
        doc["key"] = {"path": path, "source": source, "size": len(key), "fingerprint": key_fingerprint(key),
                      "warnings": warnings}
        doc["gnutls"] = gnutls().remotectl_version
        results = probe_many(targets, key, timeout=args.timeout, workers=args.workers)
        doc["results"] = [r.to_dict() for r in results]
        key = None
    except (ProbeError, _ArgError, ValueError, TypeError) as exc:
        doc["error"] = str(exc)
        status = 2
    except Exception as exc:  # report, never a traceback that could end up in a log with odd content
        doc["error"] = "internal error: %s" % type(exc).__name__
        status = 2
    sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
    sys.stdout.flush()
    return status


def _raise_arg_error(message):
    raise _ArgError("usage: " + message)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
