"""Text for a person's terminal: what a CIB, a node or a tool says is hostile and is shown escaped.

A node name, a tool's error line or a remote script's stderr can carry terminal escapes (set the window title,
clear the screen, move the cursor), C1 controls (U+0080-U+009F, which some terminals execute), bidi overrides that
reorder what the reader sees (U+202E) and line breaks that forge extra output lines. :func:`for_terminal` makes
every such character visible as a Python-style escape (``\\x1b``, ``\\u202e``), so the operator sees what was sent
without the terminal acting on it. JSON output keeps the exact value; only human output goes through here.
Standard library only: every layer may use it.
"""

from __future__ import annotations

import re

__all__ = ["for_terminal", "is_plain"]

# C0 controls, DEL, C1 controls, and the Unicode format characters that change how text is laid out or read:
# ALM, LRM/RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI, line/paragraph separators, zero-width joiners and BOM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_KEEP_NEWLINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control and layout-changing character escaped (newlines too, unless kept)."""
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)


def is_plain(text: str) -> bool:
    """Whether ``text`` has nothing :func:`for_terminal` would escape."""
    return _UNSAFE.search(text) is None
