"""Real servers for the PSK probe tests and bench: standalone pacemaker-remoted instances (each in its own netns
``rprobe-<pid>-<tag>``, exposed on 127.0.1.N through a socat forwarder as in lab.md §5), sshd, gnutls-serv with an
X.509 certificate, a GnuTLS PSK server that corrupts its Finished, and trivial TCP servers (silent, echo, HTTP 400).

Everything started is tracked by a ``ProbeLab`` and stopped by PID (process group) / deleted by name in
``close()``, which the fixtures call even when a test fails. Stays off the hosts lab's subnets (127.0.2.x and up)
and its ``rl2*`` netns.

Also runnable: ``python probe_servers.py bad-finished --host H --port P --key-file F`` (the odd GnuTLS server).
"""

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REMOTED = shutil.which("pacemaker-remoted") or "/usr/local/sbin/pacemaker-remoted"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
NETNS_PREFIX = "rprobe-"
READY_LINE = "successfully started and accepting connections"
ACCEPTED_LINE = "Remote client connection accepted"
CLONE_NEWNET = 0x40000000


def missing_requirements(need_sshd=False, need_gnutls_serv=False):
    """Why the real-component tests cannot run here (empty list: they can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("needs root (network namespaces)")
    if not os.access(REMOTED, os.X_OK):
        missing.append("pacemaker-remoted not installed (%s)" % REMOTED)
    for tool in ("ip", "socat") + (("gnutls-serv", "certtool") if need_gnutls_serv else ()):
        if shutil.which(tool) is None:
            missing.append("%s not installed" % tool)
    if need_sshd and (not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None):
        missing.append("sshd/ssh-keygen not installed")
    try:
        ctypes.CDLL("libgnutls.so.30")
    except OSError:
        missing.append("libgnutls.so.30 not found")
    return missing


def make_key(path, size):
    """A private file of size random bytes, as a key for remoted and the probes; its path as a str."""
    with open(path, "wb") as handle:
        handle.write(os.urandom(size))
    os.chmod(path, 0o600)
    return str(path)


def free_port(host):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_port(host, port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process %s exited with %s before %s:%s listened" % (proc.args, proc.returncode,
                                                                                     host, port))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%s after %ss" % (host, port, timeout))


class Remoted(object):
    """A standalone pacemaker-remoted in its own netns, reachable at (host, port) through socat."""

    def __init__(self, tag, netns, inner_port, host, port, log, key_path, proc):
        self.tag = tag
        self.netns = netns
        self.inner_port = inner_port
        self.host = host
        self.port = port
        self.log = log
        self.key_path = key_path
        self.proc = proc

    def log_text(self):
        try:
            with open(self.log, errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def count(self, text):
        return self.log_text().count(text)

    def wait_count(self, text, at_least, timeout=5.0):
        """Wait until ``text`` occurs at least ``at_least`` times in the log; return the final count."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.count(text)
            if found >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def __repr__(self):
        return "Remoted(%s at %s:%s)" % (self.tag, self.host, self.port)


class ProbeLab(object):
    """Starts real servers and cleans all of them up (by PID / netns name) in close()."""

    def __init__(self, workdir, first_host=2, subnet="127.0.1."):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.prefix = "%s%d-" % (NETNS_PREFIX, os.getpid())
        self.procs = []
        self.netns_names = []
        self.threads = []
        self.sockets = []
        self.stop_event = threading.Event()
        self.next_host = first_host
        self.subnet = subnet
        self._lock = threading.Lock()
        delete_stale_netns()

    # --- bookkeeping ---
    def host(self):
        with self._lock:
            n = self.next_host
            self.next_host += 1
        if not 2 <= n <= 254:
            raise RuntimeError("out of 127.0.1.N addresses")
        return "%s%d" % (self.subnet, n)

    def path(self, name):
        return os.path.join(self.workdir, name)

    def start(self, argv, log_name, env=None):
        log = open(self.path(log_name), "ab")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        finally:
            log.close()
        self.procs.append(proc)
        return proc

    def netns(self, tag):
        name = self.prefix + tag
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.netns_names.append(name)
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        return name

    def close(self):
        self.stop_event.set()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
        for proc in reversed(self.procs):
            _stop_group(proc)
        for thread in self.threads:
            thread.join(timeout=2)
        for name in reversed(self.netns_names):
            for pid in _netns_pids(name):  # only processes we started can be in our own netns
                _kill_pid(pid)
            subprocess.run(["ip", "netns", "delete", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs, self.netns_names, self.sockets = [], [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- servers ---
    def forward(self, netns, inner_port, host=None, port=None):
        """socat on host:port (host netns) forwarding every connection to 127.0.0.1:inner_port inside netns."""
        host = host or self.host()
        port = port or free_port(host)
        exec_cmd = "ip netns exec %s socat STDIO TCP\\:127.0.0.1\\:%d" % (netns, inner_port)
        proc = self.start(["socat", "TCP-LISTEN:%d,bind=%s,reuseaddr,fork,backlog=256" % (port, host),
                           "EXEC:" + exec_cmd], "socat-%s-%d.log" % (host, port))
        wait_port(host, port, proc=proc)
        return host, port

    def remoted(self, tag, key_path, priorities=None, inner_port=3121, debug=False, gnutls_config=None):
        """``gnutls_config``: the text of a GnuTLS system-wide configuration file for this remoted alone (as a
        crypto policy would write it; GNUTLS_SYSTEM_PRIORITY_FILE), e.g. one that disables a key exchange."""
        netns = self.netns(tag)
        log = self.path("remoted-%s.log" % tag)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PCMK_remote_port": str(inner_port),
               "PCMK_authkey_location": str(key_path), "PCMK_logfile": log,
               "PCMK_debug": "yes" if debug else "no"}
        if priorities:
            env["PCMK_tls_priorities"] = priorities
        if gnutls_config is not None:
            env["GNUTLS_SYSTEM_PRIORITY_FILE"] = self.path("gnutls-%s.config" % tag)
            with open(env["GNUTLS_SYSTEM_PRIORITY_FILE"], "w") as handle:
                handle.write(gnutls_config)
        proc = self.start(["ip", "netns", "exec", netns, REMOTED], "remoted-%s.out" % tag, env=env)
        deadline = time.monotonic() + 15
        while READY_LINE not in _read(log):
            if proc.poll() is not None:
                raise RuntimeError("pacemaker-remoted %s exited with %s: %s" % (tag, proc.returncode,
                                                                                 _read(log)[-2000:]))
            if time.monotonic() > deadline:
                raise RuntimeError("pacemaker-remoted %s not ready after 15 s" % tag)
            time.sleep(0.05)
        host, port = self.forward(netns, inner_port)
        return Remoted(tag, netns, inner_port, host, port, log, key_path, proc)

    def sshd(self):
        host = self.host()
        port = free_port(host)
        keydir = self.path("sshd")
        os.makedirs(keydir, exist_ok=True)
        hostkey = os.path.join(keydir, "host_ed25519")
        if not os.path.exists(hostkey):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey], check=True)
        config = os.path.join(keydir, "sshd_config")
        with open(config, "w") as handle:
            handle.write("Port %d\nListenAddress %s\nHostKey %s\nPidFile %s\nUsePAM no\nPasswordAuthentication no\n"
                         "KbdInteractiveAuthentication no\nStrictModes no\nLogLevel VERBOSE\n"
                         % (port, host, hostkey, os.path.join(keydir, "sshd.pid")))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        proc = self.start([SSHD, "-D", "-e", "-f", config], "sshd.log")
        wait_port(host, port, proc=proc)
        return host, port

    def gnutls_serv_x509(self):
        """gnutls-serv with a self-signed certificate and no PSK, in its own netns behind a forwarder."""
        key = self.path("x509-key.pem")
        cert = self.path("x509-cert.pem")
        template = self.path("x509.tmpl")
        with open(template, "w") as handle:
            handle.write('cn = "rprobe-test"\nexpiration_days = 2\ntls_www_server\nsigning_key\nencryption_key\n')
        subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile", key], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", template,
                        "--outfile", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        netns = self.netns("x509")
        proc = self.start(["ip", "netns", "exec", netns, "gnutls-serv", "-p", "4433", "--x509certfile", cert,
                           "--x509keyfile", key], "gnutls-serv.log")
        _wait_inner_port(netns, 4433, proc)
        return self.forward(netns, 4433)

    def bad_finished_server(self, key_path):
        """A GnuTLS TLS 1.3 PSK server with the right key that corrupts its own Finished."""
        host = self.host()
        port = free_port(host)
        proc = self.start([sys.executable, os.path.abspath(__file__), "bad-finished", "--host", host, "--port",
                           str(port), "--key-file", str(key_path)], "bad-finished.log")
        wait_port(host, port, proc=proc)
        return host, port

    def tcp_server(self, kind):
        """In-process TCP server on 127.0.1.N: 'silent' (never accepts), 'echo', 'http400', or 'slowloris' (reads
        the ClientHello, then trickles a TLS handshake record: its header, then one byte every 2 s)."""
        host = self.host()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(64)
        self.sockets.append(sock)
        if kind != "silent":
            thread = threading.Thread(target=_serve, args=(sock, kind, self.stop_event), daemon=True)
            thread.start()
            self.threads.append(thread)
        return sock.getsockname()

    def closed_port(self):
        host = self.host()
        return host, free_port(host)


def _serve(sock, kind, stop):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        threading.Thread(target=_handle, args=(conn, kind, stop), daemon=True).start()


SLOWLORIS_INTERVAL = 2.0


def _handle(conn, kind, stop):
    conn.settimeout(5)
    try:
        with conn:
            if kind == "slowloris":
                conn.recv(65536)
                conn.sendall(b"\x16\x03\x03\x40\x00")  # handshake record, TLS 1.2 legacy version, 16 KiB
                while not stop.wait(SLOWLORIS_INTERVAL):  # ... of which one byte every 2 s: hours for the record
                    conn.sendall(b"\x02")
                return
            if kind == "http400":
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)
    except OSError:
        pass


def _read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _wait_inner_port(netns, port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (proc.args, proc.returncode))
        out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", "sport = :%d" % port],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise RuntimeError("nothing listens on %s:%d" % (netns, port))


def _stop_group(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created with start_new_session (pgid == pid)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _kill_pid(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _netns_pids(name):
    out = subprocess.run(["ip", "netns", "pids", name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return [int(x) for x in out.split()]


def delete_stale_netns():
    """Delete empty rprobe-<pid>-* namespaces left by a crashed earlier run (their creator is gone)."""
    out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.match(r"^%s(\d+)-" % re.escape(NETNS_PREFIX), name)
        if not match or _pid_alive(int(match.group(1))) or _netns_pids(name):
            continue
        subprocess.run(["ip", "netns", "delete", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def call_in_netns(netns, func, *args, **kwargs):
    """Run func in a fresh thread that has joined network namespace ``netns``; sockets it (and threads it starts,
    and children it forks) create live there. Returns func's result or raises its exception."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    box = {}

    def runner():
        try:
            fd = os.open("/run/netns/%s" % netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns(%s) failed" % netns)
            finally:
                os.close(fd)
            box["result"] = func(*args, **kwargs)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=runner, name="netns-%s" % netns)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


# --- the odd GnuTLS server: right key, corrupted Finished ------------------------------------------------------
def _bad_finished_main(host, port, key_file, max_conns=1000):
    lib = ctypes.CDLL("libgnutls.so.30")
    vp, ci, cu = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint

    class Datum(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_uint)]

    hook_type = ctypes.CFUNCTYPE(ci, vp, cu, cu, cu, ctypes.POINTER(Datum))
    lib.gnutls_psk_allocate_server_credentials.argtypes = [ctypes.POINTER(vp)]
    lib.gnutls_psk_set_server_credentials_file.argtypes = [vp, ctypes.c_char_p]
    lib.gnutls_init.argtypes = [ctypes.POINTER(vp), cu]
    lib.gnutls_priority_set_direct.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    lib.gnutls_credentials_set.argtypes = [vp, ci, vp]
    lib.gnutls_transport_set_int2.argtypes = [vp, ci, ci]
    lib.gnutls_handshake_set_timeout.argtypes = [vp, cu]
    lib.gnutls_handshake_set_hook_function.argtypes = [vp, cu, ci, hook_type]
    lib.gnutls_handshake.argtypes = [vp]
    lib.gnutls_deinit.argtypes = [vp]
    with open(key_file, "rb") as handle:
        key = handle.read()
    pskfile = key_file + ".pskfile"
    fd = os.open(pskfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("lrmd:%s\n" % key.hex())
    cred = vp()
    assert lib.gnutls_psk_allocate_server_credentials(ctypes.byref(cred)) == 0
    assert lib.gnutls_psk_set_server_credentials_file(cred, pskfile.encode()) == 0

    def corrupt(session, htype, when, incoming, msg):
        try:
            if htype == 20 and not incoming and when == 0 and msg and msg.contents.size:
                first = ctypes.cast(msg.contents.data, ctypes.POINTER(ctypes.c_ubyte))
                first[0] ^= 0xFF
        except BaseException:
            pass
        return 0

    hook = hook_type(corrupt)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    for _ in range(max_conns):
        conn, _ = listener.accept()
        session = vp()
        lib.gnutls_init(ctypes.byref(session), 1)
        lib.gnutls_priority_set_direct(session, b"NORMAL:+DHE-PSK:+PSK", None)
        lib.gnutls_credentials_set(session, 4, cred)
        lib.gnutls_transport_set_int2(session, conn.fileno(), conn.fileno())
        lib.gnutls_handshake_set_timeout(session, 5000)
        lib.gnutls_handshake_set_hook_function(session, 20, -1, hook)
        rc = lib.gnutls_handshake(session)
        sys.stdout.write("handshake rc=%d\n" % rc)
        sys.stdout.flush()
        lib.gnutls_deinit(session)
        conn.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bad-finished"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-file", required=True)
    opts = parser.parse_args()
    _bad_finished_main(opts.host, opts.port, opts.key_file)
