"""Asking before a change (node add/remove, doctor --fix): a yes on the terminal, or --yes."""

from __future__ import annotations

import sys

import click


def need_someone_to_ask(json_mode: bool, what: str) -> None:
    """Without --yes a change needs a yes on the terminal; with --json or no terminal nobody can say it."""
    from remotectl.reports import RefusedError

    if json_mode:
        raise RefusedError(f"{what}: add --yes to confirm (--json never asks)")
    if not sys.stdin.isatty():
        raise RefusedError(f"{what}: add --yes to confirm (no terminal to ask on)")


def ask(what: str, question: str) -> None:
    """A yes on the terminal, asked on stderr so that stdout stays the command's output."""
    from remotectl.reports import RefusedError

    if not click.confirm(question, default=False, err=True):
        raise RefusedError(f"{what}: not confirmed, nothing was changed")
