"""The X.509 safe probe run ON a cluster node (``check --from cluster`` for nodes in X.509 mode).

The node needs only python3 (>= 3.6) and libgnutls: remotectl ships three sources over stdin, verbatim, and the
bootstrap in argv loads them as modules in this order: :mod:`remotectl.transport.psk_probe` (GnuTLS loading,
transport, hook plumbing), :mod:`remotectl.transport.x509_probe` (the hook that aborts before our
Certificate/Finished and never owns a client certificate: the very code the local probe runs) and this one (the
command line). ``cryptography`` is not needed there: the verdict comes from GnuTLS's verification status bits, and
the certificate details (subject, SANs, days left) are left out (null).

The CA is either the PEM given with ``--ca FILE``, shipped in the stdin header and loaded from memory (no temporary
file on the node), or the node's own ``PCMK_ca_file`` (what that node trusts), read from its environment files as
Pacemaker's systemd units do. Output: one JSON document; exit 0 when the probes ran, 2 when they could not.

Like psk_probe, this module imports nothing from remotectl at load time except the two modules shipped with it.
"""

import argparse
import hashlib
import json
import socket
import sys

from remotectl.transport import psk_probe as base
from remotectl.transport import x509_probe

FORMAT = "remotectl-x509-probe/1"
MAX_CA_BYTES = 1 << 20
PARTS = ("remotectl", "remotectl.transport", "remotectl.transport.psk_probe", "remotectl.transport.x509_probe",
         "remotectl.transport.x509_node")

# Checks the sources' SHA-256 (a truncated transfer is reported, not run), then loads each part as the module it
# is (the two packages are empty), so x509_probe's own imports find psk_probe; then runs the last part's main.
BOOTSTRAP = (
    "import sys,json,hashlib,types\n"
    "h=json.loads(sys.stdin.buffer.readline().decode('utf-8'))\n"
    "s=sys.stdin.buffer.read()\n"
    "if hashlib.sha256(s).hexdigest()!=h.get('sha256'):\n"
    " sys.stdout.write(json.dumps({'format':h.get('format'),'results':[],"
    "'error':'probe modules corrupted in transit'})+'\\n');sys.exit(2)\n"
    "for n,k in h['parts']:\n"
    " m=types.ModuleType(n);sys.modules[n]=m;p,_,a=n.rpartition('.')\n"
    " if p:setattr(sys.modules[p],a,m)\n"
    " exec(compile(s[:k],n.replace('.','/')+'.py','exec'),m.__dict__);s=s[k:]\n"
    "sys.exit(m.main(sys.argv[1:],header=h))\n"
)


def _source(module):
    if module is None:
        return b""
    with open(module.__file__, "rb") as handle:
        return handle.read()


def remote_invocation(targets, ca_pem=None, timeout=5.0, workers=base.DEFAULT_WORKERS, python="python3"):
    """(argv, stdin_bytes) to run the X.509 probe on a cluster node. ``targets``: (host, port, names) triples;
    ``ca_pem`` the CA certificate(s) as PEM bytes, None for the node's own PCMK_ca_file. No target and no CA in
    argv."""
    modules = (None, None, base, x509_probe, sys.modules[__name__])
    sources = [_source(module) for module in modules]
    jobs = [[str(host), int(port or base.DEFAULT_PORT), [str(n) for n in names]] for host, port, names in targets]
    blob = b"".join(sources)
    header = {"format": FORMAT, "targets": jobs, "parts": [[n, len(s)] for n, s in zip(PARTS, sources)],
              "sha256": hashlib.sha256(blob).hexdigest(),
              "ca": ca_pem.decode("ascii") if ca_pem is not None else None}
    argv = [python, "-c", BOOTSTRAP, "--timeout", repr(float(timeout)), "--workers", str(int(workers))]
    return argv, json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + blob


def node_ca_file(env_files=base.ENV_FILES):
    """This node's PCMK_ca_file (the first env file that sets it, as Pacemaker's units read them), or None."""
    for path in env_files:
        value = base._env_file_value(path, "PCMK_ca_file")
        if value:
            return value
    return None


def read_ca(path):
    """The CA file's bytes (public; bounded, as a CA bundle is small)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CA_BYTES + 1)
    except OSError as exc:
        raise base.ProbeError("cannot read PCMK_ca_file %s: %s" % (path, exc.strerror or exc))
    if len(data) > MAX_CA_BYTES:
        raise base.ProbeError("PCMK_ca_file %s is larger than %d bytes" % (path, MAX_CA_BYTES))
    return data


def ca_fingerprint(pem):
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def main(argv=None, header=None, env_files=base.ENV_FILES):
    """Probe the header's targets with its CA (or this node's PCMK_ca_file) and print one JSON document."""
    doc = {"format": FORMAT, "node": socket.gethostname(), "python": "%d.%d.%d" % sys.version_info[:3],
           "gnutls": None, "ca": None, "results": [], "error": None}
    status = 0
    try:
        parser = argparse.ArgumentParser(prog="x509_node")
        parser.error = _raise_usage
        parser.add_argument("--timeout", type=float, default=5.0)
        parser.add_argument("--workers", type=int, default=base.DEFAULT_WORKERS)
        args = parser.parse_args(argv)
        header = header or {}
        targets = [tuple(job) for job in header.get("targets") or []]
        pem = header.get("ca")
        if pem is not None:
            data = pem.encode("ascii")
            doc["ca"] = {"source": "--ca", "path": None, "fingerprint": ca_fingerprint(data)}
        else:
            path = node_ca_file(env_files)
            if not path:
                raise base.ProbeError("no PCMK_ca_file in %s: this node is not in X.509 mode" % " or ".join(
                    env_files))
            data = read_ca(path)
            doc["ca"] = {"source": "PCMK_ca_file", "path": path, "fingerprint": ca_fingerprint(data)}
        doc["gnutls"] = base.gnutls().remotectl_version
        results = x509_probe.probe_many(targets, ca_pem=data, timeout=args.timeout, workers=args.workers,
                                          describe=False)
        doc["results"] = [r.to_dict() for r in results]
    except (base.ProbeError, ValueError, TypeError) as exc:
        doc["error"] = str(exc)
        status = 2
    except Exception as exc:  # report, never a traceback
        doc["error"] = "internal error: %s" % type(exc).__name__
        status = 2
    sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
    sys.stdout.flush()
    return status


def _raise_usage(message):
    raise ValueError("usage: " + message)
