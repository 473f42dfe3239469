"""tls ca create / issue / push / verify against the hosts lab on Pacemaker 3.0 (LAB_PACEMAKER=3.0): certificates
for every node, pushed to /etc/pacemaker/tls and verified there, without enabling X.509, so the cluster keeps
running on its PSK key (checked before and after with `remotectl check` and crm_mon). The files are removed again."""

import json

import pytest

from tests.integration.authkey_helpers import remotectl

pytestmark = [pytest.mark.hosts_lab, pytest.mark.lab_pacemaker("3.0")]  # deselected on other versions

REMOTE_DIR = "/etc/pacemaker/tls"


def rctl(lab, *args):
    return remotectl([*lab.remotectl_ssh_options, "--cluster", "node1"], *args, timeout=240)


@pytest.fixture
def clean_tls(hosts_lab):
    for name in hosts_lab.node_names:
        hosts_lab.host_run(name, ["rm", "-rf", "--", REMOTE_DIR])
    yield hosts_lab
    for name in hosts_lab.node_names:
        hosts_lab.host_run(name, ["rm", "-rf", "--", REMOTE_DIR])


def _all_online(lab):
    doc = json.loads(rctl(lab, "nodes", "--json").stdout)
    return {n["name"]: n["online"] for n in doc["nodes"] if n["type"] != "bundle"}


def test_issue_push_verify_every_node_while_the_cluster_stays_on_psk(clean_tls, tmp_path):
    lab = clean_tls
    before = _all_online(lab)
    assert all(before.values()), before
    directory = str(tmp_path / "ca")
    created = rctl(lab, "tls", "ca", "create", "--dir", directory, "--json")
    assert created.returncode == 0, created.stderr
    issued = rctl(lab, "tls", "issue", "--all", "--dir", directory, "--json")
    assert issued.returncode == 0, issued.stderr
    issued_nodes = {n["node"]: n for n in json.loads(issued.stdout)["nodes"]}
    for name in ("remote1", "remote2", "guest1"):
        assert issued_nodes[name]["ip_addresses"] == [lab.host(name).address], issued_nodes[name]
    pushed = rctl(lab, "tls", "push", "--all", "--dir", directory, "--json")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    rows = json.loads(pushed.stdout)["nodes"]
    assert {n["node"]: n["status"] for n in rows} == {n: "written" for n in before}
    assert all(n["tls_mode"] == "psk" for n in rows)
    for name in before:
        stat = lab.host_run(name, ["stat", "-c", "%a %U %G", f"{REMOTE_DIR}/key.pem", REMOTE_DIR]).stdout.split()
        assert stat == ["440", "root", "haclient", "750", "root", "haclient"], (name, stat)
        readable = lab.host_run(name, ["runuser", "-u", "hacluster", "--", "cat", f"{REMOTE_DIR}/key.pem"])
        assert readable.returncode == 0, (name, readable.stderr)
    again = rctl(lab, "tls", "push", "--all", "--dir", directory, "--json")
    assert {n["status"] for n in json.loads(again.stdout)["nodes"]} == {"unchanged"}
    verified = rctl(lab, "tls", "verify", "--all", "--dir", directory, "--json")
    assert verified.returncode == 0, verified.stdout
    doc = json.loads(verified.stdout)
    assert doc["mode"] == "psk" and doc["ok"] is True
    assert [r["code"] for r in doc["reports"]] == ["tls-not-enabled"]
    for node in doc["nodes"]:
        assert node["problems"] == [] and node["days_left"] >= 364, node
        assert all(f["hacluster_can_read"] for f in node["files"]), node
    # still PSK: every remote's key matches and every node stayed online
    check = rctl(lab, "check", "--all", "--json", "--key", str(lab.authkey))
    assert check.returncode == 0, check.stdout
    assert all("match" in r["verdict"] and "mismatch" not in r["verdict"] for r in json.loads(check.stdout)["results"])
    assert _all_online(lab) == before


# A TLS 1.3 client with a client certificate (OpenSSL, through the host's Python): prints "handshake" when the
# server's chain and name check out, then waits for what the server does with our certificate.
CLIENT = r"""
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[1])
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
with socket.create_connection(("127.0.0.1", 3121), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname=sys.argv[4]) as tls:
        print("handshake", tls.version())
        tls.settimeout(2)
        try:
            print("read", tls.recv(1))
        except Exception as exc:
            print("after", type(exc).__name__)
"""
UNIT = "remotectl-tls-test"
LOG = "/var/log/pacemaker/remotectl-tls-test.log"


def _write_pair(directory, name, pair):
    key, cert = pair[0], pair[1]
    (directory / f"{name}.key").write_bytes(key)
    (directory / f"{name}.key").chmod(0o400)
    (directory / f"{name}.pem").write_bytes(cert)


def push_spare1_certificate(lab, directory, days=30):
    """A new cluster CA in `directory`, a certificate of `days` for spare1 (its name and lab address), pushed to
    spare1 with `tls push`; the CA's (key, certificate) PEMs."""
    from remotectl.pacemaker import x509 as model

    assert rctl(lab, "tls", "ca", "create", "--dir", str(directory)).returncode == 0
    ca = ((directory / "ca.key").read_bytes(), (directory / "ca.pem").read_bytes())
    address = lab.host("spare1").address
    _write_pair(directory, "spare1", model.new_node_certificate(*ca, "spare1", ["spare1"], [address], days))
    pushed = rctl(lab, "tls", "push", "spare1", "--dir", str(directory), "--json")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    return ca


def test_pacemaker_remoted_in_x509_mode_loads_pushed_files_and_accepts_only_the_cluster_ca(clean_tls, tmp_path):
    """On spare1 (not part of the cluster), a pacemaker-remoted of its own in X.509 mode on the files `tls push`
    installed: it starts, accepts a client with a certificate of the cluster CA and refuses one of another CA; the
    client verifies the server's chain and its name (spare1) too."""
    from remotectl.pacemaker import x509 as model

    lab = clean_tls
    directory = tmp_path / "ca"
    assert rctl(lab, "tls", "ca", "create", "--dir", str(directory)).returncode == 0
    ca = ((directory / "ca.key").read_bytes(), (directory / "ca.pem").read_bytes())
    _write_pair(directory, "spare1", model.new_node_certificate(*ca, "spare1", ["spare1"],
                                                                [lab.host("spare1").address], 30))
    rogue = model.new_ca("rogue", 30)
    rogue_pair = model.new_node_certificate(*rogue, "node1", ["node1"], [], 30)
    files = {"/tmp/rogue-ca.pem": rogue[1], "/tmp/rogue.pem": rogue_pair[1], "/tmp/rogue.key": rogue_pair[0]}
    pushed = rctl(lab, "tls", "push", "spare1", "--dir", str(directory), "--json")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    try:
        for path, data in files.items():
            lab.host_run("spare1", ["sh", "-c", 'cat > "$1"', "-", path], input=data.decode())
        env = [f"--setenv=PCMK_{role}_file={REMOTE_DIR}/{name}" for role, name in
               (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem"))]
        started = lab.host_run("spare1", ["systemd-run", "--unit", UNIT, *env, f"--setenv=PCMK_logfile={LOG}",
                                          "/usr/sbin/pacemaker-remoted"])
        assert started.returncode == 0, started.stderr
        _wait_for_log(lab, "accepting connections")
        ours = lab.host_run("spare1", ["python3", "-c", CLIENT, f"{REMOTE_DIR}/ca.pem", f"{REMOTE_DIR}/cert.pem",
                                       f"{REMOTE_DIR}/key.pem", "spare1"], check=False)
        assert ours.stdout.startswith("handshake TLSv1.3"), ours.stdout + ours.stderr
        _wait_for_log(lab, "Remote client connection accepted")
        assert "Certificate verification failed" not in _log(lab)
        theirs = lab.host_run("spare1", ["python3", "-c", CLIENT, f"{REMOTE_DIR}/ca.pem", "/tmp/rogue.pem",
                                         "/tmp/rogue.key", "spare1"], check=False)
        assert "read b'1'" not in theirs.stdout, theirs.stdout
        # GnuTLS refuses the other CA's certificate. (3.0.3's remoted then still logs "Remote client connection
        # accepted": pcmk__read_handshake_data returns OK after logging a verification error. Not asserted here.)
        _wait_for_log(lab, "Certificate verification failed: The certificate is NOT trusted")
        wrong_server = lab.host_run("spare1", ["python3", "-c", CLIENT, "/tmp/rogue-ca.pem", f"{REMOTE_DIR}/cert.pem",
                                               f"{REMOTE_DIR}/key.pem", "spare1"], check=False)
        assert wrong_server.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in wrong_server.stderr
        _shipped_x509_probe_on_the_host(lab, ca[1], rogue[1])
    finally:
        lab.host_run("spare1", ["systemctl", "stop", UNIT], check=False)
        lab.host_run("spare1", ["rm", "-rf", "--", LOG, REMOTE_DIR, *files])


def _shipped_x509_probe_on_the_host(lab, ca_pem, rogue_ca_pem):
    """The X.509 probe as `check --from cluster` ships it, run by the host's own python3 and libgnutls (no
    remotectl, no cryptography there): GnuTLS's verdict per CA, the details null, remoted accepts no client."""
    from remotectl.transport import x509_node

    accepted = _log(lab).count("Remote client connection accepted")
    for pem, verdict in ((ca_pem, "x509-trusted"), (rogue_ca_pem, "x509-untrusted")):
        argv, stdin = x509_node.remote_invocation([("127.0.0.1", 3121, ["spare1"])], ca_pem=pem, timeout=5)
        done = lab.host_run("spare1", argv, input=stdin.decode(), check=False)
        doc = json.loads(done.stdout.strip().splitlines()[-1])
        assert done.returncode == 0 and doc["error"] is None, done.stdout + done.stderr
        (result,) = doc["results"]
        assert result["verdict"] == verdict and result["subject"] is None, result
        assert result["events"][-1] == "out:CERTIFICATE:pre", result
    assert _log(lab).count("Remote client connection accepted") == accepted


def _log(lab) -> str:
    return lab.host_run("spare1", ["cat", LOG], check=False).stdout


def _wait_for_log(lab, text, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while text not in _log(lab):
        assert time.monotonic() < deadline, f"{text!r} not in {LOG}: {_log(lab)[-2000:]}"
        time.sleep(0.2)


# A real client of the X.509 remoted that completed its handshake with a valid certificate and registered (the
# stand-in for a cluster node's connection): it prints every message it gets until /tmp/probes-done appears, then
# registers a second time on the same session to show the session is intact.
HOLDER = r"""
import os, socket, ssl, struct, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[1])
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 3121), timeout=5), server_hostname="spare1")
HDR = struct.Struct("<IIQQIIII")
def register(n):
    body = ('<lrmd_command t="lrmd" lrmd_op="register" lrmd_clientname="holder" lrmd_protocol_version="1.1" '
            'lrmd_remote_msg_id="%d" lrmd_remote_msg_type="request"/>' % n).encode() + b"\0"
    tls.sendall(HDR.pack(0xBADADBBD, 1, n, 0, HDR.size + len(body), HDR.size, 0, len(body)))
    tls.sendall(body)
register(1)
tls.settimeout(0.2)
data, asked, end = b"", False, time.time() + 240
while time.time() < end:
    if not asked and os.path.exists("/tmp/probes-done"):
        register(2)
        asked = True
    try:
        chunk = tls.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        print("EOF", flush=True)
        break
    data += chunk
    while len(data) >= HDR.size and len(data) >= HDR.unpack(data[:HDR.size])[4]:
        size = HDR.unpack(data[:HDR.size])[4]
        print(data[HDR.size:size].rstrip(b"\0").decode(), flush=True)
        data = data[size:]
        if asked:
            sys.exit(0)
"""
HOLDER_UNIT = "remotectl-tls-holder"
HOLDER_OUT = "/tmp/holder.out"


def test_x509_probes_leave_a_connected_client_of_an_x509_remoted_alone(clean_tls, tmp_path):
    """200 `check --ca` probes (half of them 16 at a time) against spare1's own X.509 remoted while a real client
    holds a completed, registered session: every verdict is x509-trusted, remoted accepts no client but the holder,
    the holder gets no new-client notification (what a cluster node takes for a takeover) and its session still
    answers afterwards."""
    import subprocess
    import sys

    lab = clean_tls
    directory = tmp_path / "ca"
    push_spare1_certificate(lab, directory)
    address = lab.host("spare1").address
    ca_file, cert_file, key_file = (f"{REMOTE_DIR}/{name}" for name in ("ca.pem", "cert.pem", "key.pem"))
    try:
        env = [f"--setenv=PCMK_{role}_file={path}" for role, path in
               (("ca", ca_file), ("cert", cert_file), ("key", key_file))]
        started = lab.host_run("spare1", ["systemd-run", "--unit", UNIT, *env, f"--setenv=PCMK_logfile={LOG}",
                                          "/usr/sbin/pacemaker-remoted"])
        assert started.returncode == 0, started.stderr
        _wait_for_log(lab, "accepting connections")
        held = lab.host_run("spare1", ["systemd-run", "--unit", HOLDER_UNIT, "-p", f"StandardOutput=file:{HOLDER_OUT}",
                                       "-p", "StandardError=journal", "python3", "-c", HOLDER, ca_file, cert_file,
                                       key_file])
        assert held.returncode == 0, held.stderr
        _wait_for_log(lab, "Remote client connection accepted")
        _wait_for_file(lab, HOLDER_OUT, 'lrmd_op="register"')
        accepted = _log(lab).count("Remote client connection accepted")
        results = []
        for workers in ("1", "16"):
            done = subprocess.run(["ip", "netns", "exec", lab.host("spare1").netns, sys.executable, "-m", "remotectl",
                                   "check", "--ca", str(directory / "ca.pem"), "--workers", workers, "--json",
                                   *[address] * 100], capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr
            results += json.loads(done.stdout)["results"]
        assert len(results) == 200 and {r["verdict"] for r in results} == {"x509-trusted"}
        assert all(r["subject"] == "CN=spare1" and r["ip_addresses"] == [address] for r in results)
        lab.host_run("spare1", ["touch", "/tmp/probes-done"])
        _wait_for_file(lab, HOLDER_OUT, 'lrmd_remote_msg_id="2"')
        holder = lab.host_run("spare1", ["cat", HOLDER_OUT]).stdout
        assert "notify" not in holder and "EOF" not in holder, holder
        log = _log(lab)
        assert log.count("Remote client connection accepted") == accepted, log[-3000:]
        assert "Certificate verification failed" not in log
    finally:
        for unit in (HOLDER_UNIT, UNIT):  # one by one: systemctl stops none when one of them is not loaded
            lab.host_run("spare1", ["systemctl", "stop", unit], check=False)
            lab.host_run("spare1", ["systemctl", "reset-failed", unit], check=False)
        lab.host_run("spare1", ["rm", "-rf", "--", LOG, REMOTE_DIR, HOLDER_OUT, "/tmp/probes-done"])


def _wait_for_file(lab, path, text, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while text not in lab.host_run("spare1", ["cat", path], check=False).stdout:
        assert time.monotonic() < deadline, f"{text!r} not in {path}"
        time.sleep(0.2)
