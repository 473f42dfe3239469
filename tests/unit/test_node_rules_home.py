"""Only pacemaker/inventory.py and the simulator (pacemaker/simulate/) decide what a remote, guest or bundle node is
in a CIB: no other module reads the meta attributes or bundle network settings that make one, or matches the
``ocf:pacemaker:remote`` agent. Everything else (constraints, completion, ...) asks the inventory, so they cannot
disagree with ``remotectl nodes`` again (the CibIndex walk did: a bundle without a network, a connection in a group).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "remotectl"
HOME = {PACKAGE / "pacemaker" / "inventory.py"} | set((PACKAGE / "pacemaker" / "simulate").glob("*.py"))

# the settings that make a node, as Pacemaker spells them (matched case-insensitively, as Pacemaker does)
NODE_SETTINGS = {"remote-node", "remote-addr", "remote-port", "ip-range-start", "control-port", "ocf:pacemaker:remote"}


def _docstrings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def _strings(node: ast.AST):
    return {n.value.lower() for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def violations(source: str):
    """(line, what) for every place ``source`` applies a node rule itself."""
    tree = ast.parse(source)
    docs = {id(d) for d in _docstrings(tree)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value.lower() in NODE_SETTINGS:
                found.append((node.lineno, node.value))
        elif isinstance(node, (ast.Compare, ast.Tuple, ast.BoolOp, ast.Set, ast.List)):
            if {"pacemaker", "remote"} <= _strings(node):  # class/provider/type compared piecewise
                found.append((node.lineno, "ocf:pacemaker:remote"))
    return sorted(set(found))


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if p not in HOME),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_inventory_and_the_simulator_decide_what_a_node_is(path):
    assert violations(path.read_text()) == [], f"{path.relative_to(PACKAGE)}: use remotectl.pacemaker.inventory"


def test_the_rule_catches_the_old_walks():
    old = '''
def walk(primitive, resources):
    if (primitive.get("class"), primitive.get("provider"), primitive.get("type")) == ("ocf", "pacemaker", "remote"):
        pass
    guest = _meta(primitive, "remote-node")
    net = resources.find("network").get("ip-range-start")
'''
    assert [what for _, what in violations(old)] == ["ocf:pacemaker:remote", "remote-node", "ip-range-start"]
    assert violations('"""Docstrings may explain ``remote-node``."""\nx = 1  # so may comments: remote-node\n') == []


def test_the_home_does_decide():
    assert any(violations(p.read_text()) for p in HOME)
