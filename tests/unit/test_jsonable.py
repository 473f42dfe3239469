"""The one dataclass -> JSON mapping (remotectl/jsonable.py)."""

import enum
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from remotectl.jsonable import json_field, jsonable
from remotectl.reports import Report, Severity


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Inner:
    name: str
    tags: Tuple[str, ...] = ()


@dataclass
class Outer:
    zeta: int
    alpha: Optional[Inner]
    secret: bytes = json_field(omit=True, default=b"k")
    colour: Colour = Colour.RED
    renamed: int = json_field(name="other", default=1)
    size: int = json_field(convert=lambda v: v * 2, default=2)
    items: List[Inner] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.zeta > 0


def test_fields_in_declaration_order_with_opt_out_rename_and_convert():
    out = jsonable(Outer(3, Inner("a", ("x",)), items=[Inner("b")]), extra=("ok",))
    assert list(out) == ["zeta", "alpha", "colour", "other", "size", "items", "ok"]
    assert out == {"zeta": 3, "alpha": {"name": "a", "tags": ["x"]}, "colour": "red", "other": 1, "size": 4,
                   "items": [{"name": "b", "tags": []}], "ok": True}


def test_reports_carry_their_code():
    report = Report(Severity.WARNING, "stays in standby", "remote1", "standby-overridden")
    assert report.to_json() == {"severity": "warning", "message": "stays in standby", "node": "remote1",
                                "code": "standby-overridden"}
