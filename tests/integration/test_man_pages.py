"""The generated man pages render cleanly with the real man/groff, and remotectl(1) shows every command."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from remotectl.cli import cli
from tests.integration.conftest import require

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "man").glob("*.1"))


def _man(page: Path, *extra: str) -> subprocess.CompletedProcess:
    require(shutil.which("man") is not None and shutil.which("groff") is not None,
            "man/groff not installed (apt-get install man-db groff-base)")
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    return subprocess.run(["man", *extra, "-l", str(page)], capture_output=True, text=True, env=env, timeout=60)


def test_there_are_pages():
    assert ROOT / "man" / "remotectl.1" in PAGES and len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_renders_without_warnings(page):
    result = _man(page, "--warnings=w")  # every groff warning category
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        assert re.search(rf"^{section}$", result.stdout, re.M), f"{page.name}: no {section} section"


def test_main_page_shows_every_command():
    text = _man(ROOT / "man" / "remotectl.1").stdout
    flat = " ".join(text.split())  # undo line filling (the pages turn hyphenation off)

    def paths(command, ctx, prefix):
        for name in command.list_commands(ctx) if isinstance(command, click.Group) else []:
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield prefix + (name,)
                yield from paths(sub, click.Context(sub, info_name=name, parent=ctx), prefix + (name,))

    every = list(paths(cli, click.Context(cli, info_name="remotectl"), ()))
    assert every
    for path in every:
        assert "remotectl " + " ".join(path) in flat, path
    for variable in ("REMOTECTL_CLUSTER", "REMOTECTL_CIB", "NO_COLOR"):
        assert variable in flat
