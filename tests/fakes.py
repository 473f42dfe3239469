"""Fakes at the Runner seam, shared by the unit tests. Fakes are for pure logic only: the real shell scripts, sshd,
pacemaker-remoted and crm_mon run in tests/integration."""

import base64
import hashlib

from remotectl.transport import files
from remotectl.transport.base import CommandResult, Runner, TransportError


class Clock:
    """A monotonic clock and its sleep: sleeping advances the clock, nothing waits."""

    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
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


def crm_mon_nodes(online):
    """A crm_mon --output-as=xml document with one node per name in `online` (name -> online?)."""
    nodes = "".join(f'<node name="{name}" id="{name}" online="{str(up).lower()}" standby="false" '
                    'maintenance="false" pending="false" unclean="false" shutdown="false" resources_running="0" '
                    'type="member"/>' for name, up in online.items())
    return f"<pacemaker-result><nodes>{nodes}</nodes><resources/></pacemaker-result>"


class CrmMonCluster:
    """A cluster whose crm_mon answers from a script, one entry per call (the last one repeats); an exception in
    the script is raised."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def crm_mon_xml(self):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return crm_mon_nodes(answer)


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
        target, mode, owner, want, backup = args
        if self.fail_write:
            return self._result(argv, 1, err="mktemp: No space left on device")
        if hashlib.sha256(stdin).hexdigest() != want:
            return self._result(argv, 65, err="content check failed (incomplete transfer)")
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
