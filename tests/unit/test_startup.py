"""`remotectl --help`, `remotectl COMMAND --help`, `--version` and completion requests import nothing heavy.

Each case runs in a fresh interpreter and reports ``sys.modules`` after the CLI has answered; no timing is
asserted here (bench/startup.py measures it). Heavy: paramiko, cryptography, rich (and their dependencies), the
XML parsers and Pacemaker models, the transports and actions, importlib.metadata/pkg_resources.
"""

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from remotectl.cli import cli

ROOT = Path(__file__).resolve().parents[2]

HEAVY_PACKAGES = {"paramiko", "cryptography", "rich", "nacl", "bcrypt", "pygments", "xml", "pyexpat",
                  "pkg_resources", "importlib_metadata", "ssl", "concurrent", "asyncio"}
HEAVY_MODULES = {"importlib.metadata", "subprocess", "socket"}
# remotectl's own modules that must not load before a command actually runs.
HEAVY_OWN_PREFIXES = ("remotectl.pacemaker", "remotectl.transport", "remotectl.actions", "remotectl.output")

PROBE = r"""
import json, sys
sys.argv = ["remotectl"] + json.loads(sys.argv[1])
from remotectl.cli import main
try:
    main()
except SystemExit:
    pass
sys.__stderr__.write("\nMODULES:" + json.dumps(sorted(sys.modules)) + "\n")
"""


def _modules_after(args, env_extra=None, tmp_path=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMOTECTL_", "_REMOTECTL", "COMP_"))}
    env.update(NO_COLOR="1", PYTHONPATH=str(ROOT))
    if tmp_path is not None:
        env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                          env=env, timeout=60, cwd=ROOT)
    marker = proc.stderr.rfind("\nMODULES:")
    assert marker >= 0, proc.stderr
    return set(json.loads(proc.stderr[marker + len("\nMODULES:"):])), proc.stdout


def _heavy(modules):
    return sorted(
        m for m in modules
        if m.split(".")[0] in HEAVY_PACKAGES or m in HEAVY_MODULES or m.startswith(HEAVY_OWN_PREFIXES)
    )


def _command_modules(modules):
    """Command modules: everything under remotectl.cli except the root's own machinery."""
    infrastructure = {"remotectl.cli", "remotectl.cli.app", "remotectl.cli.commands", "remotectl.cli.lazy",
                      "remotectl.cli._command_index"}
    return sorted(m for m in modules if m.startswith("remotectl.cli.") and m not in infrastructure)


def _cli_imports_of(module, found=None):
    """The remotectl.cli modules that ``module`` imports at its top level (shared options and the like), and those
    they import in turn (a group that registers a command module which imports the group's options is a cycle)."""
    found = set() if found is None else found
    if not module:
        return found
    path = ROOT / (module.replace(".", "/") + ".py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("remotectl.cli.") \
                and node.module not in found:
            found.add(node.module)
            _cli_imports_of(node.module, found)
    return found


def _top_level_commands():
    return cli.list_commands(click.Context(cli))


def _complete_env(words, shell="bash"):
    return {"_REMOTECTL_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": "-1"}


def test_help_imports_nothing_heavy_and_no_command_module(tmp_path):
    modules, out = _modules_after(["--help"], tmp_path=tmp_path)
    assert "Commands:" in out
    assert _heavy(modules) == []
    assert _command_modules(modules) == [], "register commands in commands.LAZY and regenerate the index"


def test_version_does_not_read_package_metadata(tmp_path):
    modules, out = _modules_after(["--version"], tmp_path=tmp_path)
    assert out.startswith("remotectl ")
    assert _heavy(modules) == []


@pytest.mark.parametrize("command", _top_level_commands())
def test_command_help_imports_nothing_heavy(command, tmp_path):
    modules, out = _modules_after([command, "--help"], tmp_path=tmp_path)
    assert f"remotectl {command}" in out
    assert _heavy(modules) == []
    loaded = _command_modules(modules)
    own = cli.lazy_commands.get(command, "").partition(":")[0]
    assert set(loaded) <= {own} | _cli_imports_of(own), f"{command} --help also imported {loaded}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completing_a_command_name_imports_nothing_heavy(shell, tmp_path):
    env = _complete_env("remotectl s", shell)
    if shell == "zsh":
        env["COMP_CWORD"] = "1"
    if shell == "fish":
        env["COMP_CWORD"] = "s"
    modules, out = _modules_after([], env, tmp_path=tmp_path)
    assert "standby" in out
    assert _heavy(modules) == []
    assert _command_modules(modules) == []


def test_completing_options_and_choices_imports_nothing_heavy(tmp_path):
    modules, out = _modules_after([], _complete_env("remotectl completion ''"), tmp_path=tmp_path)
    assert out.split() == ["plain,bash", "plain,zsh", "plain,fish"]
    assert _heavy(modules) == []
    modules, out = _modules_after([], _complete_env("remotectl --cl"), tmp_path=tmp_path)
    assert out.split() == ["plain,--cluster"]
    assert _heavy(modules) == []


def test_completing_node_names_from_a_warm_cache_imports_no_transport_or_model(tmp_path, monkeypatch):
    """With a fresh cache entry a TAB reads one small JSON file: no SSH, no XML, no cluster client."""
    from remotectl.actions import completion_cache
    from remotectl.transport import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = "root@cluster.example:2222"
    now = time.time()
    assert cache.write_json(completion_cache.cache_file_name(target), {
        "format": completion_cache.FORMAT, "target": target, "nodes": ["alpha", "beta", "bad name"],
        "resources": ["rsc1"], "fetched_at": now, "attempted_at": now,
    })
    modules, out = _modules_after([], _complete_env(f"remotectl --cluster {target} standby ''"), tmp_path=tmp_path)
    assert out.split() == ["plain,alpha", "plain,beta"]
    heavy = [m for m in _heavy(modules)
             if m not in ("remotectl.actions", "remotectl.actions.completion_cache", "remotectl.transport",
                          "remotectl.transport.cache")]
    assert heavy == []
