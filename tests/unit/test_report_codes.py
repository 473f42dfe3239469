"""Every report gets a stable kebab-case ``code`` (scripts match codes, not wording). Checked on the source, so a
new report without a code fails here before any test has to trigger it. Modules are listed as they adopt codes."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "remotectl"
MODULES = sorted([*PACKAGE.glob("actions/authkey/*.py"), PACKAGE / "actions" / "targets.py",
                  PACKAGE / "actions" / "check.py"])
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _report_calls(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("warning", "error", "info") \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "reporter":
            yield node


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_report_has_a_kebab_case_code(path):
    for call in _report_calls(path):
        codes = [k.value for k in call.keywords if k.arg == "code"]
        assert codes, f"{path.name}:{call.lineno}: reporter.{call.func.attr}() without code="
        assert isinstance(codes[0], ast.Constant) and KEBAB.match(codes[0].value), \
            f"{path.name}:{call.lineno}: code must be a kebab-case string literal"
