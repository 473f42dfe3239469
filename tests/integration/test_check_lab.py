"""`remotectl check` against the real Pacemaker lab (shared with other engineers: everything changed is undone).

What the 200 + 200 test does, honestly: 400 probes of the live, connected remote node remote1 (with dummy1 held
there by a temporary location constraint) through the real CLI path (`python -m remotectl check --json remote1
...`: node name -> CIB address -> probe). For each key: 20 separate CLI invocations with one target each, plus
3 invocations listing remote1 60 times (probed concurrently by the bounded pool) = 200 probes per key, 46 CLI
processes in all. Meanwhile a thread samples crm_mon every 0.5 s. Afterwards: no "unexpected client takeover" in
the controller's log, no fail counts for remote1/dummy1, remote1 online and dummy1 started there in every sample,
and remote1's remoted never logged "Remote client connection accepted".

The blocked-pair test needs nft (package nftables). It blocks only the PROBE's path, not the cluster's: a rule in
the host namespace's output hook drops new TCP connections to 127.0.0.3:3121 from uid 0 (the probe runs as root
over SSH on node1), while the cluster's connection is made by pacemaker-controld as hacluster and is already
established. The rule lives in its own table, exists for a few seconds (two CLI runs with --timeout 2 and 1),
and is deleted in a finally block.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import require, require_probe_servers
from tests.integration.probe_servers import ACCEPTED_LINE, ProbeLab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
CONSTRAINT_ID = "remotectl-check-test-dummy1-on-remote1"
NFT_TABLE = "remotectl_check_test"
FAILED = "TLS handshake with remote client failed"
FIGURES = os.environ.get("REMOTECTL_CHECK_FIGURES")  # optional: where to write the measured figures as JSON


def remotectl(lab, *args, timeout=300):
    argv = [sys.executable, "-m", "remotectl"] + lab.remotectl_ssh_options + [str(a) for a in args]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout, cwd=str(REPO))


def check_json(lab, *args, **kw):
    proc = remotectl(lab, "check", "--json", *args, **kw)
    try:
        return proc, json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON (rc=%s): %s\n%s" % (proc.returncode, proc.stdout, proc.stderr))


def remoted_log_size(lab, name):
    try:
        return lab.remoted_log(name).stat().st_size
    except FileNotFoundError:
        return 0


def remoted_log_since(lab, name, mark):
    with open(lab.remoted_log(name), "rb") as handle:
        handle.seek(mark)
        return handle.read().decode(errors="replace")


def record_figures(name, figures):
    print("\n%s: %s" % (name, json.dumps(figures, sort_keys=True)))
    if FIGURES:
        existing = {}
        if os.path.exists(FIGURES):
            with open(FIGURES) as handle:
                existing = json.load(handle)
        existing[name] = figures
        with open(FIGURES, "w") as handle:
            json.dump(existing, handle, indent=1, sort_keys=True)


class Sampler(object):
    """crm_mon every 0.5 s in a thread: remote node online? dummy1 where, in which role?"""

    def __init__(self, lab, node, resource=None, interval=0.5):
        self.lab, self.node, self.resource, self.interval = lab, node, resource, interval
        self.samples = []
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                mon = self.lab.crm_mon_xml()
                node = next((n for n in mon.iter("node") if n.get("name") == self.node), None)
                online = node is not None and node.get("online") == "true"
                where = role = None
                if self.resource:
                    for rsc in mon.iter("resource"):
                        if rsc.get("id") == self.resource:
                            role = rsc.get("role")
                            where = [n.get("name") for n in rsc.findall("node")]
                self.samples.append({"t": time.time(), "online": online, "role": role, "nodes": where})
            except Exception as exc:  # noqa: BLE001 - a failed sample is recorded, not fatal
                self.errors.append(str(exc))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def online_count(self):
        return sum(1 for s in self.samples if s["online"])

    def started_on(self, node):
        return sum(1 for s in self.samples if s["role"] == "Started" and s["nodes"] == [node])


def fail_counts_for(lab, names):
    """Fail counts that concern these nodes/resources (others' tests may fail other things meanwhile)."""
    found = {}
    for node, per_resource in lab.fail_counts().items():
        for resource, count in per_resource.items():
            if count and (node in names or resource in names):
                found["%s/%s" % (node, resource)] = count
    return found


@pytest.fixture
def dummy1_on_remote1(lab):
    lab.wait_online(["node1", "remote1"], timeout=90)
    xml = '<rsc_location id="%s" rsc="dummy1" node="remote1" score="INFINITY"/>' % CONSTRAINT_ID
    lab.run(["cibadmin", "--create", "--scope", "constraints", "--xml-text", xml])
    try:
        lab.wait_for(lambda: lab.crm_mon_resources().get("dummy1", {}).get("nodes") == ["remote1"]
                     and lab.crm_mon_resources()["dummy1"].get("role") == "Started", 60,
                     "dummy1 to be started on remote1")
        lab.settle(60)  # no pending actions (e.g. probes of a node that just joined) while we sample
        yield
    finally:
        lab.run(["cibadmin", "--delete", "--xml-text", '<rsc_location id="%s"/>' % CONSTRAINT_ID], check=False)


@pytest.fixture
def wrong_key(tmp_path):
    path = tmp_path / "wrong-authkey"
    path.write_bytes(os.urandom(4096))
    path.chmod(0o600)
    return str(path)


def test_400_cli_probes_of_a_live_remote_do_not_disturb_it(lab, dummy1_on_remote1, wrong_key):
    right_key = str(lab.authkey)
    fails_before = fail_counts_for(lab, ("remote1", "dummy1"))
    mark = lab.log_mark()
    remoted_mark = remoted_log_size(lab, "remote1")
    verdicts = {"right": [], "wrong": []}
    invocations = {"right": [], "wrong": []}
    started = time.monotonic()
    with Sampler(lab, "remote1", "dummy1") as sampler:
        for which, key in (("right", right_key), ("wrong", wrong_key)):
            batches = [["remote1"]] * 20 + [["remote1"] * 60] * 3
            for targets in batches:
                proc, doc = check_json(lab, "--key", key, "--timeout", "10", *targets)
                invocations[which].append(proc.returncode)
                verdicts[which].extend(r["verdict"] for r in doc["results"])
                for result in doc["results"]:
                    assert result["target"] == "remote1" and result["address"] == "127.0.0.2"
                    assert result["port"] == 3121 and result["tcp"] == "open", result
        time.sleep(2)  # a few more samples after the last probe
    elapsed = time.monotonic() - started
    takeovers = lab.takeover_count(since=mark)
    fails_after = fail_counts_for(lab, ("remote1", "dummy1"))
    remoted_text = remoted_log_since(lab, "remote1", remoted_mark)
    figures = {
        "probes_right_key": len(verdicts["right"]), "match": verdicts["right"].count("match"),
        "probes_wrong_key": len(verdicts["wrong"]), "mismatch": verdicts["wrong"].count("mismatch"),
        "cli_invocations": len(invocations["right"]) + len(invocations["wrong"]),
        "takeovers": takeovers, "fail_counts_before": fails_before, "fail_counts_after": fails_after,
        "crm_mon_samples": len(sampler.samples), "samples_online": sampler.online_count,
        "samples_dummy1_started_on_remote1": sampler.started_on("remote1"), "sample_errors": len(sampler.errors),
        "remoted_failed_handshakes": remoted_text.count(FAILED), "remoted_accepted": remoted_text.count(ACCEPTED_LINE),
        "seconds": round(elapsed, 1),
    }
    record_figures("live_remote_400_probes", figures)
    assert verdicts["right"] == ["match"] * 200
    assert verdicts["wrong"] == ["mismatch"] * 200
    assert set(invocations["right"]) == {0} and set(invocations["wrong"]) == {3}
    assert takeovers == 0, lab.log_since(mark)[-3000:]
    assert remoted_text.count(ACCEPTED_LINE) == 0
    assert remoted_text.count(FAILED) >= 400  # one failed handshake per probe (others may probe remote1 too)
    assert fails_after == fails_before == {}, (fails_before, fails_after)
    assert len(sampler.samples) >= 20
    assert sampler.online_count == len(sampler.samples), [s for s in sampler.samples if not s["online"]]
    assert sampler.started_on("remote1") == len(sampler.samples), (
        [s for s in sampler.samples if s["nodes"] != ["remote1"] or s["role"] != "Started"],
        lab.log_since(mark)[-4000:])


def test_full_is_refused_against_a_connected_node(lab):
    lab.wait_online(["remote1"], timeout=90)
    mark = lab.log_mark()
    remoted_mark = remoted_log_size(lab, "remote1")
    for target in ("remote1", "127.0.0.2:3121", "127.0.0.2"):
        proc = remotectl(lab, "check", "--full", target)
        assert proc.returncode == 4, (target, proc.stdout, proc.stderr)
        assert proc.stdout == "" and "refusing --full against" in proc.stderr and "fence" in proc.stderr
    assert lab.takeover_count(since=mark) == 0
    assert remoted_log_since(lab, "remote1", remoted_mark).count(ACCEPTED_LINE) == 0
    assert lab.crm_mon_nodes()["remote1"]["online"] is True


@pytest.fixture
def standalone(tmp_path):
    require_probe_servers()
    probes = ProbeLab(tmp_path / "standalone")
    try:
        yield probes
    finally:
        probes.close()


def test_full_on_a_standalone_remoted_reports_the_protocol_version(lab, standalone):
    """The guard asks the live lab cluster, finds the host is none of its nodes, and lets the full check run."""
    remoted = standalone.remoted("vet", str(lab.authkey))
    target = "%s:%d" % (remoted.host, remoted.port)
    proc, doc = check_json(lab, "--full", target)
    assert proc.returncode == 0, proc.stderr
    (result,) = doc["results"]
    assert (result["verdict"], result["ok"], result["tcp"]) == ("match", True, "open")
    assert result["protocol_version"] == "1.1" and result["lrmd_rc"] == 0 and result["node"] is None
    assert remoted.wait_count(ACCEPTED_LINE, 1) == 1
    record_figures("full_standalone", {"target": target, "protocol_version": result["protocol_version"],
                                       "tls_version": result["tls_version"], "exit": proc.returncode})


def test_from_cluster_matrix(lab):
    lab.wait_online(["node1", "remote1", "remote2"], timeout=90)
    here_proc, here = check_json(lab, "--all")
    proc, doc = check_json(lab, "--all", "--from", "cluster")
    assert proc.returncode == here_proc.returncode, proc.stderr
    here_verdicts = {r["target"]: r["verdict"] for r in here["results"]}
    assert doc["mode"] == "cluster" and set(doc["matrix"]) == {"node1"}
    assert doc["matrix"]["node1"] == here_verdicts  # node1's own key is /etc/pacemaker/authkey, as here
    assert doc["matrix"]["node1"]["remote1"] == "match" and doc["matrix"]["node1"]["remote2"] == "match"
    assert {"remote1", "remote2", "guest1"} <= set(doc["matrix"]["node1"])
    for result in doc["results"]:
        assert result["from"] == "node1"
        assert {"target", "address", "port", "tcp", "verdict", "tls_version", "cipher", "ok", "hint"} <= set(result)
    source = doc["sources"]["node1"]
    assert source["error"] is None and source["key"]["path"] == "/etc/pacemaker/authkey"
    assert source["key"]["fingerprint"] == here["key"]["fingerprint"]
    # the human matrix
    proc = remotectl(lab, "check", "remote1", "remote2", "--from", "cluster")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["TARGET", "ADDRESS", "FROM", "node1"] for line in lines)
    assert any(line.split() == ["remote1", "127.0.0.2:3121", "match"] for line in lines)
    assert lines[-1] == "2 pairs: 2 ok"


def _nft(*args, check=True):
    return subprocess.run(["nft"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=check)


def test_from_cluster_names_the_blocked_pair(lab):
    require(shutil.which("nft") is not None, "nft not installed (package nftables)")
    lab.wait_online(["node1", "remote1", "remote2"], timeout=90)
    mark = lab.log_mark()
    _nft("delete", "table", "inet", NFT_TABLE, check=False)
    with Sampler(lab, "remote2") as sampler:
        try:
            _nft("add", "table", "inet", NFT_TABLE)
            _nft("add", "chain", "inet", NFT_TABLE, "out", "{ type filter hook output priority 0 ; }")
            _nft("add", "rule", "inet", NFT_TABLE, "out", "ip", "daddr", "127.0.0.3", "tcp", "dport", "3121",
                 "meta", "skuid", "0", "tcp", "flags", "&", "(syn|ack)", "==", "syn", "drop")
            proc, doc = check_json(lab, "--from", "cluster", "--timeout", "2", "remote1", "remote2", "guest1")
            human = remotectl(lab, "check", "--from", "cluster", "--timeout", "1", "remote1", "remote2")
        finally:
            _nft("delete", "table", "inet", NFT_TABLE, check=False)
        assert NFT_TABLE not in _nft("list", "tables").stdout
        time.sleep(1)
    assert proc.returncode == 3, proc.stderr
    matrix = doc["matrix"]["node1"]
    assert matrix["remote1"] == "match" and matrix["remote2"] == "tcp-timeout"
    failing = [(r["from"], r["target"], r["tcp"]) for r in doc["results"] if not r["ok"]]
    assert ("node1", "remote2", "timeout") in failing
    assert all(target != "remote1" for _, target, _ in failing)
    blocked = next(r for r in doc["results"] if r["target"] == "remote2")
    assert "firewall" in blocked["hint"] and "3121" in blocked["hint"]
    assert human.returncode == 3
    assert "pairs that are not ok" in human.stdout
    assert any(line.split()[:5] == ["node1", "remote2", "127.0.0.3:3121", "timeout", "tcp-timeout"]
               for line in human.stdout.splitlines())
    # the cluster itself never noticed
    assert lab.takeover_count(since=mark) == 0
    assert sampler.samples and sampler.online_count == len(sampler.samples), sampler.samples
    assert lab.crm_mon_nodes()["remote2"]["online"] is True
    record_figures("blocked_pair", {"matrix": matrix, "samples": len(sampler.samples),
                                    "samples_remote2_online": sampler.online_count})
