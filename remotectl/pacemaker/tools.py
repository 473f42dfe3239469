"""argv builders for Pacemaker's command-line tools and the meaning of their exit codes (crm_exit_t).

Pure: nothing here runs anything. Every builder returns a list of strings; names are passed as separate
arguments, never spliced into a string.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence

# crm_exit_t values (include/crm/common/results.h) that the tools return and operators meet.
CRM_EXIT_MEANINGS = {
    0: "OK",
    1: "error",
    2: "invalid parameter",
    3: "unimplemented feature",
    4: "insufficient privileges",
    5: "not installed",
    6: "not configured",
    7: "not running",
    64: "incorrect usage",
    65: "invalid data given",
    66: "input file not available",
    69: "required service unavailable",
    70: "internal software bug",
    71: "operating system error",
    73: "cannot create output file",
    76: "protocol violated",
    100: "unknown cluster error",
    102: "cluster not running or not reachable",
    103: "cluster state is transitioning",
    104: "update was older than existing configuration",
    105: "no such object",
    106: "quorum required",
    107: "operation not safe",
    108: "object already exists",
    109: "multiple objects matched",
    110: "resource still has active parts",
    111: "node is not online",
    112: "could not find the requested target",
    113: "not executed",
    114: "lacking the required capability",
    115: "timeout",
    116: "digest does not match",
    124: "timeout",
}

EXIT_NO_SUCH_OBJECT = 105


def exit_meaning(rc: int) -> str:
    return CRM_EXIT_MEANINGS.get(rc, f"exit status {rc}")


def crm_mon_xml(*, inactive: bool = True) -> List[str]:
    argv = ["crm_mon", "--one-shot", "--output-as=xml"]
    if inactive:
        argv.append("--inactive")
    return argv


def cib_query(scope: Optional[str] = None) -> List[str]:
    argv = ["cibadmin", "--query"]
    if scope:
        argv += ["--scope", scope]
    return argv


def cib_root_query() -> List[str]:
    """The <cib> element alone: its attributes (validate-with, crm_feature_set, have-quorum), no children."""
    return ["cibadmin", "--query", "--xpath", "/cib", "--no-children"]


def cib_sections_query(sections: Sequence[str]) -> List[str]:
    """Only these <configuration> sections, in one query (cibadmin wraps several matches in <xpath-query>)."""
    return ["cibadmin", "--query", "--xpath", "|".join(f"/cib/configuration/{name}" for name in sections)]


def cluster_property_query(name: str) -> List[str]:
    return ["crm_attribute", "--type", "crm_config", "--name", name, "--query", "--quiet"]


def cluster_property_update(name: str, value: str) -> List[str]:
    return ["crm_attribute", "--type", "crm_config", "--name", name, "--update", value]


def cluster_property_delete(name: str) -> List[str]:
    return ["crm_attribute", "--type", "crm_config", "--name", name, "--delete"]


def attribute_value(stdout: str) -> Optional[str]:
    """The value crm_attribute --query printed: the `value=` field of its last line (`scope=… name=… value=…`), or
    that whole line with --quiet; None when nothing or `(null)` was printed."""
    lines = (stdout or "").strip().splitlines()
    if not lines:
        return None
    match = re.search(r"(?:^|\s)value=(.*)$", lines[-1])
    value = match.group(1) if match else lines[-1].strip()
    return None if value == "(null)" else value


def cib_create(scope: str, xml_text: str) -> List[str]:
    return ["cibadmin", "--create", "--scope", scope, "--xml-text", xml_text]


def cib_delete(xml_text: str) -> List[str]:
    return ["cibadmin", "--delete", "--xml-text", xml_text]


# --- builders that glue every name to its option (--opt=VALUE) ------------------------------------------------------
# GLib's option parser (all Pacemaker tools) does not always take the argv element after an option as its value:
# `crm_attribute --node "-rf --delete"` fails with "Unknown option -f". With `--node=-rf --delete` the value is
# unambiguous, whatever it starts with. Use these for names that come from users or a CIB.


def attribute_query(node: str, name: str, *, lifetime: str = "forever") -> List[str]:
    return ["crm_attribute", f"--node={node}", f"--name={name}", "--query", f"--lifetime={lifetime}"]


def attribute_update(node: str, name: str, value: str, *, lifetime: str = "forever") -> List[str]:
    return ["crm_attribute", f"--node={node}", f"--name={name}", f"--update={value}", f"--lifetime={lifetime}"]


def attribute_delete(node: str, name: str, *, lifetime: str = "forever") -> List[str]:
    return ["crm_attribute", f"--node={node}", f"--name={name}", "--delete", f"--lifetime={lifetime}"]


def stonith_fence(node: str, action: str) -> List[str]:
    """stonith_admin --reboot=NODE (action reboot) or --fence=NODE (action off)."""
    flag = {"reboot": "--reboot", "off": "--fence"}[action]
    return ["stonith_admin", f"{flag}={node}"]


def stonith_history(node: Optional[str] = None) -> List[str]:
    """Every recorded and pending fencing event for node (or all nodes), as XML."""
    return ["stonith_admin", f"--history={node or '*'}", "--verbose", "--output-as=xml"]


def resource_fail(resource: str, node: str) -> List[str]:
    """Record a (simulated) failure of resource on node, as Pacemaker does to a guest node's container when it
    fences the guest; the scheduler then recovers the resource."""
    return ["crm_resource", "--fail", f"--resource={resource}", f"--node={node}"]


def failure_detail(stdout: str, stderr: str) -> str:
    """The one line worth showing from a failed tool: with --output-as=xml the explanation is inside
    <status message=…><errors><error>…</error></errors> on stdout, not on stderr."""
    if stdout.lstrip().startswith("<pacemaker-result"):
        from remotectl.pacemaker import values, xmlsafe
        from remotectl.reports import RemotectlError

        try:
            status = values.result_status(xmlsafe.parse(stdout, "tool output"))
        except RemotectlError:
            status = None
        if status is not None and status.errors:
            return status.errors[-1]
        if status is not None and status.message:
            return status.message
    for line in (stderr or stdout).splitlines():
        if line.strip():
            return line.strip()
    return ""


# --- node lifecycle (remotectl node add|drain|resume|remove) --------------------------------------------------------


def cib_create_glued(scope: str, xml_text: str) -> List[str]:
    """cibadmin --create with the XML glued to its option (it starts with `<`, but a name inside it is hostile)."""
    return ["cibadmin", "--create", f"--scope={scope}", f"--xml-text={xml_text}"]


def cib_delete_glued(xml_text: str) -> List[str]:
    return ["cibadmin", "--delete", f"--xml-text={xml_text}"]


def resource_meta_set(resource: str, name: str, value: str) -> List[str]:
    return ["crm_resource", f"--resource={resource}", "--meta", f"--set-parameter={name}",
            f"--parameter-value={value}"]


def resource_meta_get(resource: str, name: str) -> List[str]:
    return ["crm_resource", f"--resource={resource}", "--meta", f"--get-parameter={name}"]


def resource_meta_delete(resource: str, name: str) -> List[str]:
    return ["crm_resource", f"--resource={resource}", "--meta", f"--delete-parameter={name}"]


def resource_cleanup(resource: str, node: Optional[str] = None) -> List[str]:
    """Forget the resource's failures and operation history (on ``node`` only, when given)."""
    argv = ["crm_resource", "--cleanup", f"--resource={resource}"]
    return argv + [f"--node={node}"] if node else argv


def node_forget(node: str) -> List[str]:
    """Remove a node from the CIB's nodes and status sections and from the cluster's caches."""
    return ["crm_node", "--force", f"--remove={node}"]


# --- a key file's owner and mode (doctor --fix; the same owner and mode authkey push gives a key) --------------------


def file_owner(owner: str, path: str) -> List[str]:
    return ["chown", owner, "--", path]


def file_mode(mode: int, path: str) -> List[str]:
    return ["chmod", f"{mode:04o}", "--", path]
