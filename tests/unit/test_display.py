"""What a CIB or a node says reaches the operator's terminal escaped (remotectl/display.py, used by output.py)."""

import pytest

from remotectl.actions.completion_cache import safe_values
from remotectl.display import for_terminal, is_plain
from remotectl.output import Output

HOSTILE = [
    "\x1b]0;pwned\x07",  # set the window title
    "\x1b[2J\x1b[H",  # clear the screen
    "a\rb",  # overwrite the line
    "name\nError: forged line",
    "\x9b31m",  # C1 CSI
    "\u202eevil",  # right-to-left override
    "del\x7f",
    "zero\u200bwidth",
]


def _unsafe_bytes(text: str):
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
            or ord(c) in (0x202e, 0x200b)]


@pytest.mark.parametrize("text", HOSTILE)
def test_for_terminal_escapes_visibly(text):
    shown = for_terminal(text)
    assert _unsafe_bytes(shown) == [] and "\n" not in shown
    assert not is_plain(text) and is_plain(shown)
    assert "\\x" in shown or "\\u" in shown


def test_plain_text_is_unchanged():
    assert for_terminal("remote-1 → node1 (ünïcödé)") == "remote-1 → node1 (ünïcödé)"
    assert for_terminal("two\nlines", keep_newlines=True) == "two\nlines"


@pytest.mark.parametrize("text", HOSTILE)
def test_output_tables_lines_and_errors_escape(text, capsys):
    out = Output(color=False)
    out.table(["NAME"], [(text,)])
    out.line(f"node {text}")
    out.error_line(f"Error: {text}")
    captured = capsys.readouterr()
    assert _unsafe_bytes(captured.out) == [] and _unsafe_bytes(captured.err) == []
    assert captured.err.count("\n") == 1  # a forged newline does not make a second stderr line


def test_completion_never_offers_options_or_controls():
    assert safe_values(["remote1", "-rf", "--all", "a\x1bb", "\u202eevil", "ok-2"]) == ["remote1", "ok-2"]
