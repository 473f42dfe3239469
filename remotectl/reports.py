"""Problems as data: every expected failure is a Report; one exit-code enum for the whole CLI."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from remotectl.jsonable import jsonable


class ExitCode(enum.IntEnum):
    """The documented exit codes (README, man page). Scripts rely on these values."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    PARTIAL = 3
    REFUSED = 4
    INTERRUPTED = 130


def per_node_exit(results: Sequence) -> "ExitCode":
    """The exit status of a fan-out over nodes: 0 when every node is OK, 1 when none is, 3 (partial) otherwise;
    results with status "skipped" do not count. Every per-node command (authkey, tls) uses this one rule."""
    considered = [r for r in results if getattr(r, "status", None) != "skipped"]
    failed = [r for r in considered if not r.ok]
    if not failed:
        return ExitCode.OK
    return ExitCode.FAILURE if len(failed) == len(considered) else ExitCode.PARTIAL


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Report:
    severity: Severity
    message: str
    node: Optional[str] = None
    code: str = ""

    def to_json(self) -> Dict[str, Any]:
        """The JSON contract of a report: severity, message, node and its stable ``code`` (see docs/reports.md)."""
        return jsonable(self)


class RemotectlError(Exception):
    """An expected failure: printed as one line, mapped to an exit code, never a traceback."""

    exit_code = ExitCode.FAILURE

    def __init__(self, message: str, *, exit_code: Optional[ExitCode] = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class RefusedError(RemotectlError):
    """The action is unsafe or unconfirmed; --force or --yes would allow it."""

    exit_code = ExitCode.REFUSED


@dataclass
class Reporter:
    """Collects warnings and errors produced while an action runs."""

    reports: List[Report] = field(default_factory=list)

    def add(self, severity: Severity, message: str, *, node: Optional[str] = None, code: str = "") -> None:
        self.reports.append(Report(severity, message, node, code))

    def warning(self, message: str, *, node: Optional[str] = None, code: str = "") -> None:
        self.add(Severity.WARNING, message, node=node, code=code)

    def error(self, message: str, *, node: Optional[str] = None, code: str = "") -> None:
        self.add(Severity.ERROR, message, node=node, code=code)

    def info(self, message: str, *, node: Optional[str] = None, code: str = "") -> None:
        self.add(Severity.INFO, message, node=node, code=code)
