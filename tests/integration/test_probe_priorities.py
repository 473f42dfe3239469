"""The safe probe against real pacemaker-remoted instances whose TLS policy leaves only some PSK key exchanges: no
policy a cluster node itself can work with turns a matching key into `tls-not-psk` or `mismatch`, a wrong key is
still `mismatch`, and no probe ever completes a handshake (no "Remote client connection accepted" in remoted's log).

Pacemaker appends ":+DHE-PSK:+PSK" to PCMK_tls_priorities, so that variable alone cannot forbid plain PSK; a
system-wide GnuTLS configuration (what a crypto policy such as RHEL's writes, read through @SYSTEM or for any
priority string) can: ``tls-disabled-kx`` lines here, given to one remoted through GNUTLS_SYSTEM_PRIORITY_FILE.
In TLS 1.3 the (EC)DHE-PSK exchanges are one mode, psk_dhe_ke, whose group decides what GnuTLS reports as kx."""

import pytest

from remotectl.transport import psk_probe as pp
from tests.integration.conftest import require_probe_servers
from tests.integration.probe_servers import ACCEPTED_LINE, ProbeLab, make_key

NO_PLAIN_PSK = "[overrides]\ntls-disabled-kx = PSK\n"
POLICIES = {
    # tag: (PCMK_tls_priorities, system-wide GnuTLS config, the kx the probe must end up with)
    "ecdhe-only": ("NORMAL:+ECDHE-PSK", NO_PLAIN_PSK + "tls-disabled-kx = DHE-PSK\n", "ECDHE-PSK"),
    "dhe-only": ("NORMAL:-GROUP-ALL:+GROUP-FFDHE2048:+GROUP-FFDHE3072", NO_PLAIN_PSK + "tls-disabled-kx = ECDHE-PSK\n",
                 "DHE-PSK"),
    "no-plain-psk": (None, NO_PLAIN_PSK, "ECDHE-PSK"),
    # the server insists on ECDHE-PSK in a group the probe sends no key share for: a HelloRetryRequest first
    "server-precedence-x448": ("NORMAL:%SERVER_PRECEDENCE:-KX-ALL:+ECDHE-PSK:-GROUP-ALL:+GROUP-X448", None,
                               "ECDHE-PSK"),
    "default": (None, None, "PSK"),  # psk_ke when the server allows it: no key share computed
}


class Env(object):
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_probe_servers()
    work = tmp_path_factory.mktemp("probe-priorities")
    e = Env()
    e.key_path = make_key(work / "key256", 256)
    e.key = pp.read_key(e.key_path)
    e.wrong = pp.read_key(make_key(work / "wrong256", 256))
    lab = ProbeLab(work / "lab", first_host=160)
    try:
        e.remoteds = {tag: lab.remoted(tag, e.key_path, priorities=prio, gnutls_config=config)
                      for tag, (prio, config, _kx) in POLICIES.items()}
        yield e
    finally:
        lab.close()


@pytest.mark.parametrize("tag", sorted(POLICIES))
def test_match_and_mismatch_under_each_policy(env, tag):
    remoted = env.remoteds[tag]
    right = pp.probe(remoted.host, remoted.port, env.key, timeout=5)
    assert (right.verdict, right.tls_version, right.kx) == ("match", "TLS1.3", POLICIES[tag][2]), right.to_dict()
    assert right.events[-1] == "out:FINISHED:pre" and "out:FINISHED:post" not in right.events
    wrong = pp.probe(remoted.host, remoted.port, env.wrong, timeout=5)
    assert wrong.verdict == "mismatch", wrong.to_dict()
    assert remoted.wait_count("TLS handshake with remote client failed", 2) >= 2
    assert remoted.count(ACCEPTED_LINE) == 0, remoted.log_text()[-3000:]


def test_many_probes_under_restrictive_policies_never_complete_a_handshake(env):
    tags = ["ecdhe-only", "dhe-only", "server-precedence-x448"]
    targets = [(env.remoteds[t].host, env.remoteds[t].port) for t in tags] * 5
    results = pp.probe_many(targets, env.key, timeout=10, workers=15)
    assert [r.verdict for r in results] == ["match"] * 15
    for tag in tags:
        assert env.remoteds[tag].count(ACCEPTED_LINE) == 0
