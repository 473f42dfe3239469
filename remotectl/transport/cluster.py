"""The embedded cluster client: runs Pacemaker's tools on a cluster node, here, or against a CIB file.

Three ways to reach "the cluster" behind one interface:
- LocalCluster: this machine is a cluster node; tools run as subprocesses.
- SshCluster: one lazily opened SSH connection to a cluster node; tools run there.
- CibFileCluster: an offline CIB XML file. Pacemaker's tools are used with CIB_file= when they are installed
  here (they then edit the file in place); otherwise only read-only work is possible, through the pure model.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence, Tuple, Union

from remotectl.pacemaker import tools
from remotectl.reports import RemotectlError
from remotectl.transport.base import CommandResult, Runner, TransportError
from remotectl.transport.local import LocalRunner


def pacemaker_tools_here() -> bool:
    """Whether this machine has the Pacemaker tools the cluster client runs (crm_mon, cibadmin)."""
    return shutil.which("crm_mon") is not None and shutil.which("cibadmin") is not None


class ClusterError(RemotectlError):
    """A Pacemaker tool ran but failed; the message carries its own explanation."""


class ClusterClient:
    """Runs Pacemaker tools somewhere. `live` is False for an offline CIB file."""

    live = True
    name = "?"

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _env(self) -> Optional[dict]:
        return None

    def run_tool(self, argv: Sequence[str], *, stdin: Optional[bytes] = None, timeout: float = 120) -> CommandResult:
        return self.runner.run(argv, stdin=stdin, timeout=timeout, env=self._env())

    def check_tool(self, argv: Sequence[str], *, stdin: Optional[bytes] = None, timeout: float = 120) -> CommandResult:
        """Run a tool and raise ClusterError (with the tool's own message) when it fails."""
        return self.checked(self.run_tool(argv, stdin=stdin, timeout=timeout))

    def checked(self, result: CommandResult) -> CommandResult:
        """``result``, or ClusterError (with the tool's own message) when the tool failed."""
        argv = result.argv
        if result.rc == 127:
            raise ClusterError(f"{self.name}: {argv[0]} is not installed there (is this a Pacemaker cluster node?)")
        if result.rc != 0:
            raise ClusterError(
                f"{self.name}: {argv[0]} failed ({tools.exit_meaning(result.rc)}): "
                f"{tools.failure_detail(result.stdout, result.stderr) or f'exit status {result.rc}'}"
            )
        return result

    def cib_xml(self) -> str:
        return self.check_tool(tools.cib_query()).stdout

    def crm_mon_xml(self) -> str:
        return self.check_tool(tools.crm_mon_xml()).stdout

    def status_and_inventory_xml(self) -> Tuple[str, Union[str, ElementTree.Element]]:
        """What a live node list reads: crm_mon's XML, and a CIB with (at least) what the node inventory reads.
        Here: crm_mon and the whole CIB, side by side."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            mon = pool.submit(self.crm_mon_xml)
            cib = pool.submit(self.cib_xml)
            return mon.result(), cib.result()

    def close(self) -> None:
        self.runner.close()


class LocalCluster(ClusterClient):
    name = "local"

    def __init__(self) -> None:
        super().__init__(LocalRunner())


class SshCluster(ClusterClient):
    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.name = runner.name

    def status_and_inventory_xml(self) -> Tuple[str, Union[str, ElementTree.Element]]:
        """One SSH round trip (transport/batch.py): crm_mon, the <cib> element alone and only the configuration
        sections the inventory reads, side by side; never the status section (most of a big CIB). Falls back to
        crm_mon + the whole CIB when the batch cannot be used or the sections cannot stand in for the CIB."""
        from remotectl.pacemaker import inventory
        from remotectl.transport import batch

        commands = [tools.crm_mon_xml(), tools.cib_root_query(), tools.cib_sections_query(inventory.SECTIONS)]
        results = batch.run_batch(self.runner, commands, env=self._env())
        if results is None:
            return super().status_and_inventory_xml()
        mon, root, sections = results
        mon_xml = self.checked(mon).stdout
        cib = inventory.cib_from_parts(root.stdout, sections.stdout) if root.ok and sections.ok else None
        return mon_xml, cib if cib is not None else self.cib_xml()


class CibFileCluster(ClusterClient):
    live = False

    def __init__(self, path: str) -> None:
        super().__init__(LocalRunner())
        if not os.path.isfile(path):
            raise RemotectlError(f"CIB file {path} does not exist or is not a regular file")
        self.path = os.path.abspath(path)
        self.name = f"cib:{path}"

    def _env(self) -> Optional[dict]:
        return {"CIB_file": self.path}

    def run_tool(self, argv: Sequence[str], *, stdin: Optional[bytes] = None, timeout: float = 120) -> CommandResult:
        if argv and argv[0] == "stonith_admin":
            raise ClusterError("fencing needs a live cluster; it cannot be done on a CIB file (drop --cib)")
        if not pacemaker_tools_here():
            raise ClusterError(
                f"{argv[0]} is needed for this on a CIB file, but Pacemaker's tools are not installed here"
            )
        self.cib_xml()  # the tools rewrite the file in place: only a file that passes the XML gate gets to them
        return super().run_tool(argv, stdin=stdin, timeout=timeout)

    def cib_xml(self) -> str:
        """The file's text, once it passed the same hostile-XML gate as every document (size limit before
        reading, no DOCTYPE or entities, well-formed) and its root is <cib>."""
        from remotectl.pacemaker import xmlsafe

        try:
            with open(self.path, "rb") as handle:
                data = handle.read(xmlsafe.MAX_BYTES + 1)
        except OSError as exc:
            raise RemotectlError(f"cannot read CIB file {self.path}: {exc.strerror or exc}") from None
        for magic, kind in _COMPRESSED:
            if data.startswith(magic):
                raise RemotectlError(f"CIB file {self.path} is {kind}-compressed: unpack it first")
        root = xmlsafe.parse(data, f"CIB file {self.path}")
        if root.tag != "cib":
            raise RemotectlError(f"CIB file {self.path} is not a CIB: its root element is <{root.tag}>, not <cib>")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:  # well-formed in another declared encoding
            return ElementTree.tostring(root, encoding="unicode")


_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def default_cluster_target() -> str:
    """`local` when this machine has Pacemaker's tools, otherwise a clear error naming the options."""
    if pacemaker_tools_here():
        return "local"
    raise TransportError(
        "no cluster to talk to: Pacemaker's tools are not installed here; "
        "use --cluster [user@]host (a cluster node over SSH) or --cib FILE (an offline CIB)"
    )
