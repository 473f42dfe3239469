"""Every report code remotectl can emit is documented in docs/json.md (the JSON contract scripts match on)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "json.md").read_text()
DOCUMENTED = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)*)`", DOC))


def _codes():
    for path in sorted((ROOT / "remotectl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.keyword) and node.arg == "code":
                yield path.relative_to(ROOT), node.lineno, node.value


def test_every_literal_code_is_documented():
    missing = [f"{p}:{line} {v.value}" for p, line, v in _codes()
               if isinstance(v, ast.Constant) and v.value and v.value not in DOCUMENTED]
    assert missing == []


def test_computed_codes_expand_to_documented_ones():
    patterns = {ast.unparse(v) for _, _, v in _codes() if isinstance(v, ast.JoinedStr)}
    expansions = {
        "f'connection-in-{misuse.where}'": [f"connection-in-{w}" for w in ("group", "order", "colocation")],
        "f'{attribute}-overridden'": [f"{a}-overridden" for a in ("standby", "maintenance")],
    }
    assert patterns <= set(expansions), f"a new computed code: list its values here and in docs/json.md: {patterns}"
    for pattern in patterns:
        assert set(expansions[pattern]) <= DOCUMENTED, pattern


def test_no_report_without_a_code():
    """Reporter.warning/error/info calls always pass code=."""
    bare = []
    for path in sorted((ROOT / "remotectl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("warning", "error", "info")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "reporter"
                    and not any(k.arg == "code" for k in node.keywords)):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []
