"""The progress bar of fan-outs (remotectl/output.py): drawn on a terminal only once the work has taken the delay,
naming what is waited for longest, shown escaped. The terminal is a StringIO that says it is one."""

import io
import time

from remotectl.output import Output


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _output(monkeypatch):
    stream = _Tty()
    monkeypatch.setattr("sys.stderr", stream)
    return Output(color=False), stream


def test_work_done_before_the_delay_draws_nothing(monkeypatch):
    out, stream = _output(monkeypatch)
    with out.progress(3, "probing", pending="a", delay=30) as advance:
        advance("b")
        advance("c")
        advance(None)
    assert stream.getvalue() == ""


def test_slow_work_shows_the_count_and_the_slowest_pending_escaped(monkeypatch):
    out, stream = _output(monkeypatch)
    with out.progress(3, "probing", pending="one", delay=0.01) as advance:
        advance("two\x1b[2J")
        deadline = time.monotonic() + 10
        while "1/3" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    shown = stream.getvalue()
    assert "probing" in shown and "1/3" in shown and "waiting for two\\x1b[2J" in shown, shown
    assert "\x1b[2J" not in shown


def test_no_terminal_or_json_draws_nothing_and_takes_the_pending_argument(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    for out in (Output(color=False), Output(json_mode=True, color=False)):
        with out.progress(3, "probing", pending="a", delay=0) as advance:
            advance()
            advance("b")
    assert stream.getvalue() == ""
