"""Pacemaker's value semantics, written once: booleans, scores, integers, intervals, versions, name ordering,
names and the ``<pacemaker-result><status>`` element of the tools' XML output.

Every function cites the C function of Pacemaker 2.1.5 it follows (``lib/common/strings.c``, ``scores.c``,
``iso8601.c``, ``utils.c``, ``output_xml.c``); 3.0 kept these rules. Nobody else in remotectl parses a Pacemaker
boolean, score or interval: ``tests/unit/test_architecture.py`` holds that. Pure, standard library only.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from typing import Callable, Mapping, NamedTuple, Optional, Tuple

from remotectl.reports import RemotectlError

__all__ = [
    "INFINITY",
    "add_scores",
    "char2score",
    "check_name",
    "cluster_option",
    "CLUSTER_OPTION_ALIASES",
    "element_int",
    "get_msec",
    "is_boolean",
    "is_true",
    "negate_score",
    "normalize_score",
    "numeric_strcasecmp",
    "parse_interval_ms",
    "parse_user_score",
    "ResultStatus",
    "result_status",
    "scan_ll",
    "scan_min_int",
    "score_value",
    "str_to_boolean",
    "valid_no_quorum_policy",
    "version_tuple",
]

# --- booleans --------------------------------------------------------------------------------------------------------

_TRUE_WORDS = frozenset(("true", "on", "yes", "y", "1"))
_FALSE_WORDS = frozenset(("false", "off", "no", "n", "0"))


def str_to_boolean(value: Optional[str]) -> Optional[bool]:
    """``crm_str_to_boolean`` (strings.c): True for true/on/yes/y/1, False for false/off/no/n/0 (any case, no
    surrounding blanks allowed), None for anything else or a missing value."""
    if value is None:
        return None
    lowered = value.lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    return None


def is_boolean(value: str) -> bool:
    """``pcmk__valid_boolean`` (options.c): a value :func:`str_to_boolean` reads either way."""
    return str_to_boolean(value) is not None


def is_true(value: Optional[str]) -> bool:
    """``crm_is_true`` (strings.c): only what :func:`str_to_boolean` calls true is true. crm_mon and the other
    tools print their XML booleans as "true"/"false", which this reads too."""
    return str_to_boolean(value) is True


# --- integers --------------------------------------------------------------------------------------------------------

_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def scan_ll(value: Optional[str]) -> Optional[int]:
    """``pcmk__scan_ll`` (strings.c, strtoll): the leading integer of ``value``, or None."""
    if value is None:
        return None
    match = _LEADING_INT.match(value)
    return int(match.group(1)) if match else None


def scan_min_int(value: Optional[str], minimum: int) -> int:
    """``pcmk__scan_min_int`` (strings.c): the leading integer, but at least ``minimum`` (also when unparsable)."""
    number = scan_ll(value)
    if number is None or number < minimum:
        return minimum
    return number


def element_int(element: ElementTree.Element, name: str, default: int) -> int:
    """``crm_element_value_int`` (nvpair.c): ``default`` when the attribute is absent, -1 when it is not an int."""
    value = element.get(name)
    if value is None:
        return default
    number = scan_ll(value)
    if number is None or number < -(2**31) or number > 2**31 - 1:
        return -1
    return number


# --- scores ----------------------------------------------------------------------------------------------------------

INFINITY = 1000000  # CRM_SCORE_INFINITY
_USER_SCORE = re.compile(r"^[+-]?(?:\d+|INFINITY)$", re.IGNORECASE)


def char2score(value: Optional[str]) -> int:
    """``char2score`` (scores.c): [+-]INFINITY, else the leading integer clamped to ±INFINITY, else 0."""
    if value is None:
        return 0
    lowered = value.strip().lower()
    if lowered in ("infinity", "+infinity"):
        return INFINITY
    if lowered == "-infinity":
        return -INFINITY
    number = scan_ll(value)
    if number is None:
        return 0
    return max(-INFINITY, min(INFINITY, number))


def add_scores(a: int, b: int) -> int:
    """``pcmk__add_scores`` (scores.c): -INFINITY wins over +INFINITY; sums are clamped."""
    if a <= -INFINITY or b <= -INFINITY:
        return -INFINITY
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    return max(-INFINITY, min(INFINITY, a + b))


def normalize_score(text: Optional[str]) -> Optional[str]:
    """A score as written in a constraint, in Pacemaker's normal form (``pcmk_readable_score``): "+INFINITY" and
    "inf" are "INFINITY", "-inf" is "-INFINITY", "+5" is "5" and integers beyond ±INFINITY are clamped; anything
    else (node-health colours, garbage) is returned stripped but otherwise as written."""
    if text is None:
        return None
    value = text.strip()
    lowered = value.lower()
    if lowered in ("infinity", "+infinity", "inf", "+inf"):
        return "INFINITY"
    if lowered in ("-infinity", "-inf"):
        return "-INFINITY"
    if re.fullmatch(r"[+-]?\d+", value):
        number = int(value)
        if number >= INFINITY:
            return "INFINITY"
        if number <= -INFINITY:
            return "-INFINITY"
        return str(number)
    return value


def score_value(text: Optional[str]) -> Optional[int]:
    """The score as a number (INFINITY = 1000000), or None when it is not a plain score."""
    normal = normalize_score(text)
    if normal is None:
        return None
    if normal == "INFINITY":
        return INFINITY
    if normal == "-INFINITY":
        return -INFINITY
    if re.fullmatch(r"-?\d+", normal):
        return int(normal)
    return None


def parse_user_score(text: str) -> str:
    """A score given on the command line: an integer or [+-]INFINITY, in its normal form; anything else is
    refused (Pacemaker would silently read garbage as 0)."""
    if not _USER_SCORE.match(text.strip()):
        raise RemotectlError(f"invalid score {text!r}: use an integer or INFINITY")
    return normalize_score(text)  # type: ignore[return-value]


def negate_score(score: str) -> str:
    """The opposite score (prefer <-> avoid), in normal form."""
    value = score_value(score)
    if value is None:
        raise RemotectlError(f"invalid score {score!r}")
    return normalize_score(str(-value))  # type: ignore[return-value]


# --- intervals -------------------------------------------------------------------------------------------------------

_MSEC_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*$")
_MSEC_UNITS = {
    "": 1000, "s": 1000, "sec": 1000, "ms": 1, "msec": 1, "us": 0.001, "usec": 0.001,
    "m": 60000, "min": 60000, "h": 3600000, "hr": 3600000,
}
_ISO_DURATION = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def get_msec(value: Optional[str]) -> int:
    """``crm_get_msec`` (utils.c): milliseconds of "10", "10s", "500ms", "2min", "1h"...; -1 when unparsable."""
    if value is None:
        return -1
    match = _MSEC_RE.match(value)
    if not match:
        return -1
    unit = match.group(2).lower()
    if unit not in _MSEC_UNITS:
        return -1
    return int(float(match.group(1)) * _MSEC_UNITS[unit])


def parse_interval_ms(value: Optional[str]) -> int:
    """``crm_parse_interval_spec`` (iso8601.c): an ISO 8601 duration ("PT30S") or a :func:`get_msec` value, in
    milliseconds; 0 when absent or invalid."""
    if value is None:
        return 0
    text = value.strip()
    if text.startswith("P"):
        match = _ISO_DURATION.match(text)
        if not match:
            return 0
        y, mo, w, d, h, mi, s = match.groups()
        seconds = (
            int(y or 0) * 365 * 86400 + int(mo or 0) * 30 * 86400 + int(w or 0) * 7 * 86400
            + int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)
        )
        return int(seconds * 1000)
    ms = get_msec(text)
    return ms if ms > 0 else 0


# --- cluster options -------------------------------------------------------------------------------------------------

# Cluster options Pacemaker 3.0.2 renamed: current name -> the deprecated name it still reads (lib/common/options.c,
# the ``alt_name`` column of ``cluster_options``). Before 3.0.2 only the old name exists.
CLUSTER_OPTION_ALIASES = {
    "fencing-enabled": "stonith-enabled",
    "fencing-action": "stonith-action",
    "fencing-reaction": "fence-reaction",
    "fencing-timeout": "stonith-timeout",
    "fencing-watchdog-timeout": "stonith-watchdog-timeout",
    "fencing-max-attempts": "stonith-max-attempts",
    "stop-removed-resources": "stop-orphan-resources",
    "cancel-removed-actions": "stop-orphan-actions",
}
ALIASES_SINCE = (3, 0, 2)
_OLD_NAMES = {old: new for new, old in CLUSTER_OPTION_ALIASES.items()}


def cluster_option(options: Mapping[str, str], name: str, version: Tuple[int, ...],
                   is_valid: Optional[Callable[[str], bool]] = None) -> Optional[str]:
    """``cluster_option_value`` (options.c) as Pacemaker ``version`` reads option ``name`` (either its 3.0.2 name or
    the old one): from 3.0.2 on the current name wins and the old one is read only when the current one is absent;
    before 3.0.2 only the old name means anything. A value ``is_valid`` rejects is None (the caller's default, never
    the other name's value)."""
    new = _OLD_NAMES.get(name, name)
    old = CLUSTER_OPTION_ALIASES.get(new)
    if old is None:
        value = options.get(name)
    elif version >= ALIASES_SINCE:
        value = options.get(new)
        if value is None:
            value = options.get(old)
    else:
        value = options.get(old)
    if value is not None and is_valid is not None and not is_valid(value):
        return None
    return value


def valid_no_quorum_policy(version: Tuple[int, ...]) -> Callable[[str], bool]:
    """``pcmk__valid_no_quorum_policy``: 2.1.9 added ``fence`` (``suicide`` is its deprecated old name)."""
    words = {"stop", "freeze", "ignore", "demote", "suicide"}
    if version >= (2, 1, 9):
        words.add("fence")
    return lambda value: value.lower() in words


# --- versions and names ----------------------------------------------------------------------------------------------


def version_tuple(value: Optional[str]) -> Tuple[int, ...]:
    """A dotted version as ``compare_version`` (utils.c) compares it: numbers per field, trailing zeros ignored."""
    parts = []
    for piece in (value or "").split("."):
        number = scan_ll(piece)
        parts.append(number if number is not None and number >= 0 else 0)
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def numeric_strcasecmp(a: str, b: str) -> int:
    """``pcmk__numeric_strcasecmp`` (strings.c): digit runs compare as numbers, the rest case-insensitively; how
    crm_mon orders node names ("node2" before "node10")."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la and j < lb:
        ca, cb = a[i], b[j]
        if ca.isdigit() and cb.isdigit() and ca.isascii() and cb.isascii():
            ei, ej = i, j
            while ei < la and a[ei].isdigit() and a[ei].isascii():
                ei += 1
            while ej < lb and b[ej].isdigit() and b[ej].isascii():
                ej += 1
            na, nb = int(a[i:ei]), int(b[j:ej])
            if na != nb:
                return -1 if na < nb else 1
            if (ei - i) != (ej - j):
                return -1 if (ei - i) < (ej - j) else 1
            i, j = ei, ej
        else:
            lower_a, lower_b = ca.lower(), cb.lower()
            if lower_a != lower_b:
                return -1 if lower_a < lower_b else 1
            i += 1
            j += 1
    if i >= la and j < lb:
        return -1
    if i < la and j >= lb:
        return 1
    return 0


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_name(kind: str, name: str) -> str:
    """A node, resource or constraint name from a user or a CIB. Names are hostile; they always travel as single
    argv elements or escaped XML. What cannot be represented at all (empty, or control characters, which XML 1.0
    forbids and which would reach the operator's terminal) is refused here."""
    if not name:
        raise RemotectlError(f"empty {kind} name")
    if _CONTROL_RE.search(name):
        raise RemotectlError(f"refusing {kind} name {json.dumps(name)}: it contains control characters")
    return name


_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")


def host_address_problem(text: str) -> Optional[str]:
    """Why a node's address (``server``, ``remote-addr``, a cluster node's name used as a host) is neither an IP
    address nor a host name, or None when it is one. A CIB is hostile: such a value must never reach a resolver or
    an SSH destination parser as if it were one (``user@``, ``:port``, a leading ``-`` all mean something there)."""
    import ipaddress

    if not text:
        return "it is empty"
    if _CONTROL_RE.search(text) or any(c.isspace() for c in text):
        return "it contains spaces or control characters"
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    if ":" in text:
        return "it has a colon but is not an IPv6 address"
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) and len(label) <= 63 for label in name.split(".")):
        return "it is not a valid host name"
    return None


# --- <pacemaker-result><status> --------------------------------------------------------------------------------------


class ResultStatus(NamedTuple):
    """The ``<status>`` of a tool's ``<pacemaker-result>`` document."""

    code: Optional[int]  # the tool's exit code (crm_exit_t); None when absent or not an integer
    message: Optional[str]
    errors: Tuple[str, ...]  # the <errors><error> lines, in order

    def describe(self) -> Optional[str]:
        """The message with the error lines joined, as one line for an operator."""
        if not self.errors:
            return self.message
        joined = "; ".join(self.errors)
        return f"{self.message}: {joined}" if self.message else joined


def result_status(root: ElementTree.Element) -> ResultStatus:
    """The ``<status code=… message=…><errors><error>…`` child of a tool's ``<pacemaker-result>`` (output_xml.c
    ``xml_finish``); all fields empty when there is none."""
    status = root.find("status")
    if status is None:
        return ResultStatus(None, None, ())
    code = status.get("code")
    try:
        number = int(code) if code is not None else None
    except ValueError:
        number = None
    errors = tuple(e.text.strip() for e in status.iter("error") if e.text and e.text.strip())
    return ResultStatus(number, status.get("message"), errors)
