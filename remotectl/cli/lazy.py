"""The root group loads each top-level command's module only when that command is used.

`remotectl COMMAND ...` imports COMMAND's module alone; `remotectl --help` and completing a command name import
none: their one-line help comes from ``remotectl/cli/_command_index.py``, which ``scripts/gen_docs.py``
generates from the full click tree (a drift test keeps it current). A command missing from the index, or one
registered eagerly, is simply imported, so the index only ever affects speed, never behaviour.
"""

from __future__ import annotations

from gettext import gettext as _
from importlib import import_module
from typing import Dict, List, Optional

import click


class LazyGroup(click.Group):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: Dict[str, str] = {}

    def add_lazy_command(self, name: str, target: str) -> None:
        """Register ``name`` as ``"package.module:attribute"``, imported on first use."""
        if ":" not in target:
            raise ValueError(f"lazy command {name!r}: {target!r} is not 'module:attribute'")
        self.lazy_commands[name] = target

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            if command.name != cmd_name:
                raise ValueError(f"{self.lazy_commands[cmd_name]} is named {command.name!r}, not {cmd_name!r}")
            self.add_command(command, cmd_name)
        return command

    def summary(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        """The command if it is loaded, else a stand-in that has its help text (from the index) and nothing else."""
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return self.get_command(ctx, cmd_name)
        try:
            from remotectl.cli._command_index import COMMANDS
        except ImportError:  # not generated yet
            COMMANDS = {}
        entry = COMMANDS.get(cmd_name)
        if entry is None or entry.get("target") != self.lazy_commands[cmd_name]:
            return self.get_command(ctx, cmd_name)
        return click.Command(
            cmd_name,
            help=entry.get("help"),
            short_help=entry.get("short_help"),
            hidden=bool(entry.get("hidden")),
            deprecated=entry.get("deprecated") or False,
        )

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with stand-ins for commands not loaded yet."""
        commands = []
        for name in self.list_commands(ctx):
            command = self.summary(ctx, name)
            if command is not None and not command.hidden:
                commands.append((name, command))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """Command names with their one-line help (stand-ins: no import), then the group's own options."""
        from click.shell_completion import CompletionItem

        results = []
        for name in self.list_commands(ctx):
            if not name.startswith(incomplete):
                continue
            command = self.summary(ctx, name)
            if command is not None and not command.hidden:
                results.append(CompletionItem(name, help=command.get_short_help_str()))
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results
