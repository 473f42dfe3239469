"""The one scripted stand-in for a cluster node's Pacemaker tools, for unit tests of actions and CLI output.

Real tools run in the integration and lab tests; here only pure logic and rendering are under test, so the
tools answer from fixtures the way Pacemaker 2.1.5 does (exit codes and messages copied from the real tools):
crm_mon from a script of documents (``tests/data/crm_mon``), cibadmin on an in-memory CIB, crm_attribute on a
dict, stonith_admin from a history document, crm_resource recorded. Anything else fails the test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from remotectl.transport.base import CommandResult, Runner
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
        return 0, "", ""


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
