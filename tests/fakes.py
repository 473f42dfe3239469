"""The one scripted stand-in for a cluster node's Pacemaker tools, for unit tests of actions and CLI output.

Real tools run in the integration and lab tests; here only pure logic and rendering are under test, so the
tools answer from fixtures the way Pacemaker 2.1.5 does (exit codes and messages copied from the real tools):
crm_mon from a script of documents (``tests/data/crm_mon``), cibadmin on an in-memory CIB, crm_attribute on a
dict, stonith_admin from a history document, crm_resource recorded. Anything else fails the test.

For the authkey actions, :class:`FakeHost` answers remotectl.transport.files' shell scripts from an in-memory
filesystem (the real scripts run against real files in tests/integration/test_authkey_*.py); :class:`ReplyRunner`
gives one canned reply (check --from cluster).
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from remotectl.transport import files, hostops
from remotectl.transport.base import CommandResult, Runner, TransportError
from remotectl.transport.cluster import ClusterClient

DATA = Path(__file__).resolve().parent / "data"
NO_SUCH_OBJECT = 105  # CRM_EX_NOSUCH
EMPTY_HISTORY = '<pacemaker-result api-version="2.25" request="stonith_admin"><status code="0" message="OK"/>' \
                '</pacemaker-result>'


def crm_mon_fixture(name: str) -> str:
    return (DATA / "crm_mon" / name).read_text()


def cib_fixture(name: str) -> str:
    return (DATA / "cib" / name).read_text()


class FakePacemaker(Runner):
    """Answers Pacemaker's tools; ``calls`` records every argv in order."""

    name = "fake"

    def __init__(self, *, crm_mon: Sequence[str] = (), cib: Optional[str] = None,
                 attributes: Optional[Dict[Tuple[str, str, str], str]] = None,
                 known_nodes: Optional[Iterable[str]] = None, history: Optional[str] = None, fence_rc: int = 0,
                 fail_create: bool = False) -> None:
        self.crm_mon_script: List[str] = list(crm_mon)
        self.root = ET.fromstring(cib) if cib is not None else None
        self.attributes = dict(attributes or {})  # (node, name, lifetime) -> value
        self.known_nodes = set(known_nodes) if known_nodes is not None else None
        self.history = history
        self.fence_rc = fence_rc
        self.fail_create = fail_create
        self.calls: List[List[str]] = []

    # -- queries tests ask ------------------------------------------------------------------------------------
    def writes(self) -> List[List[str]]:
        """Every call that changes something (no queries, no crm_mon, no history)."""
        return [c for c in self.calls if c[0] != "crm_mon" and "--query" not in c
                and not (len(c) > 1 and c[1].startswith("--history"))]

    # -- the tools --------------------------------------------------------------------------------------------
    def run(self, argv, *, stdin=None, timeout=None, env=None) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        tool = {"crm_mon": self._crm_mon, "cibadmin": self._cibadmin, "crm_attribute": self._crm_attribute,
                "stonith_admin": self._stonith_admin, "crm_resource": self._crm_resource}.get(argv[0])
        if tool is None:
            raise AssertionError(f"unexpected command {argv}")
        rc, stdout, stderr = tool(argv)
        return CommandResult(tuple(argv), rc, stdout, stderr)

    def _crm_mon(self, argv):
        if not self.crm_mon_script:
            raise AssertionError("crm_mon called but no crm_mon document was scripted")
        text = self.crm_mon_script[0] if len(self.crm_mon_script) == 1 else self.crm_mon_script.pop(0)
        return 0, text, ""

    def _known(self, node: str) -> bool:
        if self.known_nodes is not None:
            return node in self.known_nodes
        if self.crm_mon_script:
            return f'name="{node}"' in self.crm_mon_script[0]
        return True

    def _crm_attribute(self, argv):
        options = dict(a[2:].split("=", 1) for a in argv[1:] if "=" in a)
        node, name, lifetime = options["node"], options["name"], options["lifetime"]
        if not self._known(node):
            return NO_SUCH_OBJECT, "", f"crm_attribute: Could not map name={node} to a UUID"
        key = (node, name, lifetime)
        if "--query" in argv:
            if key not in self.attributes:
                return NO_SUCH_OBJECT, "", "crm_attribute: Error performing operation: No such device or address"
            scope = "nodes" if lifetime == "forever" else "status"
            return 0, f"scope={scope}  name={name} value={self.attributes[key]}\n", ""
        if "update" in options:
            self.attributes[key] = options["update"]
        elif "--delete" in argv:
            self.attributes.pop(key, None)
        return 0, "", ""

    def _cibadmin(self, argv):
        if self.root is None:
            raise AssertionError("cibadmin called but no CIB was given")
        if "--query" in argv:
            return 0, ET.tostring(self.root, encoding="unicode"), ""
        xml = ET.fromstring(argv[argv.index("--xml-text") + 1])
        section = self.root.find("./configuration/constraints")
        if "--create" in argv:
            assert argv[argv.index("--scope") + 1] == "constraints", argv
            if self.fail_create:
                return 76, "", "Call cib_create failed (-203): Update does not conform to the configured schema"
            if any(e.get("id") == xml.get("id") for e in self.root.iter()):
                return 76, "", "Call cib_create failed (-76): Name not unique on network"
            self.root.set("epoch", str(int(self.root.get("epoch", "0")) + 1))
            section.append(xml)
            return 0, "", ""
        if "--delete" in argv:
            for element in list(section):
                if element.tag == xml.tag and element.get("id") == xml.get("id"):
                    section.remove(element)
            return 0, "", ""  # like cibadmin: deleting nothing succeeds
        raise AssertionError(argv)

    def _stonith_admin(self, argv):
        if argv[1].startswith("--history="):
            return 0, self.history if self.history is not None else EMPTY_HISTORY, ""
        return self.fence_rc, "", "" if self.fence_rc == 0 else "No such device"

    def _crm_resource(self, argv):
        """Meta attribute queries answer from the CIB (rc 105 when unset, as crm_resource does); the rest is
        recorded only."""
        get = next((a.split("=", 1)[1] for a in argv if a.startswith("--get-parameter=")), None)
        if get is None or self.root is None or "--meta" not in argv:
            return 0, "", ""
        resource = next(a.split("=", 1)[1] for a in argv if a.startswith("--resource="))
        for primitive in self.root.iter("primitive"):
            if primitive.get("id") == resource:
                for nvpair in primitive.findall("./meta_attributes/nvpair"):
                    if nvpair.get("name") == get:
                        return 0, nvpair.get("value") + "\n", ""
        return NO_SUCH_OBJECT, "", f"Attribute '{get}' not found for '{resource}'"


def scripted_cluster(**kwargs) -> ClusterClient:
    """A live cluster client whose tools are a :class:`FakePacemaker` (``cluster.runner``)."""
    return ClusterClient(FakePacemaker(**kwargs))


class FakeClock:
    """``clock=`` and ``sleep=`` for actions that wait: time passes only when the action sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


class ReplyRunner(Runner):
    """Gives the same reply to every command: (rc, stdout), or raises it when it is an exception."""

    def __init__(self, name, reply):
        self.name, self.reply, self.calls = name, reply, []

    def run(self, argv, *, stdin=None, timeout=None, env=None):
        self.calls.append((list(argv), stdin, timeout))
        if isinstance(self.reply, Exception):
            raise self.reply
        rc, out = self.reply
        return CommandResult(tuple(argv), rc, out, "")


class FakeHost(Runner):
    """Answers the scripts of remotectl.transport.files like a host with an in-memory filesystem would."""

    def __init__(self, name, *, version="Pacemaker 2.1.5", env=None, root=True, account=True):
        self.name = name
        self.files = {}  # path -> [data, mode, owner, group]
        self.version = version
        self.env = env or {}
        self.root, self.account = root, account
        self.unreachable = False
        self.fail_write = False
        self.fail_restore = False
        self.tamper_after_write = False
        self.before_write = None  # called with the host just before a write is checked and done
        self.commands = []  # every argv run (to check that no key is ever on a command line)
        self.stdin_seen = []

    def put(self, path, data, mode=0o640, owner="root", group="haclient"):
        self.files[path] = [data, mode, owner, group]

    def data(self, path):
        return self.files[path][0] if path in self.files else None

    def _result(self, argv, rc=0, out="", err=""):
        return CommandResult(tuple(argv), rc, out, err)

    def run(self, argv, *, stdin=None, timeout=None, env=None):
        self.commands.append(list(argv))
        if stdin:
            self.stdin_seen.append(stdin)
        if self.unreachable:
            raise TransportError(f"{self.name}: cannot connect: Connection refused")
        if argv[:2] == ["sh", "-c"]:
            script, args = argv[2], list(argv[4:])
            if script == files._PROBE_SCRIPT:
                return self._probe(argv, args)
            if script == files._STATES_SCRIPT:
                return self._states(argv, args)
            if script == files._WRITE_SCRIPT:
                return self._write(argv, args, stdin)
            if script == files._PUSH_SCRIPT:
                return self._push(argv, args, stdin)
            if script == hostops._STATE_SCRIPT:  # an enabled, running pacemaker_remote; no firewall
                return self._result(argv, out="unit pacemaker_remote\nenabled enabled\nactive active\n")
            if script == hostops._READ_KEY_SCRIPT:
                if args[0] not in self.files:
                    return self._result(argv, 66, err=f"{args[0]} does not exist")
                return self._result(argv, out=base64.b64encode(self.files[args[0]][0]).decode())
            if script == files._RESTORE_SCRIPT:
                if self.fail_restore:
                    return self._result(argv, 1, err="cp: disk full")
                source, target = args
                if source not in self.files:
                    return self._result(argv, 66, err=f"{source} does not exist")
                self.files[target] = list(self.files[source])
                return self._result(argv)
        if argv[:3] == ["rm", "-f", "--"]:
            self.files.pop(argv[3], None)
            return self._result(argv)
        return self._result(argv, 127, err=f"{argv[0]}: not simulated")

    def _probe(self, argv, args):
        n = int(args[2])  # args: user, group, number of files to read, ...
        read, rest = args[3:3 + n], args[3 + n:]
        tools, rest = rest[1:1 + int(rest[0])], rest[1 + int(rest[0]):]
        lines = [f"root {'yes' if self.root else 'no'}", f"account {'yes' if self.account else 'no'}"]
        for i, path in enumerate(read, 1):
            if path in self.env:
                lines.append(f"read {i} " + base64.b64encode(self.env[path].encode()).decode())
            else:
                lines.append(f"noread {i}")
        if tools and self.version:
            lines.append(f"version {self.version}")
        lines.append("states")
        lines.append(self._states(argv, rest).stdout.rstrip("\n"))
        return self._result(argv, out="\n".join(lines) + "\n")

    def _states(self, argv, args):
        reader, paths = args[0], args[2:]  # args[1]: clean temps (there are none here)
        lines = []
        for path in paths:
            if path not in self.files:
                lines.append("missing")
                continue
            data, mode, owner, group = self.files[path]
            can = "-"
            if reader:
                can = "yes" if (owner == reader and mode & 0o400) or (group == "haclient" and mode & 0o040) or \
                    mode & 0o004 else "no"
            lines.append(f"file {len(data)} {mode:o} {owner} {group} {hashlib.sha256(data).hexdigest()} {can}")
        return self._result(argv, out="\n".join(lines) + "\n")

    def _write(self, argv, args, stdin):
        target, mode, owner, want, backup, expect = args
        if self.fail_write:
            return self._result(argv, 1, err="mktemp: No space left on device")
        if hashlib.sha256(stdin).hexdigest() != want:
            return self._result(argv, 65, err="content check failed (incomplete transfer)")
        if self.before_write is not None:  # another writer gets there between the probe and this write
            self.before_write(self)
        if expect:
            now = hashlib.sha256(self.files[target][0]).hexdigest() if target in self.files else "absent"
            if now != expect:
                return self._result(argv, 76, out=f"now {now}\n", err=f"{target} changed underneath")
        user, group = owner.split(":") if owner else ("root", "root")
        if backup and target in self.files:
            if backup in self.files:
                return self._result(argv, 73, err=f"backup {backup} already exists")
            old = self.files[target]
            self.files[backup] = [old[0], old[1] & 0o700, old[2], old[3]]
        self.files[target] = [bytes(stdin), int(mode, 8), user, group]
        if self.tamper_after_write:
            self.files[target][0] = b"tampered" + bytes(stdin[8:])
        return self._result(argv, out=self._states(argv, ["", "no", target]).stdout)

    def _push(self, argv, args, stdin):
        """probe_and_write: the probe, push's rule, then the write, in one answer."""
        target, mode, owner, want, prefix, defer_on = args[:6]
        probe = self._probe(argv, args[6:])
        out = probe.stdout
        n = int(args[8])
        if defer_on and any(defer_on in line and not line.lstrip().startswith(("#", ";"))
                            for path in args[9:9 + n] for line in self.env.get(path, "").splitlines()):
            return self._result(argv, out=out + "push deferred\n")
        if not (self.root and self.account):
            owner = ""
        state = self.files.get(target)
        sha = hashlib.sha256(state[0]).hexdigest() if state else None
        if sha == want and f"{state[1]:o}" == mode and (not owner or f"{state[2]}:{state[3]}" == owner):
            return self._result(argv, out=out + "push unchanged\n")
        backup = f"{prefix}-{sha[:12]}" if prefix and state and sha != want else ""
        written = self._write(argv, [target, mode, owner, want, backup, sha or "absent"], stdin)
        return self._result(argv, written.rc, out + f"push write {backup or '-'}\n" + written.stdout, written.stderr)
