"""Imports point down only: cli -> actions -> {pacemaker, transport} -> reports; heavy libraries stay lazy."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "remotectl"

ALLOWED = {
    "cli": {"cli", "actions", "pacemaker", "transport", "output", "reports", "jsonable", "display", "__init__"},
    "actions": {"actions", "pacemaker", "transport", "reports", "jsonable", "display"},
    "pacemaker": {"pacemaker", "reports", "jsonable", "display"},
    "transport": {"transport", "pacemaker", "reports", "jsonable", "display"},
    "output": {"reports", "jsonable", "display"},
    "reports": {"jsonable"},
    "jsonable": set(),
    "display": set(),
}
HEAVY = {"paramiko", "cryptography", "rich"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    layer = _layer(path)
    if layer not in ALLOWED:
        return
    for node, module in _imports(path):
        if not module.startswith("remotectl."):
            continue
        target = module.split(".")[1]
        assert target in ALLOWED[layer] | {layer}, f"{path.name}:{node.lineno} {layer} must not import {module}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_heavy_libraries_are_imported_lazily(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:  # module level only; imports inside functions are the lazy ones
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in HEAVY, f"{path.name}:{node.lineno} imports {name} at module level"
