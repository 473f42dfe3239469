"""The committed completions/, man/ and remotectl/cli/_command_index.py are exactly what scripts/gen_docs.py
generates from the click tree now. When this fails: `.venv/bin/python scripts/gen_docs.py` and commit."""

import importlib.util
import re
from pathlib import Path

import click
import pytest

from remotectl.cli import cli, commands
from remotectl.cli.completion import script
from remotectl.reports import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_docs = _load_generator()


@pytest.fixture(scope="module")
def generated():
    return gen_docs.generate()


def _all_paths():
    """Every visible command path of the full tree, e.g. ('authkey', 'push')."""
    root_ctx = gen_docs.root_context()
    return [path for path, _, _ in gen_docs.walk(cli, root_ctx, ()) if path]


def test_committed_files_match_the_generator(generated):
    drifted = gen_docs.drift(generated)
    assert not drifted, (
        f"out of date: {', '.join(drifted)}; run `.venv/bin/python scripts/gen_docs.py` and commit the result"
    )


def test_generation_is_deterministic(generated):
    assert gen_docs.generate() == generated


def test_completion_files_are_what_the_completion_command_prints(generated):
    for shell, path in gen_docs.COMPLETION_FILES.items():
        assert generated[path] == script(shell)
        assert "_REMOTECTL_COMPLETE=" + shell + "_complete" in generated[path]
    assert generated["completions/_remotectl"].startswith("#compdef remotectl\n")


def test_a_page_for_every_top_level_command_and_the_main_page_names_every_command(generated):
    root_ctx = gen_docs.root_context()
    top = [name for name, _ in gen_docs.visible_commands(cli, root_ctx)]
    assert top, "no commands registered"
    pages = sorted(path for path in generated if path.startswith("man/"))
    assert pages == sorted(["man/remotectl.1"] + [f"man/remotectl-{name}.1" for name in top])
    main_page = generated["man/remotectl.1"]
    for path in _all_paths():
        assert "\\fB" + gen_docs.esc("remotectl " + " ".join(path)) + "\\fR" in main_page, path
    for name in top:
        assert f"\\fBremotectl\\-{gen_docs.esc(name)}\\fR(1)" in main_page


def test_every_subcommand_and_option_is_in_its_page(generated):
    root_ctx = gen_docs.root_context()
    for path, command, ctx in gen_docs.walk(cli, root_ctx, ()):
        if not path:
            continue
        page = generated[f"man/remotectl-{path[0]}.1"]
        if len(path) > 1:
            assert gen_docs.esc("remotectl " + " ".join(path)) in page, path
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden and param is not command.get_help_option(ctx):
                assert "\\fB" + gen_docs.esc(param.opts[0]) + "\\fR" in page, (path, param.opts)


def test_exit_status_and_environment_sections(generated):
    for path, page in generated.items():
        if not path.startswith("man/"):
            continue
        assert '.SH "EXIT STATUS"' in page and ".SH ENVIRONMENT" in page, path
        exit_section = page.split('.SH "EXIT STATUS"', 1)[1].split(".SH", 1)[0]
        assert [int(code) for code in ExitCode] == [int(n) for n in re.findall(r"\\fB(\d+)\\fR", exit_section)]
    main_page = generated["man/remotectl.1"]
    environment = main_page.split(".SH ENVIRONMENT", 1)[1].split(".SH", 1)[0]
    for param in cli.params:
        if isinstance(param, click.Option) and param.envvar:
            assert "\\fB" + gen_docs.esc(param.envvar) + "\\fR" in environment, param.envvar
    for name in ("NO_COLOR", "REMOTECTL_COMPLETION_TIMEOUT"):
        assert "\\fB" + gen_docs.esc(name) + "\\fR" in environment


def test_every_exit_code_has_a_description():
    assert set(gen_docs.EXIT_STATUS) == set(ExitCode)


def test_roff_escaping():
    assert gen_docs.esc("a-b\\c") == "a\\-b\\ec"
    assert gen_docs.esc("é→") == "\\[u00E9]\\[u2192]"
    assert gen_docs.text_line(".starts with a dot") == "\\&.starts with a dot"
    assert gen_docs.text_line("'quote") == "\\&'quote"
    assert gen_docs.paragraphs("One\ntwo.\n\n\b\n  kept  as is\n\nThree.\f hidden") == [
        ".PP", "One two.", ".PP", ".nf", "\\&  kept  as is", ".fi", ".PP", "Three.",
    ]


def test_no_roff_requests_hide_in_generated_text(generated):
    """Every line is a known request, a comment, or text that cannot be taken for a request."""
    allowed = {".TH", ".SH", ".SS", ".TP", ".PP", ".B", ".nf", ".fi", ".br", ".nh", ".ad", '.\\"'}
    for path, page in generated.items():
        if not path.startswith("man/"):
            continue
        for line in page.splitlines():
            assert line.strip(), f"{path}: blank line (groff would insert a blank line there)"
            if line.startswith((".", "'")):
                assert line.split(" ", 1)[0] in allowed, f"{path}: {line!r}"


def test_lazy_registry_matches_the_commands():
    root_ctx = gen_docs.root_context()
    assert commands.LAZY, "no lazily registered commands"
    for name, target in commands.LAZY.items():
        command = cli.get_command(root_ctx, name)
        assert isinstance(command, click.Command) and command.name == name, target


def test_top_level_help_from_the_index_is_what_the_loaded_commands_give():
    """`remotectl --help` and command-name completion use the generated index instead of importing every
    command module: they must show exactly what the real commands would."""
    from remotectl.cli.lazy import LazyGroup

    fresh = LazyGroup("remotectl", params=cli.params, help=cli.help, epilog=cli.epilog,
                      context_settings=cli.context_settings)
    for name, target in commands.LAZY.items():
        fresh.add_lazy_command(name, target)
    with click.Context(fresh, info_name="remotectl") as ctx:
        for name in commands.LAZY:
            stand_in = fresh.summary(ctx, name)
            assert name not in fresh.commands, f"{name}: not in the index, so --help imports its module"
            real = cli.get_command(ctx, name)
            for limit in (45, 60, 94):
                assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit), name
            assert stand_in.hidden == real.hidden
        lazy_help = fresh.get_help(ctx)
    for name in commands.LAZY:
        fresh.get_command(click.Context(fresh), name)
    with click.Context(fresh, info_name="remotectl") as ctx:
        assert fresh.get_help(ctx) == lazy_help


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_the_committed_script(shell):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert result.output == (ROOT / gen_docs.COMPLETION_FILES[shell]).read_text()


def test_completion_command_refuses_other_shells():
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["completion", "powershell"])
    assert result.exit_code == 2
