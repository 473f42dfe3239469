"""The seam between actions and the world: command results and transport errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from remotectl.reports import RemotectlError


class TransportError(RemotectlError):
    """A command or file operation could not be carried out at all (DNS, refused, auth, host key, timeout)."""


@dataclass(frozen=True)
class CommandResult:
    argv: Tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def first_error_line(self) -> str:
        for line in (self.stderr or self.stdout).splitlines():
            if line.strip():
                return line.strip()
        return f"exit status {self.rc}"


class Runner:
    """Runs argv vectors and touches files on one host. Non-zero exits are returned, not raised."""

    name: str = "?"

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: Optional[bytes] = None,
        timeout: Optional[float] = None,
        env: Optional[dict] = None,
    ) -> CommandResult:
        raise NotImplementedError

    def connect(self) -> None:
        """Open the connection now (run() opens it when needed): a caller that must know whether a command may
        have started can tell a handshake that never ended from a command under way."""

    def close(self) -> None:
        """Release connections; safe to call twice."""


class UnusableRunner(Runner):
    """Stands for a host that cannot be reached at all (e.g. a malformed address): every command fails with
    `error`, so the caller's per-node error handling reports it like any other unreachable node."""

    def __init__(self, name: str, error: str) -> None:
        self.name = name
        self.error = error

    def connect(self) -> None:
        raise TransportError(f"{self.name}: {self.error}")

    def run(self, argv, *, stdin=None, timeout=None, env=None) -> CommandResult:
        raise TransportError(f"{self.name}: {self.error}")
