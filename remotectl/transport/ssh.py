"""SSH to cluster, remote and guest nodes with paramiko, the way OpenSSH users expect.

Honours ~/.ssh/config (HostName, User, Port, IdentityFile, UserKnownHostsFile, ConnectTimeout), the agent and
the default identities. Host keys are checked against known_hosts: an unknown key is refused unless the user
opted into accept-new (then it is recorded); a changed key is always refused. Commands are argv lists sent
as one `shlex.join` string, prefixed with `env LC_ALL=C`, so a hostile name stays one literal argument.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from remotectl.transport.base import CommandResult, Runner, TransportError

DEFAULT_SSH_PORT = 22
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class SshOptions:
    """What the global CLI options say about SSH; shared by every connection of one run."""

    config_file: Optional[str] = None
    identity_files: Tuple[str, ...] = ()
    known_hosts: Optional[str] = None
    accept_new_host_keys: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    on_warning: Optional[Callable[[str], None]] = field(default=None, compare=False)  # what the operator sees


@dataclass(frozen=True)
class Destination:
    user: Optional[str]
    host: str
    port: Optional[int]

    def __str__(self) -> str:
        text = f"{self.user}@" if self.user else ""
        text += f"[{self.host}]" if ":" in self.host else self.host
        return text + (f":{self.port}" if self.port else "")


def parse_destination(text: str) -> Destination:
    """Parse `[user@]host[:port]` (IPv6 as `[addr]:port`)."""
    user: Optional[str] = None
    rest = text.strip()
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if not user:
            raise TransportError(f"invalid SSH destination {text!r}: empty user name")
    port: Optional[int] = None
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep:
            raise TransportError(f"invalid SSH destination {text!r}: missing ']'")
        if tail:
            if not tail.startswith(":"):
                raise TransportError(f"invalid SSH destination {text!r}")
            port = _parse_port(tail[1:], text)
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
        port = _parse_port(port_text, text)
    else:
        host = rest
    if not host or any(c.isspace() for c in host) or host.startswith("-"):
        raise TransportError(f"invalid SSH destination {text!r}")
    return Destination(user, host, port)


def _parse_port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TransportError(f"invalid port in {whole!r}")
    return int(text)


@dataclass
class _ResolvedTarget:
    hostname: str
    port: int
    user: str
    identity_files: List[str] = field(default_factory=list)
    known_hosts: List[str] = field(default_factory=list)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT


def _resolve(dest: Destination, options: SshOptions) -> _ResolvedTarget:
    import paramiko

    config_path = options.config_file or os.path.expanduser("~/.ssh/config")
    entry: dict = {}
    if os.path.exists(config_path):
        try:
            entry = paramiko.SSHConfig.from_path(config_path).lookup(dest.host)
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot read SSH config {config_path}: {exc}") from None
    elif options.config_file:
        raise TransportError(f"SSH config file {config_path} does not exist")
    hostname = entry.get("hostname", dest.host)
    port = dest.port or int(entry.get("port", DEFAULT_SSH_PORT))
    user = dest.user or entry.get("user") or getpass.getuser()
    identities = list(options.identity_files) + [os.path.expanduser(p) for p in entry.get("identityfile", [])]
    if options.known_hosts:
        known = [options.known_hosts]
    elif entry.get("userknownhostsfile"):
        known = [os.path.expanduser(p) for p in entry["userknownhostsfile"].split()]
    else:
        known = [os.path.expanduser("~/.ssh/known_hosts")]
    timeout = float(entry.get("connecttimeout", options.connect_timeout))
    return _ResolvedTarget(hostname, port, user, [p for p in identities if os.path.exists(p)], known, timeout)


def remote_command(argv: Sequence[str], env: Optional[dict] = None) -> str:
    """The one string sent over SSH: every element quoted, so nothing is interpreted by the remote shell."""
    if not argv:
        raise ValueError("empty command")
    assignments = [f"{k}={v}" for k, v in sorted((env or {}).items())]
    return shlex.join(["env", "LC_ALL=C", *assignments, *argv])


class SshRunner(Runner):
    """One lazily opened SSH connection to one host; thread-safe for concurrent commands."""

    def __init__(self, destination: str, options: SshOptions) -> None:
        self.destination = parse_destination(destination)
        self.name = str(self.destination)
        self.options = options
        self._client = None
        self._connecting = None  # the client of a connect under way, for close() to abort it
        self._lock = threading.Lock()

    def _connect(self):
        import paramiko

        with self._lock:
            if self._client is not None:
                return self._client
            target = _resolve(self.destination, self.options)
            client = paramiko.SSHClient()
            if os.path.exists("/etc/ssh/ssh_known_hosts"):
                client.load_system_host_keys("/etc/ssh/ssh_known_hosts")
            primary = target.known_hosts[0]
            for path in target.known_hosts:
                if os.path.exists(path):
                    self._load_known_hosts(client, path, primary=path == primary)
            if self.options.accept_new_host_keys:
                if not os.path.exists(primary):
                    _create_private_file(primary)
                    client.load_host_keys(primary)
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            else:
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            self._connecting = client
            try:
                client.connect(
                    target.hostname,
                    port=target.port,
                    username=target.user,
                    key_filename=target.identity_files or None,
                    allow_agent=True,
                    look_for_keys=True,
                    timeout=target.connect_timeout,
                    banner_timeout=target.connect_timeout,
                    auth_timeout=target.connect_timeout,
                )
            except paramiko.BadHostKeyException:
                client.close()
                raise TransportError(
                    f"{self.name}: host key does not match the one in {primary}; refusing to connect "
                    "(if the host was reinstalled, remove the old key with ssh-keygen -R)"
                ) from None
            except paramiko.AuthenticationException:
                client.close()
                raise TransportError(f"{self.name}: SSH authentication failed as {target.user}") from None
            except paramiko.SSHException as exc:
                client.close()
                if "not found in known_hosts" in str(exc):
                    raise TransportError(
                        f"{self.name}: unknown SSH host key (not in {primary}); "
                        "verify it and add it, or pass --accept-new-host-keys"
                    ) from None
                raise TransportError(f"{self.name}: SSH error: {exc}") from None
            except socket.timeout:
                client.close()
                raise TransportError(f"{self.name}: SSH connection timed out") from None
            except socket.gaierror:
                client.close()
                raise TransportError(f"{self.name}: cannot resolve host name {target.hostname}") from None
            except OSError as exc:
                client.close()
                raise TransportError(f"{self.name}: cannot connect: {exc.strerror or exc}") from None
            except EOFError:  # paramiko's transport saw the peer close mid-handshake (not an SSH server?)
                client.close()
                raise TransportError(f"{self.name}: the SSH server closed the connection during the handshake") \
                    from None
            finally:
                self._connecting = None
            self._client = client
            return client

    def connect(self) -> None:
        self._connect()

    def _load_known_hosts(self, client, path: str, *, primary: bool) -> None:
        """Load a known_hosts file; a malformed line is skipped (with a warning), as OpenSSH skips it, instead of
        making every connection fail."""
        entries, skipped = _known_hosts_entries(path)
        keys = client.get_host_keys() if primary else client._system_host_keys
        keys._entries.extend(entries)
        if primary:
            client._host_keys_filename = path  # accept-new records new keys here, as load_host_keys would
        if skipped and self.options.on_warning is not None:
            where = ", ".join(str(n) for n in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            self.options.on_warning(f"{path}: skipped {len(skipped)} malformed line(s) ({where})")

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: Optional[bytes] = None,
        timeout: Optional[float] = None,
        env: Optional[dict] = None,
    ) -> CommandResult:
        import paramiko

        client = self._connect()
        command = remote_command(argv, env)
        try:
            channel = client.get_transport().open_session(timeout=self.options.connect_timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
            stdout, stderr = _exchange(channel, stdin or b"")
            rc = channel.recv_exit_status()
            channel.close()
        except socket.timeout:
            raise TransportError(f"{self.name}: {argv[0]}: no answer within {timeout:g} s") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"{self.name}: SSH channel failed while running {argv[0]}: {exc}") from None
        if rc == -1:
            raise TransportError(f"{self.name}: {argv[0]} ended without an exit status (killed?)")
        return CommandResult(tuple(argv), rc, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))

    def close(self) -> None:
        """Close the connection, and abort one being made: without the lock, which a connect stuck in a
        handshake holds (after a Ctrl-C, nothing may wait for it)."""
        for client in (self._connecting, self._client):
            if client is not None:
                client.close()
        self._client = None


_known_hosts_cache: Dict[Tuple[str, int, int, int], Tuple[list, List[int]]] = {}
_known_hosts_lock = threading.Lock()


def _known_hosts_entries(path: str) -> Tuple[list, List[int]]:
    """(paramiko HostKeyEntry list, numbers of the malformed lines skipped) of a known_hosts file, parsed once per
    version of the file for the whole run: a fan-out to hundreds of hosts would parse it once per connection."""
    import paramiko
    from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

    try:
        info = os.stat(path)
    except OSError as exc:
        raise TransportError(f"cannot read known_hosts file {path}: {exc.strerror or exc}") from None
    version = (path, info.st_ino, info.st_mtime_ns, info.st_size)
    with _known_hosts_lock:
        if version in _known_hosts_cache:
            entries, skipped = _known_hosts_cache[version]
            return list(entries), skipped
        keys = paramiko.HostKeys()
        skipped: List[int] = []
        try:
            keys.load(path)
        except InvalidHostKey:
            keys = paramiko.HostKeys()
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    lines = handle.read().splitlines()
            except OSError as exc:
                raise TransportError(f"cannot read known_hosts file {path}: {exc.strerror or exc}") from None
            for number, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    entry = HostKeyEntry.from_line(line, number)
                except (InvalidHostKey, paramiko.SSHException, ValueError):
                    entry = None
                if entry is None:
                    skipped.append(number)
                    continue
                for hostname in entry.hostnames:
                    keys.add(hostname, entry.key.get_name(), entry.key)
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot read known_hosts file {path}: {exc}") from None
        _known_hosts_cache[version] = (keys._entries, skipped)
        return list(keys._entries), skipped


def _exchange(channel, stdin: bytes) -> Tuple[bytes, bytes]:
    """Feed stdin and drain stdout and stderr at the same time, so a chatty command never blocks on a full
    window while we wait for its exit status."""
    errors: List[BaseException] = []
    stderr_chunks: List[bytes] = []

    def feed() -> None:
        try:
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    def drain_stderr() -> None:
        try:
            while True:
                chunk = channel.recv_stderr(65536)
                if not chunk:
                    return
                stderr_chunks.append(chunk)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=drain_stderr, daemon=True)]
    for thread in threads:
        thread.start()
    stdout_chunks: List[bytes] = []
    while True:
        chunk = channel.recv(65536)
        if not chunk:
            break
        stdout_chunks.append(chunk)
    for thread in threads:
        thread.join(channel.gettimeout())
    if errors:
        raise errors[0]
    return b"".join(stdout_chunks), b"".join(stderr_chunks)


def _create_private_file(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
