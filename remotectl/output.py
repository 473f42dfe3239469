"""Rendering: one JSON document or human text on stdout; reports, progress and errors on stderr.

rich is imported only when a table or a progress bar is actually drawn, so --help and completion stay fast.
Data is printed with markup and highlighting off: names from a CIB are never interpreted as rich markup.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

from remotectl.display import for_terminal
from remotectl.jsonable import jsonable
from remotectl.reports import Report, Severity


PROGRESS_DELAY = 1.0  # seconds before a progress bar appears: a fan-out that is done by then draws none


class Output:
    def __init__(self, *, json_mode: bool = False, color: Optional[bool] = None, verbosity: int = 0) -> None:
        self.json_mode = json_mode
        self.verbosity = verbosity
        if color is None:
            color = "NO_COLOR" not in os.environ and sys.stdout.isatty()
        self.color = color
        self._console = None
        self._err_console = None

    # -- consoles -------------------------------------------------------------------------------------------
    def _make_console(self, stream):
        from rich.console import Console

        return Console(
            file=stream,
            markup=False,
            highlight=False,
            emoji=False,
            no_color=not self.color,
            color_system="auto" if self.color else None,
            soft_wrap=False,
            width=None if stream.isatty() else 200,
        )

    @property
    def console(self):
        if self._console is None:
            self._console = self._make_console(sys.stdout)
        return self._console

    @property
    def err_console(self):
        if self._err_console is None:
            self._err_console = self._make_console(sys.stderr)
        return self._err_console

    # -- data -----------------------------------------------------------------------------------------------
    def json_document(self, document: Any, reports: Sequence[Report] = ()) -> None:
        """One JSON document on stdout: a result dataclass (through :func:`remotectl.jsonable.jsonable`) or a dict.
        Every document ends with its ``reports`` list, empty when there is nothing to report."""
        if not isinstance(document, dict):
            document = jsonable(document)
        if "reports" not in document:
            document = dict(document, reports=[r.to_json() for r in reports])
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: Optional[str] = None) -> None:
        from rich import box
        from rich.table import Table

        table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*[_cell(value) for value in row])
        self.console.print(table)

    def line(self, text: str = "", *, style: Optional[str] = None) -> None:
        text = for_terminal(text, keep_newlines=True)
        if self.color and style:
            self.console.print(text, style=style)
        else:
            sys.stdout.write(text + "\n")

    # -- stderr ---------------------------------------------------------------------------------------------
    def report(self, report: Report) -> None:
        if report.severity is Severity.INFO and self.verbosity < 0:
            return
        prefix = {"error": "Error", "warning": "Warning", "info": "Note"}[report.severity.value]
        where = f"{report.node}: " if report.node else ""
        self.error_line(f"{prefix}: {where}{report.message}")

    def json_or_reports(self, result: Any, reports: Sequence[Report]) -> bool:
        """With --json, print the whole result as the JSON document and return True (nothing more to print);
        otherwise print the reports and return False, for the caller to go on with the human output."""
        if self.json_mode:
            self.json_document(result.to_json(), reports)
            return True
        self.reports(reports)
        return False

    def reports(self, reports: Sequence[Report]) -> None:
        for report in reports:
            self.report(report)

    def error_line(self, text: str) -> None:
        """One line on stderr; whatever a node or a tool put in it is shown escaped (:mod:`remotectl.display`)."""
        sys.stderr.write(for_terminal(text) + "\n")
        sys.stderr.flush()

    @contextmanager
    def progress(self, total: int, label: str, *, pending: Optional[str] = None,
                 delay: float = PROGRESS_DELAY) -> Iterator[Callable[..., None]]:
        """Yields ``advance(pending=None)``, called once per finished unit; ``pending`` names what is now waited
        for longest (shown escaped, as "waiting for NAME"). A bar with the count is drawn on stderr only when it is
        a TTY, not in JSON mode, and only once the work has taken ``delay`` seconds: quick runs draw nothing."""
        if self.json_mode or not sys.stderr.isatty() or total < 2 or self.verbosity < 0:
            yield lambda pending=None: None
            return
        import threading

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        def waiting(name: Optional[str]) -> str:
            return f"waiting for {for_terminal(name)}" if name else ""

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[pending]}", markup=False),
            console=self.err_console,
            transient=True,
        )
        task = bar.add_task(label, total=total, pending=waiting(pending))
        lock = threading.Lock()
        state = {"shown": False, "over": False}

        def show() -> None:
            with lock:
                if not state["over"]:
                    bar.start()
                    state["shown"] = True

        timer = threading.Timer(delay, show)
        timer.daemon = True
        timer.start()
        try:
            yield lambda pending=None: bar.update(task, advance=1, pending=waiting(pending))
        finally:
            timer.cancel()
            with lock:
                state["over"] = True
                if state["shown"]:
                    bar.stop()

    @contextmanager
    def progress_later(self, label: str) -> Iterator[_LaterBar]:
        """Like :meth:`progress` for work whose size is known only after it started (shown under the same
        conditions: stderr is a TTY, not JSON, not -q)."""
        if self.json_mode or not sys.stderr.isatty() or self.verbosity < 0:
            yield _LaterBar()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=self.err_console, transient=True) as bar:
            yield _LaterBar(bar, bar.add_task(label, total=None))


class _LaterBar:
    """A progress bar whose total is learned once the work is known (`start(total)`), then `advance()`d."""

    def __init__(self, bar=None, task=None) -> None:
        self._bar, self._task = bar, task

    def start(self, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return for_terminal(str(value))


def host_port(address: Optional[str], port: Optional[int]) -> Optional[str]:
    """`address:port` as operators write it (an IPv6 address in brackets); None without an address."""
    if not address:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port}" if port else host
