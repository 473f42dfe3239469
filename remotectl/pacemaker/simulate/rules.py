"""Attribute sets (lib/pengine/rules.c): ``pe__unpack_dataset_nvpairs`` without rule evaluation (a block with a
``<rule>`` is skipped, a documented divergence)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Dict, Optional, Tuple

from remotectl.pacemaker import values
from remotectl.pacemaker.simulate.working_set import WorkingSet


def unpack_dataset_nvpairs(ws: WorkingSet, parent: Optional[ElementTree.Element], set_tag: str, into: Dict[str, str],
                 overwrite: bool = False, first_id: Optional[str] = None) -> None:
    """``pe__unpack_dataset_nvpairs``: blocks by score (``first_id`` first), rule-guarded blocks skipped."""
    if parent is None:
        return
    pairs = []
    for child in parent:
        if child.tag != set_tag:
            continue
        block = ws.expand_idref(child)
        if block is None:
            continue
        pairs.append(block)
    if not pairs:
        return
    pairs.reverse()  # Pacemaker prepends, then stable-sorts

    def sort_key(block: ElementTree.Element) -> Tuple[int, int]:
        special = 0 if (first_id is not None and (block.get("id") or "").lower() == first_id.lower()) else 1
        return (special, -values.char2score(block.get("score")))

    pairs.sort(key=sort_key)
    for block in pairs:
        if block.find("rule") is not None:
            continue  # documented divergence: rules are not evaluated
        items = block
        first = next(iter(block), None)
        if first is not None and first.tag == "attributes":
            items = first
        for nvpair in items:
            if nvpair.tag != "nvpair":
                continue
            name = nvpair.get("name")
            value = nvpair.get("value")
            if name is None or value is None:
                ref = ws.expand_idref(nvpair) if nvpair.get("id-ref") is not None else None
                if ref is not None:
                    name = name if name is not None else ref.get("name")
                    value = value if value is not None else ref.get("value")
            if name is None or value is None:
                continue
            if value.lower() == "#default":
                into.pop(name, None)
            elif name not in into or overwrite:
                into[name] = value
