"""Hardened XML parsing for documents that come from a cluster (CIB, crm_mon output): treat them as hostile.

``parse(data, what)`` is the only entry point. It uses the standard library's expat-based ElementTree parser
and adds what that parser does not refuse on its own:

* a size limit (``MAX_BYTES``, 64 MiB by default; a CIB of a large cluster is a few MiB);
* no document type declaration at all: a ``<!DOCTYPE`` (and so any ``<!ENTITY``, which can only live inside
  one) is refused before expat sees the document, so there is no entity expansion ("billion laughs",
  quadratic blow-up) and no external entity or DTD access. Neither the CIB nor crm_mon's XML ever has one;
* one-line :class:`~remotectl.reports.RemotectlError` messages that name the document (``what``) and give the
  line and column of the problem, for malformed, truncated, empty or non-UTF-8 input.

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ElementTree
from typing import Optional, Tuple, Union

from remotectl.reports import RemotectlError

MAX_BYTES = 64 * 1024 * 1024

__all__ = ["MAX_BYTES", "parse"]

# The prolog (everything before the root element) may hold only: an XML declaration, processing instructions,
# comments and whitespace; and, in general XML, one DOCTYPE. We walk it and refuse the DOCTYPE.
_PROLOG_ITEM = re.compile(
    rb"\s+"  # whitespace
    rb"|<\?.*?\?>"  # XML declaration or processing instruction
    rb"|<!--.*?-->",  # comment
    re.DOTALL,
)


def _size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _too_large(what: str, size: int, limit: int) -> RemotectlError:
    return RemotectlError(f"{what}: XML document is too large ({_size_text(size)}; the limit is {_size_text(limit)})")


def _line_col(data: bytes, offset: int) -> Tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, col


def _to_utf8(data: Union[bytes, str], what: str) -> bytes:
    if isinstance(data, str):
        # A str carries no encoding of its own: strip any declared one by re-encoding as UTF-8. An XML
        # declaration naming another encoding would then lie, so drop the encoding from it.
        raw = data.encode("utf-8", "surrogatepass")
        return re.sub(rb"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*(['\"])[^'\"]*\2", rb"\1", raw, count=1)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or data.startswith(
        (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
    ):
        # Not something Pacemaker writes; accept it anyway by decoding (the BOM says which one).
        try:
            text = data.decode("utf-32" if data[:4] in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE) else "utf-16")
        except UnicodeDecodeError as exc:
            raise RemotectlError(f"{what}: not valid UTF-16/UTF-32 text ({exc.reason})") from None
        return _to_utf8(text, what)
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :]
    return data


def _check_prolog(data: bytes, what: str) -> None:
    pos = 0
    end = len(data)
    while pos < end:
        m = _PROLOG_ITEM.match(data, pos)
        if m is None:
            break
        pos = m.end()
    if data.startswith(b"<!", pos) and not data.startswith(b"<!--", pos):
        line, col = _line_col(data, pos)
        keyword = re.match(rb"<!([A-Za-z]*)", data[pos : pos + 32])
        name = keyword.group(1).decode("ascii", "replace").upper() if keyword and keyword.group(1) else "declaration"
        raise RemotectlError(
            f"{what}: refusing XML with a {name} declaration (DTDs and entities are not allowed) "
            f"at line {line}, column {col}"
        )


def parse(data: Union[bytes, str], what: str, *, max_bytes: Optional[int] = None) -> ElementTree.Element:
    """Parse ``data`` (bytes, or text) and return the root element.

    ``what`` names the document in error messages ("CIB file /tmp/cib.xml", "crm_mon output").
    Raises :class:`RemotectlError` with a one-line message on any problem; never returns a partial tree.
    """
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"xmlsafe.parse() needs bytes or str, not {type(data).__name__}")
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if len(data) > limit:  # bytes, or characters: a str never encodes to fewer bytes than it has characters
        raise _too_large(what, len(data), limit)
    raw = _to_utf8(data, what)
    if len(raw) > limit:
        raise _too_large(what, len(raw), limit)
    if not raw.strip():
        raise RemotectlError(f"{what}: empty document (no XML at all)")
    _check_prolog(raw, what)

    parser = ElementTree.XMLParser()
    try:
        parser.feed(raw)
        root = parser.close()
    except ElementTree.ParseError as exc:
        line, col = getattr(exc, "position", (0, 0)) or (0, 0)
        reason = str(exc).split(":", 1)[0].strip() or "syntax error"
        reason = " ".join(reason.split())  # one line, whatever expat said
        raise RemotectlError(f"{what}: malformed XML at line {line}, column {col + 1}: {reason}") from None
    except (ValueError, LookupError) as exc:  # e.g. an unknown encoding named in the XML declaration
        raise RemotectlError(f"{what}: cannot parse XML: {' '.join(str(exc).split())}") from None
    return root
