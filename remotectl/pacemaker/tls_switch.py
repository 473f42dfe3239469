"""Pure rules of `tls enable` / `tls disable`: switching a whole cluster between the PSK authkey and X.509.

Facts used (pacemaker3.md §3.4, lab-v2.md part B, Pacemaker 3.0.0-3.0.3):
* The mode is chosen once per process from PCMK_ca_file/PCMK_cert_file/PCMK_key_file in the daemon's environment
  (systemd's EnvironmentFile=: /etc/sysconfig/pacemaker on RPM systems, /etc/default/pacemaker on Debian). So
  the settings go into the env files and every daemon is restarted; a daemon that is not restarted keeps its mode.
* An X.509 process offers no PSK and a PSK process no certificate: a PSK cluster node facing an X.509 remote
  fails hard and then fences it. Hence the switch runs under maintenance-mode and every node is switched before
  it ends (the restart order of `authkey rotate --restart`, remotectl/actions/authkey/restart.py).
* X.509 needs Pacemaker 3.0.0 on every node.
* 3.0.2 and 3.0.3 (lib/common/tls.c `pcmk__read_handshake_data`, since commit f875aaff05) log a client
  certificate of ANY other CA as "NOT trusted" and still accept the connection: in X.509 mode remoted does not
  authenticate its clients. No fixed release is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from remotectl.pacemaker.authkey import CLUSTER_RESTART, ENV_FILES, REMOTE_RESTART, RestartStep, Version, version_text
from remotectl.pacemaker.x509 import CA_VARIABLE, CERT_VARIABLE, CRL_VARIABLE, KEY_VARIABLE

MIN_VERSION: Version = (3, 0, 0)
AUTH_BYPASS_FROM: Version = (3, 0, 2)
AUTH_BYPASS_SEEN = ("3.0.2", "3.0.3")
ROLE_VARIABLES = {"ca": CA_VARIABLE, "cert": CERT_VARIABLE, "key": KEY_VARIABLE}
SWITCH_VARIABLES = (CA_VARIABLE, CERT_VARIABLE, KEY_VARIABLE, CRL_VARIABLE)
MARK = "# set by remotectl tls enable"

_ASSIGNMENT_RE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_SAFE_VALUE_RE = re.compile(r"[A-Za-z0-9_./@%+,:=-]+")


def enable_settings(paths: Mapping[str, str]) -> Dict[str, Optional[str]]:
    """variable → value for X.509 on the files at `paths` (role → path); PCMK_crl_file is left as it is."""
    return {ROLE_VARIABLES[role]: paths[role] for role in ("ca", "cert", "key")}


def disable_settings() -> Dict[str, Optional[str]]:
    """variable → None: every certificate setting removed (PSK again)."""
    return {name: None for name in SWITCH_VARIABLES}


def _line(name: str, value: str) -> str:
    if not _SAFE_VALUE_RE.fullmatch(value):
        raise ValueError(f"{value!r} cannot be written to an env file as {name}")
    return f"{name}={value}"


def edit_env_text(text: str, settings: Mapping[str, Optional[str]]) -> str:
    """`text` with each variable of `settings` set (its first assignment replaced in place, later ones dropped;
    appended at the end under MARK when there is none) or removed (value None; MARK too). Comments and every other
    line stay as they are, so the operator's file is changed only where it must, and enable then disable gives
    back the file as it was."""
    lines = text.splitlines()
    out: List[str] = []
    written = set()
    removing = any(v is None for v in settings.values())
    for line in lines:
        if removing and line.strip() == MARK:  # our own mark goes with what it marked (and the blank line before it)
            if out and not out[-1].strip():
                out.pop()
            continue
        match = _ASSIGNMENT_RE.match(line)
        name = match.group(1) if match and not line.lstrip().startswith("#") else None
        if name not in settings:
            out.append(line)
            continue
        value = settings[name]
        if value is not None and name not in written:
            out.append(_line(name, value))
            written.add(name)
    missing = [n for n, v in settings.items() if v is not None and n not in written]
    if missing:
        if out and out[-1].strip():
            out.append("")
        out.append(MARK)
        out.extend(_line(name, settings[name]) for name in missing)
    return "\n".join(out) + "\n" if out else ""


@dataclass(frozen=True)
class EnvEdit:
    path: str
    before: str
    after: str


def env_edits(env_texts: Mapping[str, str], settings: Mapping[str, Optional[str]]) -> Optional[List[EnvEdit]]:
    """The env files to rewrite on one node (only those that change). Every env file the node has is edited: the
    unit reads one of them (which, depends on the distribution), so each must say the same. None when the node
    has none: which one its units read cannot be told from here."""
    present = [path for path in ENV_FILES if path in env_texts]
    if not present:
        return None
    edits = [EnvEdit(path, env_texts[path], edit_env_text(env_texts[path], settings)) for path in present]
    return [e for e in edits if e.after != e.before]


def version_refusal(name: str, version: Optional[Version]) -> Optional[str]:
    """Why a node cannot be switched to X.509, or None."""
    if version is None:
        return f"{name}: its Pacemaker version is unknown (X.509 needs {version_text(MIN_VERSION)} or later)"
    if version < MIN_VERSION:
        return f"{name}: Pacemaker {version_text(version)} has no X.509 mode (it needs {version_text(MIN_VERSION)})"
    return None


def auth_bypass(versions: Mapping[str, Optional[Version]]) -> List[str]:
    """Nodes whose Pacemaker accepts a client certificate of any CA in X.509 mode (3.0.2 and later: no fix is
    known)."""
    return sorted(name for name, version in versions.items() if version is not None and version >= AUTH_BYPASS_FROM)


def auth_bypass_message(nodes: Sequence[str], versions: Mapping[str, Optional[Version]]) -> str:
    shown = ", ".join(f"{n} ({version_text(versions[n])})" for n in nodes)
    return (f"Pacemaker {' and '.join(AUTH_BYPASS_SEEN)} (and any later release without a fix) accept a client "
            f"certificate from ANY CA in X.509 mode: it is logged \"NOT trusted\" but the connection is accepted "
            f"(lib/common/tls.c pcmk__read_handshake_data). On {shown} X.509 encrypts but does not authenticate "
            "the cluster's connections; keep port 3121 reachable from the cluster nodes only")


def switch_steps(nodes: Sequence[Tuple[str, str]], goal: str) -> List[RestartStep]:
    """(name, type) → the restarts, cluster nodes first: every daemon reads its mode once, at start."""
    why = ("X.509" if goal == "x509" else "the PSK authkey") + ": the mode is read once, at daemon start"
    ordered = sorted(nodes, key=lambda n: n[1] != "cluster")
    return [RestartStep(name, "cluster" if kind == "cluster" else ("guest" if kind == "guest" else "remote"),
                        CLUSTER_RESTART if kind == "cluster" else REMOTE_RESTART, True, why)
            for name, kind in ordered]


def switch_plan(goal: str, edits: Mapping[str, Sequence[EnvEdit]], steps: Sequence[RestartStep],
                settings: Mapping[str, Optional[str]], *, resume: bool = False) -> List[str]:
    """The plan for humans, in the order it runs."""
    what = "X.509" if goal == "x509" else "the PSK authkey"
    peers = [s.node for s in steps if s.kind != "cluster"]
    cluster = [s for s in steps if s.kind == "cluster"]
    lines = [("resume the interrupted switch to " if resume else "switch every node to ") + what + ":"]
    lines.append("1. " + (f"node maintenance on {', '.join(peers)}, then " if peers else "")
                 + "maintenance-mode=true (nothing is started, stopped, moved or fenced)")
    if goal == "x509":
        shown = ", ".join(f"{name}={value}" for name, value in settings.items() if value is not None)
        lines.append(f"2. set {shown} in the env files (keeping every other line and a backup of each file):")
    else:
        lines.append(f"2. remove {', '.join(SWITCH_VARIABLES)} from the env files (keeping a backup of each file):")
    for node, node_edits in edits.items():
        lines.append(f"   - {node}: " + (", ".join(e.path for e in node_edits) or "already set (unchanged)"))
    lines.append("3. restart the cluster nodes one at a time, each waited for until it is a member again: "
                 + ", ".join(s.node for s in cluster))
    if peers:
        lines.append("4. then pacemaker_remote on " + ", ".join(peers) + " (waiting until each listens)")
    probe = "the X.509 safe probe (the certificate chain against the CA" if goal == "x509" else \
        "the PSK safe probe (the cluster's key"
    lines.append(f"5. prove every remoted switched with {probe}; it never completes a handshake, so no connection "
                 "is taken over)")
    lines.append("6. on any failure in 2-5: the env files back from their backups on every node, the daemons "
                 "restarted again, all before maintenance ends")
    lines.append("7. maintenance-mode back, wait until every node is online, node maintenance back, wait until "
                 "every resource is where it was")
    return lines
