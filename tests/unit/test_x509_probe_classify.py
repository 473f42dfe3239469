"""The X.509 probe's verdicts from an aborted handshake (pure): only a clean chain with a matching name is trusted,
and nothing but our own hook's code after a ServerHello can ever say so."""

import pytest

from remotectl.transport import psk_probe as pp
from remotectl.transport import x509_probe as xp

SIGNER_NOT_FOUND = 1 << 6


@pytest.mark.parametrize("status, name_ok, verdict", [
    (0, True, xp.X509_TRUSTED),
    (0, False, xp.X509_NAME_MISMATCH),
    (xp.CERT_INVALID | SIGNER_NOT_FOUND, True, xp.X509_UNTRUSTED),
    (xp.CERT_INVALID | SIGNER_NOT_FOUND | xp.CERT_EXPIRED, True, xp.X509_UNTRUSTED),  # another CA beats dates
    (xp.CERT_INVALID | xp.CERT_EXPIRED, True, xp.X509_EXPIRED),
    (xp.CERT_INVALID | xp.CERT_NOT_ACTIVATED, False, xp.X509_EXPIRED),
    (xp.CERT_INVALID, True, xp.X509_UNTRUSTED),  # no reason given: never trusted
    (None, None, xp.TLS_NOT_X509),  # the server sent no certificate
])
def test_checked_handshakes(status, name_ok, verdict):
    assert xp.classify(xp.RC_CHECKED, True, status, name_ok) == verdict


@pytest.mark.parametrize("rc, hello, verdict", [
    (xp.RC_CHECKED, False, pp.PROBE_BUG),
    (0, True, pp.PROBE_BUG),  # a completed handshake is a bug, never a verdict
    (pp.RC_HOOK_BUG, True, pp.PROBE_BUG),
    (pp.RC_NO_TLS13, True, pp.TLS12_ONLY),
    (pp.E_UNSUPPORTED_VERSION_PACKET, True, pp.TLS12_ONLY),
    (pp.E_TIMEDOUT, False, pp.TIMEOUT),
    (pp.E_UNEXPECTED_PACKET, False, pp.NOT_TLS),
    (pp.E_SESSION_EOF, False, xp.TLS_NOT_X509),  # a PSK-only remoted closes on our ClientHello
    (pp.E_FATAL_ALERT_RECEIVED, False, xp.TLS_NOT_X509),
    (pp.E_ERROR_IN_FINISHED_PACKET, True, pp.BAD_SERVER_FINISHED),
    (xp.E_PK_SIG_VERIFY_FAILED, True, pp.BAD_SERVER_FINISHED),
    (pp.E_PREMATURE_TERMINATION, True, xp.TLS_NOT_X509),
])
def test_other_outcomes(rc, hello, verdict):
    assert xp.classify(rc, hello, 0, True) == verdict


def test_every_verdict_has_a_hint_and_only_trusted_is_ok():
    for verdict in xp.VERDICTS:
        assert xp.hint_for(verdict, "spare1", 3121)
    assert xp.X509Result(verdict=xp.X509_TRUSTED).ok
    assert not any(xp.X509Result(verdict=v).ok for v in xp.VERDICTS if v != xp.X509_TRUSTED)
