#!/usr/bin/env python3
"""Regenerate completions/ and man/ from the live click tree.

    .venv/bin/python scripts/gen_docs.py           # write the files
    .venv/bin/python scripts/gen_docs.py --check   # exit 1 and name the files that differ (the drift test)

completions/: the bash, zsh and fish scripts (`remotectl completion SHELL` prints the same text).
man/: remotectl.1 (global options, every command, ENVIRONMENT, EXIT STATUS, FILES) and remotectl-COMMAND.1 for
each top-level command (a group's page covers all its subcommands). Our own small roff writer: no click-man.
The pages carry no date, so regenerating an unchanged tree gives byte-identical files.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import click  # noqa: E402

from remotectl import __version__  # noqa: E402
from remotectl.actions import completion_cache  # noqa: E402
from remotectl.cli import cli  # noqa: E402
from remotectl.cli import completion  # noqa: E402
from remotectl.reports import ExitCode  # noqa: E402

PROG = "remotectl"
COMPLETION_FILES = {"bash": "completions/remotectl.bash", "zsh": "completions/_remotectl", "fish": "completions/remotectl.fish"}
INDEX_FILE = "remotectl/cli/_command_index.py"
GENERATED = (("completions", "*remotectl*"), ("man", "remotectl*.1"))  # what the generator owns

EXIT_STATUS = {
    ExitCode.OK: "Everything asked for holds, or was done.",
    ExitCode.FAILURE: "Failed: nothing could be done, or an expected error such as no cluster to talk to or a bad "
    "CIB (one line on stderr, no traceback).",
    ExitCode.USAGE: "Usage error: unknown command or option, bad or missing argument.",
    ExitCode.PARTIAL: "Partial: some nodes or targets failed, the others were done.",
    ExitCode.REFUSED: "Refused as unsafe or unconfirmed: needs \\fB\\-\\-force\\fR or \\fB\\-\\-yes\\fR.",
    ExitCode.INTERRUPTED: "Interrupted (Ctrl-C).",
}

EXTRA_ENVIRONMENT = (
    ("NO_COLOR", "When set (to any value), no colour, as with \\fB\\-\\-no\\-color\\fR. Colour and progress bars are "
     "also off when the output is not a terminal."),
    ("REMOTECTL_COMPLETION_TIMEOUT", "Seconds a shell completion request (TAB) waits for the cluster when it "
     f"completes node names or resource ids: default {completion_cache.DEFAULT_WAIT:g}, at most "
     f"{completion_cache.MAX_WAIT:g}. Then the cached values, or none, are offered, and the cache is refreshed "
     "in the background."),
    ("XDG_CACHE_HOME", "The completion cache is kept in \\fI$XDG_CACHE_HOME/remotectl/\\fR "
     "(default \\fI~/.cache/remotectl/\\fR)."),
)


# -- roff -----------------------------------------------------------------------------------------------------
def esc(text: str) -> str:
    """Escape running text for roff: backslashes, minus signs (so options copy-paste), non-ASCII characters."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ch == "\t":
            out.append(" ")
        elif ord(ch) > 126:
            out.append(f"\\[u{ord(ch):04X}]")
        elif ord(ch) < 32:
            continue
        else:
            out.append(ch)
    return "".join(out)


def text_line(text: str) -> str:
    """One input line of running text: a leading '.' or "'" would start a request, and leading spaces break."""
    line = esc(text.strip())
    return "\\&" + line if line.startswith((".", "'")) else line


def quoted(text: str) -> str:
    """A macro argument in double quotes."""
    return '"' + esc(text).replace('"', "\\(dq") + '"'


def bold(text: str) -> str:
    return f"\\fB{esc(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{esc(text)}\\fR"


def paragraphs(help_text: Optional[str]) -> List[str]:
    """Roff lines for a click help text: paragraphs refilled, ``\\b`` paragraphs kept verbatim (as click does)."""
    if not help_text:
        return []
    text = inspect.cleandoc(help_text).partition("\f")[0]
    lines: List[str] = []
    for block in text.split("\n\n"):
        raw = block.split("\n")
        if not any(part.strip() for part in raw):
            continue
        lines.append(".PP")
        if raw[0].strip() == "\b":
            lines.append(".nf")
            for part in raw[1:]:
                escaped = esc(part.rstrip())
                lines.append("\\&" + escaped if escaped else "\\&")
            lines.append(".fi")
        else:
            lines.append(text_line(" ".join(part.strip() for part in raw)))
    return lines


def option_term(record: str) -> str:
    """'-o, --output PATH' -> bold option names, italic metavars."""
    pieces = []
    for alias in record.split(", "):
        words = alias.split(" ")
        rendered = [bold(words[0]) if words[0].startswith("-") else italic(words[0])]
        rendered += [italic(word) for word in words[1:]]
        pieces.append(" ".join(rendered))
    return ", ".join(pieces)


# -- the click tree -------------------------------------------------------------------------------------------
def _context(command: click.Command, name: str, parent: Optional[click.Context]) -> click.Context:
    """A context as click makes it for a real run: with the command's context_settings (e.g. -h for help)."""
    return click.Context(command, info_name=name, parent=parent, **(command.context_settings or {}))


def root_context() -> click.Context:
    return _context(cli, PROG, None)


def visible_commands(group: click.Command, ctx: click.Context) -> List[Tuple[str, click.Command]]:
    if not isinstance(group, click.Group):
        return []
    result = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            result.append((name, command))
    return result


def walk(command: click.Command, ctx: click.Context, path: Tuple[str, ...]):
    """(path, command, ctx) for ``command`` and every visible subcommand below it, depth first."""
    yield path, command, ctx
    for name, sub in visible_commands(command, ctx):
        yield from walk(sub, _context(sub, name, ctx), path + (name,))


def option_items(command: click.Command, ctx: click.Context, *, skip_help: bool) -> List[str]:
    lines = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if skip_help and param is command.get_help_option(ctx):
            continue
        record = param.get_help_record(ctx)
        if not record:
            continue
        term, help_text = record
        if isinstance(param, click.Argument) and not help_text:
            continue  # named in the synopsis; nothing more to say
        lines += [".TP", option_term(term), text_line(help_text) if help_text else "\\&"]
    return lines


def synopsis(path: Sequence[str], command: click.Command, ctx: click.Context) -> List[str]:
    lines = [f".B {esc(PROG)}"]
    if path:
        lines.append(f"[{italic('GLOBAL OPTIONS')}]")
        lines.append(".B " + esc(" ".join(path)))
    for piece in command.collect_usage_pieces(ctx):
        lines.append(text_line(piece))
    return lines


def env_vars(root: click.Command, root_ctx: click.Context) -> List[Tuple[str, str]]:
    found: Dict[str, str] = {}
    for path, command, ctx in walk(root, root_ctx, ()):
        for param in command.get_params(ctx):
            if not isinstance(param, click.Option) or not param.envvar or param.hidden:
                continue
            names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)
            option = max(param.opts, key=len)
            where = f" of {bold(' '.join((PROG,) + path))}" if path else ""
            for name in names:
                found.setdefault(name, f"Default for {bold(option)}{where}.")
    return sorted(found.items())


def environment_section(root: click.Command, root_ctx: click.Context) -> List[str]:
    lines = [".SH ENVIRONMENT"]
    for name, text in env_vars(root, root_ctx):
        lines += [".TP", bold(name), text]
    for name, text in EXTRA_ENVIRONMENT:
        lines += [".TP", bold(name), text]
    return lines


def exit_status_section() -> List[str]:
    missing = [code.name for code in ExitCode if code not in EXIT_STATUS]
    if missing:
        raise SystemExit(f"gen_docs.py: no EXIT STATUS text for ExitCode {', '.join(missing)}")
    lines = [".SH \"EXIT STATUS\""]
    for code in ExitCode:
        lines += [".TP", f"\\fB{int(code)}\\fR", EXIT_STATUS[code]]
    return lines


def page_name(path: Sequence[str]) -> str:
    return "-".join((PROG,) + tuple(path))


def header(title: str, short: str) -> List[str]:
    return [
        f".\\\" Generated by scripts/gen_docs.py from the click tree of {PROG} {__version__}; do not edit.",
        f".TH {esc(title.upper())} 1 \"\" {quoted(PROG + ' ' + __version__)} \"User Commands\"",
        ".nh",  # no hyphenation: option names, paths and variables must stay whole to be copied
        ".ad l",  # left-aligned: no stretched gaps around long option names
        ".SH NAME",
        f"{esc(title)} \\- {esc(short)}",
    ]


def short_help(command: click.Command) -> str:
    """For NAME: the first sentence, or when that is long, what precedes its first colon or parenthesis."""
    text = command.get_short_help_str(limit=200).rstrip(".")
    if len(text) > 80:
        cuts = [text.find(mark) for mark in (": ", " (") if text.find(mark) > 0]
        if cuts:
            text = text[: min(cuts)]
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def main_page(root_ctx: click.Context) -> str:
    lines = header(PROG, short_help(cli))
    lines += [".SH SYNOPSIS", f".B {PROG}", f"[{italic('GLOBAL OPTIONS')}]", italic("COMMAND"), f"[{italic('ARGS')}]..."]
    lines += [".SH DESCRIPTION"] + paragraphs(cli.help)
    lines += [".SH \"GLOBAL OPTIONS\"", ".PP", "Given before the command; most can also be set in the environment."]
    lines += option_items(cli, root_ctx, skip_help=False)
    lines += [".SH COMMANDS"]
    pages = []
    for path, command, ctx in walk(cli, root_ctx, ()):
        if not path:
            continue
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += [".TP", bold(" ".join((PROG,) + path)) + (" " + italic(usage) if usage else "")]
        lines.append(text_line(command.get_short_help_str(limit=300)))
        if len(path) == 1:
            pages.append(page_name(path))
            lines.append(f"See \\fB{esc(page_name(path))}\\fR(1).")
    lines += environment_section(cli, root_ctx)
    lines += exit_status_section()
    lines += files_section()
    lines += [".SH \"SEE ALSO\"", see_also(pages + ["crm_mon(8)", "cibadmin(8)", "crm_attribute(8)",
                                                    "stonith_admin(8)", "pacemaker_remoted(8)"])]
    return "\n".join(lines) + "\n"


def files_section() -> List[str]:
    return [
        ".SH FILES",
        ".TP",
        italic("~/.ssh/config") + ", " + italic("~/.ssh/known_hosts"),
        "The SSH client configuration and host keys used to reach cluster nodes "
        "(see \\fB\\-\\-ssh\\-config\\fR and \\fB\\-\\-known\\-hosts\\fR).",
        ".TP",
        italic("~/.cache/remotectl/"),
        f"Shell completion cache: node names and resource ids per cluster, kept "
        f"{completion_cache.TTL:g} seconds, mode 0600.",
    ]


def see_also(refs: Iterable[str]) -> str:
    rendered = []
    for ref in refs:
        name, _, section = ref.partition("(")
        rendered.append(f"\\fB{esc(name)}\\fR(" + (section or "1)"))
    return ",\n".join(rendered)


def command_page(path: Tuple[str, ...], command: click.Command, ctx: click.Context) -> str:
    title = page_name(path)
    lines = header(title, short_help(command))
    lines.append(".SH SYNOPSIS")
    runnable = [
        (p, c, x)
        for p, c, x in walk(command, ctx, path)
        if not isinstance(c, click.Group) or c.invoke_without_command or not c.commands
    ]
    for index, (sub_path, sub, sub_ctx) in enumerate(runnable):
        if index:
            lines.append(".br")
        lines += synopsis(sub_path, sub, sub_ctx)
    lines += [".SH DESCRIPTION"] + paragraphs(command.help)
    options = option_items(command, ctx, skip_help=True)
    if options:
        lines += [".SH OPTIONS"] + options
    subcommands = [(p, c, x) for p, c, x in walk(command, ctx, path) if p != path]
    if subcommands:
        lines.append(".SH COMMANDS")
        for sub_path, sub, sub_ctx in subcommands:
            usage = " ".join(sub.collect_usage_pieces(sub_ctx))
            lines.append(".SS " + quoted(" ".join((PROG,) + sub_path) + (" " + usage if usage else "")))
            lines += paragraphs(sub.help)
            lines += option_items(sub, sub_ctx, skip_help=True)
    lines.append(".SH ENVIRONMENT")
    lines.append(".PP")
    lines.append("The global options can be set in the environment (\\fBREMOTECTL_CLUSTER\\fR, \\fBREMOTECTL_CIB\\fR, "
                 "\\fBREMOTECTL_SSH_CONFIG\\fR, ...): see \\fBremotectl\\fR(1).")
    own = [(name, text) for name, text in env_vars(command, ctx) if " of " in text]
    for name, text in own:
        lines += [".TP", bold(name), text]
    lines += exit_status_section()
    lines += [".SH \"SEE ALSO\"", see_also(["remotectl(1)"])]
    return "\n".join(lines) + "\n"


def command_index(root_ctx: click.Context) -> str:
    """remotectl/cli/_command_index.py: what `remotectl --help` and command-name completion show for each
    lazily registered command, so that they need not import the command modules."""
    lines = [
        '"""Generated by scripts/gen_docs.py from the click tree; do not edit. Used by remotectl/cli/lazy.py."""',
        "",
        "COMMANDS = {",
    ]
    for name, target in sorted(cli.lazy_commands.items()):
        command = cli.get_command(root_ctx, name)
        # click's one-line help only ever reads the first paragraph. cleandoc: Python 3.13 dedents docstrings
        # itself, older ones do not; the index must not depend on the interpreter that generated it.
        help_text = inspect.cleandoc(command.help) if command.help else command.help
        if help_text and "\n\n" in help_text:
            help_text = help_text[: help_text.find("\n\n")]
        lines.append(f"    {name!r}: {{")
        lines.append(f"        'target': {target!r},")
        lines.append(f"        'help': {help_text!r},")
        lines.append(f"        'short_help': {command.short_help!r},")
        lines.append(f"        'hidden': {bool(command.hidden)!r},")
        lines.append(f"        'deprecated': {command.deprecated!r},")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate() -> Dict[str, str]:
    """Every generated file: relative path -> content."""
    root_ctx = root_context()
    files = {path: completion.script(shell) for shell, path in COMPLETION_FILES.items()}
    files[INDEX_FILE] = command_index(root_ctx)
    files["man/remotectl.1"] = main_page(root_ctx)
    for name, command in visible_commands(cli, root_ctx):
        files[f"man/{page_name((name,))}.1"] = command_page((name,), command, _context(command, name, root_ctx))
    return files


def stale_files(files: Dict[str, str]) -> List[str]:
    """Files in completions/ and man/ that the generator no longer produces (a renamed or removed command)."""
    existing = []
    for directory, pattern in GENERATED:
        existing += [f"{directory}/{p.name}" for p in (ROOT / directory).glob(pattern) if p.is_file()]
    return sorted(set(existing) - set(files))


def drift(files: Optional[Dict[str, str]] = None) -> List[str]:
    """Paths whose committed content differs from what the generator produces now (missing and stale too)."""
    files = generate() if files is None else files
    changed = []
    for path, content in sorted(files.items()):
        target = ROOT / path
        if not target.is_file() or target.read_text(encoding="utf-8") != content:
            changed.append(path)
    return changed + stale_files(files)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate completions/ and man/ from the click tree.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        changed = drift(files)
        for path in changed:
            print(f"out of date: {path}", file=sys.stderr)
        if changed:
            print("run: .venv/bin/python scripts/gen_docs.py", file=sys.stderr)
        return 1 if changed else 0
    for path, content in sorted(files.items()):
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
            print(f"wrote {path}")
    for path in stale_files(files):
        (ROOT / path).unlink()
        print(f"removed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
