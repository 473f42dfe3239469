"""Which Pacemaker's rules the model follows, and the CIB schema upgrade crm_mon does in memory before unpacking.

The version rule: the caller may name the Pacemaker version to follow (the test of the model does: the crm_mon it
compares with); otherwise it is the CIB's own ``dc-version`` cluster property (the DC that wrote the status), and
without one the newest version the model knows (:data:`NEWEST_KNOWN`). Where 2.1.5 and 3.0.x read a CIB
differently (``fencing-enabled``, ``no-quorum-policy=fence``, the 3.0 upgrade of every pre-4.0 CIB) the model
follows that version.

The upgrade (Pacemaker's ``xml/upgrade-*.xsl``, as far as node states need it):
  * below ``pacemaker-3.0`` (``upgrade-2.10-1.xsl``): ``<node type="normal">`` is a ``member``, and the
    underscore spellings of the cluster options the model reads (``stonith_enabled``, ``startup_fencing``,
    ``stop_orphan_resources``, ``no_quorum_policy``) become the dashed ones;
  * Pacemaker 3.0 and later, below ``pacemaker-4.0`` (``upgrade-3.10-*.xsl``): resources of class ``nagios`` or
    ``upstart`` and ``rkt`` bundles are dropped (ping nodes too, which the model never lists).
Schemas before ``pacemaker-1.0`` (``pacemaker-0.x``, ``transitional-0.6``) and ``pacemaker-1.1`` (never a schema)
are refused: Pacemaker 3.0 rejects them too. ``none``, and no ``validate-with`` at all, are read as they are. A
schema newer than any the model knows (:data:`NEWEST_SCHEMA`, or ``pacemaker-next``) is read as it is, with a
``cib-schema-newer`` report (:func:`schema_reports`).
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ElementTree
from typing import List, Optional, Tuple

from remotectl.pacemaker import values
from remotectl.reports import RemotectlError, Report, Severity

__all__ = ["NEWEST_KNOWN", "NEWEST_SCHEMA", "pacemaker_version", "schema_reports", "upgrade"]

NEWEST_KNOWN = (3, 0, 3)  # the newest Pacemaker whose rules the model follows (and was checked against)
NEWEST_SCHEMA = (4, 0)  # the newest CIB schema that Pacemaker knows (3.0.x ships pacemaker-4.0)
_SCHEMA = re.compile(r"^pacemaker-(\d+)\.(\d+)$")
_UNDERSCORE_OPTIONS = ("stonith_enabled", "startup_fencing", "stop_orphan_resources", "no_quorum_policy")
_DROPPED_CLASSES = ("nagios", "upstart")


def pacemaker_version(root: ElementTree.Element) -> Tuple[int, ...]:
    """The Pacemaker whose rules apply to a CIB not told otherwise: its ``dc-version`` ("2.1.5-a3f44794f94"), else
    :data:`NEWEST_KNOWN`."""
    for nvpair in root.iterfind("configuration/crm_config/cluster_property_set/nvpair"):
        if nvpair.get("name") == "dc-version":
            number = (nvpair.get("value") or "").split("-", 1)[0]
            version = values.version_tuple(number)
            if version:
                return version
    return NEWEST_KNOWN


def _schema(root: ElementTree.Element) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """(validate-with, (major, minor) of a ``pacemaker-X.Y`` one, else None)."""
    text = root.get("validate-with")
    if text is None:
        return None, None
    m = _SCHEMA.match(text.strip())
    return text, ((int(m.group(1)), int(m.group(2))) if m else None)


def _check(root: ElementTree.Element) -> Optional[Tuple[int, int]]:
    """The schema as (major, minor), None where it is read as it is; raises for one too old to read."""
    text, schema = _schema(root)
    if text is None or text.strip().lower() in ("none", "pacemaker-next"):
        return None
    if schema is None or schema < (1, 0) or schema == (1, 1):
        shown = text if len(text) <= 40 and text.isprintable() else repr(text[:40])
        raise RemotectlError(f"CIB schema {shown!r} is older than the offline model reads (pacemaker-1.0 and "
                             f"later): upgrade the CIB with 'cibadmin --upgrade' on its cluster first")
    return schema


def schema_reports(root: ElementTree.Element) -> List[Report]:
    """A warning for a CIB whose ``validate-with`` is newer than any schema the model knows (it is read as it is,
    so what the newer schema changed may be missed)."""
    text, schema = _schema(root)
    if text is None:
        return []
    if (schema is not None and schema > NEWEST_SCHEMA) or text.strip().lower() == "pacemaker-next":
        shown = text if len(text) <= 40 and text.isprintable() else repr(text[:40])
        newest = "pacemaker-%d.%d" % NEWEST_SCHEMA
        return [Report(Severity.WARNING, f"the CIB's schema {shown} is newer than the offline model knows "
                       f"({newest}): node states may differ from what crm_mon shows", code="cib-schema-newer")]
    return []


def upgrade(root: ElementTree.Element, version: Tuple[int, ...]) -> ElementTree.Element:
    """``root`` as Pacemaker ``version`` reads it after its in-memory schema upgrade (a copy when anything
    changes; the caller's tree is never modified). Raises RemotectlError for a schema too old to read."""
    schema = _check(root)
    if schema is None or root.find("configuration") is None:
        return root
    below_3 = schema < (3, 0)
    below_4 = version >= (3,) and schema < (4, 0)
    if not (below_3 and _changes_below_3(root)) and not (below_4 and _removed_resources(root, detach=False)):
        return root  # the common case: nothing to change, no copy of a large CIB
    root = copy.deepcopy(root)
    if below_3:
        for node in root.iterfind("configuration/nodes/node"):
            if node.get("type") == "normal":
                node.set("type", "member")
        for nvpair in root.iterfind("configuration/crm_config/cluster_property_set/nvpair"):
            name = nvpair.get("name")
            if name in _UNDERSCORE_OPTIONS:
                nvpair.set("name", name.replace("_", "-"))
    if below_4:
        _removed_resources(root, detach=True)
    return root


def _changes_below_3(root: ElementTree.Element) -> bool:
    return (any(n.get("type") == "normal" for n in root.iterfind("configuration/nodes/node"))
            or any(p.get("name") in _UNDERSCORE_OPTIONS
                   for p in root.iterfind("configuration/crm_config/cluster_property_set/nvpair")))


def _removed_resources(root: ElementTree.Element, *, detach: bool) -> bool:
    """``upgrade-3.10-4.xsl``: no ``nagios``/``upstart`` resources and no ``rkt`` bundles any more. Whether there
    are any; ``detach`` removes them."""
    found = False
    pending = [r for r in root.iterfind("configuration/resources")]
    while pending:
        parent = pending.pop()
        for child in list(parent):
            if ((child.tag in ("primitive", "template")
                 and (child.get("class") or "").lower() in _DROPPED_CLASSES)
                    or (child.tag == "bundle" and child.find("rkt") is not None)):
                found = True
                if detach:
                    parent.remove(child)
            elif child.tag in ("group", "clone", "master"):
                pending.append(child)
    return found
