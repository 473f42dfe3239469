"""Options shared by several commands (one definition each, so they read the same everywhere)."""

from __future__ import annotations

import click

from remotectl.cli.completion import complete_node_names

DEFAULT_WAIT = 120.0


class WaitSeconds(click.ParamType):
    """The optional value of --wait[=SECONDS]: a clear message when a node name was taken for it."""

    name = "seconds"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(
                f"{value!r} is not a number of seconds (write --wait=SECONDS, or put --wait after the node names)",
                param,
                ctx,
            )
        if seconds < 0 or seconds != seconds:
            self.fail("--wait takes a number of seconds >= 0", param, ctx)
        return seconds


def wait_option(what: str, *, cib_note: bool = True):
    return click.option(
        "--wait",
        "wait",
        type=WaitSeconds(),
        is_flag=False,
        flag_value=DEFAULT_WAIT,
        default=None,
        metavar="[=SECONDS]",
        help=f"Wait until crm_mon shows {what} (default {DEFAULT_WAIT:g} s; --wait=SECONDS to choose)."
        + (" Ignored on a CIB file." if cib_note else ""),
    )


lifetime_option = click.option(
    "--lifetime",
    type=click.Choice(["forever", "reboot"]),
    default="forever",
    show_default=True,
    help="forever: permanent (CIB nodes section); reboot: transient, cleared when the node leaves the cluster.",
)

nodes_argument = click.argument(
    "nodes", nargs=-1, required=True, metavar="NODE...", shell_complete=complete_node_names
)
