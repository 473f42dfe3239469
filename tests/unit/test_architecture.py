"""Architecture rules as tests (in the style of test_layers.py): one home for each Pacemaker fact."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "remotectl"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 1000


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _strings(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_over_1000_lines(path):
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines; split it along what it models"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_only_status_reads_crm_mon(path):
    """crm_mon's XML is read in pacemaker/status.py alone: its node attributes appear nowhere else, not even in
    prose, and nothing else parses a document as 'crm_mon output'."""
    if _rel(path) == "pacemaker/status.py":
        return
    for node in _strings(path):
        assert "id_as_resource" not in node.value, f"{_rel(path)}:{node.lineno} reads crm_mon node attributes"
        assert node.value != "crm_mon output", f"{_rel(path)}:{node.lineno} parses crm_mon itself"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_only_values_parses_pacemaker_booleans(path):
    """No module but pacemaker/values.py compares a value with "true"/"false" or keeps a set of boolean words."""
    if _rel(path) == "pacemaker/values.py":
        return
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            assert not {"true", "false"} & set(constants), f"{_rel(path)}:{node.lineno} parses a boolean"
            for comparator in node.comparators:
                if isinstance(comparator, (ast.Tuple, ast.Set, ast.List)):
                    words = {e.value for e in comparator.elts if isinstance(e, ast.Constant)}
                    assert "true" not in words, f"{_rel(path)}:{node.lineno} parses a boolean"
        if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
            words = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            assert not ({"true", "yes", "on"} <= words), f"{_rel(path)}:{node.lineno} keeps boolean words"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_only_values_reads_the_pacemaker_result_status(path):
    """<pacemaker-result><status code message><errors> is read by values.result_status alone."""
    if _rel(path) == "pacemaker/values.py":
        return
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("find", "iter", "findall"):
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            assert "error" not in args, f"{_rel(path)}:{node.lineno} reads <errors> itself"
            if "status" in args:
                assert _rel(path).startswith("pacemaker/simulate") or _rel(path) == "pacemaker/nodes.py", \
                    f"{_rel(path)}:{node.lineno} reads <status> itself"
