"""Pure knowledge about Pacemaker's remote authkey: sizes, fingerprints, where a node reads its key from, and
the verdict over a set of nodes (majority or reference key, problems such as world-readable or missing).

Nothing here touches a host; the actions feed it what the hosts said. Key bytes enter only `fingerprint()` and
`key_size_problem()`; nothing returned here contains them.

Facts used (pacemaker-protocol.md §1.3–1.5):
* The key is the raw bytes of the whole file, no size limit in Pacemaker; an empty file is "no key".
* Location: $PCMK_authkey_location (from /etc/sysconfig/pacemaker or /etc/default/pacemaker, the
  EnvironmentFile of the units), else /etc/pacemaker/authkey. Before 3.0.0 an unreadable location falls back
  silently to /etc/pacemaker/authkey and then to /etc/corosync/authkey; 3.0.0+ has no fallback.
* 2.1.x–3.0.1 cache the key for 60 s; 3.0.2+ read it once per daemon lifetime (rotation needs restarts).
* The file must be readable by the hacluster user or the haclient group (the controller on cluster nodes runs
  as hacluster; pacemaker-remoted runs as root).
* OpenSSL caps PSKs at 512 bytes (3.x; 256 in 1.1.1): a longer key works with Pacemaker (GnuTLS) but not with
  OpenSSL-based clients.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from remotectl.jsonable import jsonable

DEFAULT_KEY_PATH = "/etc/pacemaker/authkey"
COROSYNC_KEY_PATH = "/etc/corosync/authkey"
ENV_FILES = ("/etc/sysconfig/pacemaker", "/etc/default/pacemaker")
LOCATION_VARIABLE = "PCMK_authkey_location"
X509_VARIABLES = ("PCMK_cert_file", "PCMK_ca_file", "PCMK_key_file")

KEY_OWNER = "hacluster"
KEY_GROUP = "haclient"
KEY_MODE = 0o400

DEFAULT_KEY_BYTES = 256  # what pcs and the ha_cluster role generate; usable by every TLS stack
MIN_KEY_BYTES = 16  # 128 bits: anything shorter is too weak to be a PSK
MAX_KEY_BYTES = 65536  # Pacemaker has no limit; 64 KiB is 16x the largest key any tool generates
OPENSSL_MAX_PSK_BYTES = 512  # OpenSSL 3.x PSK_MAX_PSK_LEN (256 in 1.1.1)

CACHE_SECONDS = 60  # 2.1.x .. 3.0.1
NO_FALLBACK_FROM = (3, 0, 0)
LIFETIME_CACHE_FROM = (3, 0, 2)

Version = Tuple[int, int, int]


# -- sizes and fingerprints ----------------------------------------------------------------------------------------
def fingerprint(data: bytes) -> str:
    """`sha256:<hex>`: the only form in which a key is ever shown."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def remote_path_error(path: str) -> Optional[str]:
    """Why ``--path`` cannot name a key file on the nodes, or None: it is resolved on each node, where a relative
    path would depend on the SSH login's working directory."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path (it names a file on the nodes)"
    if path.endswith("/") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return f"{path!r} does not name a file"
    return None


def key_size_error(size: int) -> Optional[str]:
    """Why a key of `size` bytes is refused, or None when it is acceptable."""
    if size <= 0:
        return "the key is empty (Pacemaker treats an empty key file as no key)"
    if size < MIN_KEY_BYTES:
        return f"the key is {size} bytes; at least {MIN_KEY_BYTES} bytes (128 bits) are required"
    if size > MAX_KEY_BYTES:
        return f"the key is {size} bytes; at most {MAX_KEY_BYTES} bytes are supported"
    return None


def key_size_warning(size: int) -> Optional[str]:
    if size > OPENSSL_MAX_PSK_BYTES:
        return (
            f"a {size}-byte key works with Pacemaker (GnuTLS) but cannot be used by OpenSSL-based clients "
            f"(OpenSSL accepts at most {OPENSSL_MAX_PSK_BYTES} bytes, 256 before 3.0); {DEFAULT_KEY_BYTES} bytes "
            "is what pcs uses"
        )
    return None


def format_mode(mode: Optional[int]) -> Optional[str]:
    return None if mode is None else f"{mode & 0o7777:04o}"


# -- versions -------------------------------------------------------------------------------------------------------
_VERSION_RE = re.compile(r"Pacemaker\s+(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> Optional[Version]:
    """`pacemakerd --version` / `crm_mon --version` / `pacemaker-remoted --version` → (major, minor, patch)."""
    match = _VERSION_RE.search(text or "")
    if not match:
        return None
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def version_text(version: Optional[Version]) -> Optional[str]:
    return None if version is None else ".".join(str(part) for part in version)


def has_corosync_fallback(version: Optional[Version]) -> Optional[bool]:
    """True before 3.0.0 (silent /etc/corosync/authkey fallback), False from 3.0.0, None when unknown."""
    return None if version is None else version < NO_FALLBACK_FROM


def caches_for_lifetime(version: Optional[Version]) -> Optional[bool]:
    """True from 3.0.2 (the key is read once per daemon lifetime: rotation needs restarts)."""
    return None if version is None else version >= LIFETIME_CACHE_FROM


# -- argv builders for what the key lifecycle runs on nodes (pure) -------------------------------------------------

VERSION_TOOLS = ("pacemakerd", "pacemaker-remoted", "crm_mon")  # any prints "Pacemaker X.Y.Z" for --version


# -- key location ---------------------------------------------------------------------------------------------------
def parse_env_file(text: str) -> Dict[str, str]:
    """KEY=VALUE assignments as systemd's EnvironmentFile and sh read them: comments, blank lines, `export`,
    single or double quotes. The last assignment wins. Malformed lines are ignored."""
    values: Dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        try:
            parts = shlex.split(value, comments=True)
        except ValueError:
            continue
        values[name] = " ".join(parts)
    return values


@dataclass(frozen=True)
class KeyLocation:
    path: str
    source: str  # "option" (--path), "default", or the env file that set PCMK_authkey_location
    explicit: bool  # set by the user or an env file, rather than the built-in default
    notes: Tuple[str, ...] = ()
    x509: bool = False  # PCMK_cert_file, PCMK_ca_file and PCMK_key_file all set (3.0.0+ then ignores the PSK)
    empty_in: Optional[str] = None  # the env file that sets PCMK_authkey_location to nothing (3.0.0+: no key)


def key_location(env_texts: Mapping[str, str], override: Optional[str] = None) -> KeyLocation:
    """Where a node's daemons read the key: `override` (--path), else PCMK_authkey_location from the first of
    ENV_FILES that exists (the RPM /etc/sysconfig before the Debian /etc/default), else the default.
    `env_texts` maps env file path → its text; absent files are left out."""
    if override:
        return KeyLocation(override, "option", True)
    parsed = {path: parse_env_file(env_texts[path]) for path in ENV_FILES if path in env_texts}
    notes: List[str] = []
    chosen_path = chosen_source = None
    for path in ENV_FILES:
        value = parsed.get(path, {}).get(LOCATION_VARIABLE)
        if not value:
            continue
        if chosen_path is None:
            chosen_path, chosen_source = value, path
        elif value != chosen_path:
            notes.append(
                f"{LOCATION_VARIABLE} is {chosen_path} in {chosen_source} but {value} in {path}; "
                f"using {chosen_source}"
            )
    empty_in = next((path for path in ENV_FILES if parsed.get(path, {}).get(LOCATION_VARIABLE) == ""), None)
    merged: Dict[str, str] = {}
    for path in reversed(ENV_FILES):
        merged.update(parsed.get(path, {}))
    x509 = all(merged.get(name) for name in X509_VARIABLES)
    if chosen_path:
        if not chosen_path.startswith("/"):
            notes.append(f"{LOCATION_VARIABLE}={chosen_path} is not an absolute path")
        return KeyLocation(chosen_path, chosen_source, True, tuple(notes), x509)
    return KeyLocation(DEFAULT_KEY_PATH, "default", False, tuple(notes), x509, empty_in)


REMOTE_SETTINGS = {  # what `doctor` compares between nodes, and Pacemaker's default for each
    "PCMK_remote_port": "3121",
    LOCATION_VARIABLE: DEFAULT_KEY_PATH,
    "PCMK_tls_priorities": "NORMAL",
}


def remote_settings(env_texts: Mapping[str, str]) -> Dict[str, str]:
    """The Pacemaker Remote settings a node's env files give (the defaults where unset), plus ``mode``: ``x509``
    when the certificate variables are all set, else ``psk``. The location follows :func:`key_location`."""
    merged: Dict[str, str] = {}
    for path in reversed(ENV_FILES):
        if path in env_texts:
            merged.update(parse_env_file(env_texts[path]))
    out = {name: merged.get(name) or default for name, default in REMOTE_SETTINGS.items()}
    location = key_location(env_texts)
    out[LOCATION_VARIABLE] = location.path
    out["mode"] = "x509" if location.x509 else "psk"
    return out


def fallback_chain(location: KeyLocation, version: Optional[Version]) -> List[str]:
    """The paths Pacemaker tries, in order, for this location and version (lrmd__init_remote_key).
    Unknown version: assume the pre-3.0 chain, so a silent fallback is never missed. An empty
    PCMK_authkey_location is "" to 3.0.0+ (no key, no fallback) and unset to older versions."""
    if location.empty_in and location.source == "default" and has_corosync_fallback(version) is False:
        return []
    chain = [location.path]
    if location.source == "option":
        return chain
    if has_corosync_fallback(version) is False:
        return chain
    for path in (DEFAULT_KEY_PATH, COROSYNC_KEY_PATH):
        if path not in chain:
            chain.append(path)
    return chain


# -- one node's key file --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    code: str
    severity: str  # "error" (the node is not OK) or "warning"
    message: str

    def to_json(self) -> dict:
        return jsonable(self)


@dataclass(frozen=True)
class FileFacts:
    """What a host said about one path (no content). transport.files returns this record, so the facts a host
    reports and the facts these rules judge are one type."""

    path: str
    exists: bool
    size: Optional[int] = None
    mode: Optional[int] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    sha256: Optional[str] = None
    readable: bool = True
    reader_can_read: Optional[bool] = None  # can the user asked about (hacluster, for verify) open it; None: unknown
    kind: Optional[str] = None  # what exists there when it is not a regular file: "a directory", "a FIFO", ...

    @property
    def usable(self) -> bool:
        """Pacemaker (running as root) would load a key from it."""
        return self.exists and self.kind is None and self.readable and bool(self.size)

    @property
    def fingerprint(self) -> Optional[str]:
        return f"sha256:{self.sha256}" if self.sha256 else None


def permission_problems(facts: FileFacts) -> List[Problem]:
    """Owner/mode problems of an existing key file."""
    problems: List[Problem] = []
    if not facts.exists or facts.mode is None:
        return problems
    mode = facts.mode
    if mode & 0o004:
        problems.append(Problem("world-readable", "error",
                                f"{facts.path} is world-readable (mode {format_mode(mode)}): every local user can "
                                "read the cluster's key; use 0400 hacluster:haclient"))
    if mode & 0o022:
        problems.append(Problem("writable-by-others", "error",
                                f"{facts.path} is writable by group or others (mode {format_mode(mode)})"))
    if facts.reader_can_read is False:
        problems.append(Problem("unreadable-by-hacluster", "error",
                                f"{facts.path} ({facts.owner}:{facts.group} {format_mode(mode)}) is not readable by "
                                f"the {KEY_OWNER} user or the {KEY_GROUP} group: the controller of a cluster node "
                                "cannot load it"))
    elif mode & 0o040 and facts.group not in (KEY_GROUP, "root") and not mode & 0o004:
        problems.append(Problem("group-readable", "warning",
                                f"{facts.path} is readable by group {facts.group} (mode {format_mode(mode)})"))
    return problems


@dataclass(frozen=True)
class NodeKeyAssessment:
    """Which file a node's Pacemaker would actually load, and what is wrong with the configuration."""

    effective: Optional[FileFacts]  # the file whose fingerprint counts; None when no key would load
    configured_path: str
    problems: Tuple[Problem, ...]


def assess_node(location: KeyLocation, version: Optional[Version], files: Mapping[str, FileFacts]) -> NodeKeyAssessment:
    """`files` holds the facts for (at least) the paths of fallback_chain(location, version) up to the first
    usable one."""
    problems: List[Problem] = []
    vtext = version_text(version)
    if version is None and location.source != "option":
        problems.append(Problem("version-unknown", "warning",
                                "the Pacemaker version could not be read (pacemakerd, pacemaker-remoted, crm_mon "
                                "--version): guessing the key locations of Pacemaker before 3.0, with the "
                                "fallbacks 3.0 dropped"))
    for note in location.notes:
        problems.append(Problem("env-conflict", "warning", note))
    if location.x509 and version is not None and version >= NO_FALLBACK_FROM:
        problems.append(Problem("x509-mode", "warning",
                                "PCMK_cert_file, PCMK_ca_file and PCMK_key_file are set: Pacemaker "
                                f"{vtext} uses X.509 for remote connections and ignores this key"))
    chain = fallback_chain(location, version)
    if location.empty_in and location.source == "default":
        if not chain:
            problems.append(Problem("empty-location", "error",
                                    f"{LOCATION_VARIABLE} is set to nothing in {location.empty_in}: Pacemaker "
                                    f"{vtext} loads no key (3.0 has no fallback to {DEFAULT_KEY_PATH})"))
        else:
            who = f"Pacemaker {vtext}" if vtext else "guessing Pacemaker before 3.0 (the version could not be " \
                                                     "determined; 3.0 would load no key)"
            problems.append(Problem("empty-location", "warning",
                                    f"{LOCATION_VARIABLE} is set to nothing in {location.empty_in}; {who} uses "
                                    f"{DEFAULT_KEY_PATH}"))
    effective: Optional[FileFacts] = None
    for index, path in enumerate(chain):
        facts = files.get(path)
        if facts is None:
            break
        if facts.usable:
            effective = facts
            break
        reason = ("is missing" if not facts.exists else f"is {facts.kind}, not a regular file" if facts.kind
                  else "cannot be read" if not facts.readable else "is empty")
        if index + 1 < len(chain):
            nxt = chain[index + 1]
            who = f"Pacemaker {vtext}" if vtext else "Pacemaker before 3.0 (the version could not be determined)"
            code = "corosync-fallback" if nxt == COROSYNC_KEY_PATH else "location-fallback"
            problems.append(Problem(code, "error", f"{path} {reason}; {who} silently falls back to {nxt}"))
        else:
            code = ("missing" if not facts.exists else "not-a-file" if facts.kind
                    else "unreadable" if not facts.readable else "empty")
            tail = ""
            if len(chain) == 1 and location.source not in ("option", "default"):
                tail = f" (Pacemaker {vtext} has no fallback)"
            problems.append(Problem(code, "error", f"{path} {reason}: no key would be loaded{tail}"))
    if effective is not None:
        if effective.size is not None and effective.size < MIN_KEY_BYTES:
            problems.append(Problem("too-short", "error", f"{effective.path} is {effective.size} bytes: too weak for "
                                    f"a PSK (push refuses keys under {MIN_KEY_BYTES} bytes)"))
        problems.extend(permission_problems(effective))
    return NodeKeyAssessment(effective, location.path, tuple(_dedupe(problems)))


def _dedupe(problems: Iterable[Problem]) -> List[Problem]:
    seen = set()
    out = []
    for problem in problems:
        key = (problem.code, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


# -- the verdict over all nodes ---------------------------------------------------------------------------------
@dataclass
class Verdict:
    reference: Optional[str]  # the fingerprint every node should have
    reference_source: Optional[str]  # "key" (--key), "majority", or None (no majority)
    matches: Dict[str, Optional[bool]]  # node → matches the reference (None: no key or no reference)
    differing: List[str]
    groups: Dict[str, List[str]]  # fingerprint → nodes
    unchecked: List[str]  # could not be reached or read
    consistent: bool
    summary: str = ""
    notes: List[str] = field(default_factory=list)


def verdict(fingerprints: Mapping[str, Optional[str]], unreachable: Sequence[str] = (),
            reference: Optional[str] = None) -> Verdict:
    """fingerprints: node → the effective key's fingerprint (None when the node has no usable key).
    `reference` (from --key) wins; otherwise the majority (a strict plurality) is the reference.
    Consistent = every node was checked, has a key, and all keys equal the reference."""
    groups: Dict[str, List[str]] = {}
    for node, fp in fingerprints.items():
        if fp:
            groups.setdefault(fp, []).append(node)
    source: Optional[str] = "key" if reference else None
    notes: List[str] = []
    if reference is None and groups:
        counts = Counter({fp: len(nodes) for fp, nodes in groups.items()}).most_common()
        if len(counts) == 1 or counts[0][1] > counts[1][1]:
            reference, source = counts[0][0], "majority"
        else:
            notes.append(f"no majority: {len(groups)} different keys, {counts[0][1]} node(s) each at most")
    matches: Dict[str, Optional[bool]] = {}
    for node, fp in fingerprints.items():
        matches[node] = None if (fp is None or reference is None) else fp == reference
    differing = [node for node, fp in fingerprints.items()
                 if fp is not None and (reference is None or fp != reference)]
    no_key = [node for node, fp in fingerprints.items() if fp is None]
    unchecked = list(unreachable)
    consistent = bool(fingerprints) and not differing and not no_key and not unchecked and reference is not None
    parts = []
    if consistent:
        parts.append(f"all {len(fingerprints)} node(s) have key {reference}")
    else:
        if differing:
            against = "--key" if source == "key" else ("the majority" if source == "majority" else "each other")
            parts.append(f"{len(differing)} node(s) differ from {against}: {', '.join(differing)}")
        if no_key:
            parts.append(f"no usable key on {', '.join(no_key)}")
        if unchecked:
            parts.append(f"not checked: {', '.join(unchecked)}")
        if not fingerprints and not unchecked:
            parts.append("no nodes")
    return Verdict(reference, source, matches, differing, groups, unchecked, consistent, "; ".join(parts), notes)


# -- rotation ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestartStep:
    node: str
    kind: str  # "cluster" (pacemaker), "remote" or "guest" (pacemaker_remote)
    argv: Tuple[str, ...]
    needed: bool  # run it (the daemon keeps the key for its lifetime, its version is unknown, or asked for)
    reason: str


REMOTE_RESTART = ("systemctl", "restart", "pacemaker_remote")
CLUSTER_RESTART = ("systemctl", "restart", "pacemaker")


def plan_restarts(nodes: Sequence[Tuple[str, str, Optional[Version]]], *, always: bool = False) -> List[RestartStep]:
    """nodes: (name, type, version). A restart is needed where the daemon keeps the key for its lifetime
    (3.0.2+) or the version is unknown; older versions re-read the key within CACHE_SECONDS and are restarted
    only with `always`. Order: cluster nodes first (one at a time), then remote and guest nodes: a connection
    needs the same key at both ends, so every controller must hold the new key before any remoted does."""
    steps: List[RestartStep] = []
    ordered = sorted(nodes, key=lambda n: n[1] != "cluster")  # stable: cluster first, then remote/guest
    for name, node_type, version in ordered:
        lifetime = caches_for_lifetime(version)
        kind = node_type if node_type in ("cluster", "guest") else "remote"
        argv = CLUSTER_RESTART if kind == "cluster" else REMOTE_RESTART
        if lifetime is None:
            needed, reason = True, "Pacemaker version unknown (guessing 3.0.2+): restart to be sure the new key " \
                                   "is loaded"
        elif lifetime:
            needed, reason = True, f"Pacemaker {version_text(version)} reads the key once per daemon lifetime"
        elif always:
            needed, reason = True, (f"restart asked for: Pacemaker {version_text(version)} would re-read the key "
                                    f"within {CACHE_SECONDS} s anyway")
        else:
            needed, reason = False, (f"Pacemaker {version_text(version)} re-reads the key within "
                                     f"{CACHE_SECONDS} s; no restart needed")
        steps.append(RestartStep(name, kind, argv, needed, reason))
    return steps


def backup_name(path: str, stamp: str, replaced: Optional[str]) -> str:
    """Where the replaced key is kept: the push's time stamp (milliseconds) and the start of the replaced key's
    fingerprint, so that two pushes in the same millisecond (a push, then a rotation) never want the same name,
    and an operator can tell which key a backup holds."""
    digest = replaced.split(":", 1)[-1][:12] if replaced else "unreadable"
    return f"{backup_prefix(path, stamp)}-{digest}"


def backup_prefix(path: str, stamp: str) -> str:
    """backup_name without its last part, for a script on the node that appends it (transport.files.probe_and_write)."""
    return f"{path}.bak-{stamp}"
