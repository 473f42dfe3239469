"""A host that stalls or resets the SSH handshake costs one error line, never a paramiko traceback (also with
--json); paramiko's own log appears only with -vv."""

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BadSshServer:
    """Accepts TCP on loopback and answers like a broken SSH server: a garbage banner, then the connection is
    closed (after a moment, so the client is always past connect() and reading the banner)."""

    def __init__(self, reset=False):
        self.reset = reset  # end with a TCP reset instead of a close (paramiko then meets EOFError)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.sendall(b"HTTP/1.0 400 not ssh\r\n\r\n" + b"\x00" * 64)
                if self.reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                else:
                    time.sleep(0.3)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture(params=["close", "reset"])
def bad_server(request):
    server = BadSshServer(reset=request.param == "reset")
    yield server
    server.close()


@pytest.fixture
def closing_server():
    server = BadSshServer()
    yield server
    server.close()


def remotectl(*args, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = dict(os.environ, HOME=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "remotectl", "--ssh-config", os.devnull, "--known-hosts", str(known),
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_a_broken_ssh_server_costs_one_line(bad_server, tmp_path, json_flag):
    result = remotectl("--cluster", f"root@127.0.0.1:{bad_server.port}", "nodes", *json_flag, tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "paramiko" not in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_paramiko_log_with_vv(closing_server, tmp_path):
    result = remotectl("-vv", "--cluster", f"root@127.0.0.1:{closing_server.port}", "nodes", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "paramiko:" in result.stderr
