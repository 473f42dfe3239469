"""`remotectl standby|unstandby|maintenance NODE...`: node attributes for cluster, remote and guest nodes alike."""

from __future__ import annotations

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.options import lifetime_option, nodes_argument, wait_option

def _value(value) -> str:
    return "(unset)" if value is None else str(value)


def render(app, json_mode: bool, result) -> int:
    """Human: one `before → after` line per node on stdout, failures and warnings on stderr. JSON: the document."""
    out = app.output(json_mode)
    if json_mode:
        out.json_document(result)
        return result.exit_code
    for change in result.changes:
        if change.effective is not None:  # the attribute step went through
            note = "" if change.changed else ", unchanged"
            out.line(
                f"{change.node}: {change.attribute} {_value(change.before)} → {_value(change.after)} "
                f"(lifetime {change.lifetime}{note})"
            )
        if change.settled:
            state = change.state or {}
            extra = ""
            if change.attribute == "standby" and change.effective:
                extra = f" with {state.get('resources_running', 0)} resources running there"
            words = {True: "in", False: "out of"}[bool(change.effective)]
            out.line(f"{change.node}: the cluster shows it {words} {change.attribute}{extra}")
        if change.error:
            out.error_line(f"Error: {change.node}: {change.error}")
    out.reports(result.reports)
    return result.exit_code


@click.command("standby")
@nodes_argument
@lifetime_option
@wait_option("the nodes in standby with their resources moved away")
@json_option
@pass_app
def standby_command(app, nodes, lifetime, wait, json_mode):
    """Put NODEs (cluster, remote or guest) in standby: their resources move away.

    Sets the standby node attribute with crm_attribute (which also creates a missing <node type="remote"> entry).
    Works live, over SSH (--cluster) and on a CIB file (--cib). Exit 3 when some nodes failed.
    """
    from remotectl.actions.node_state import standby

    return render(app, json_mode, standby(app.cluster(), list(nodes), lifetime=lifetime, wait=wait))


@click.command("unstandby")
@nodes_argument
@lifetime_option
@wait_option("the nodes out of standby")
@json_option
@pass_app
def unstandby_command(app, nodes, lifetime, wait, json_mode):
    """Take NODEs out of standby: resources may run there again.

    Deletes the standby attribute of the given lifetime (like pcs); a warning says so when the other lifetime
    still keeps the node in standby.
    """
    from remotectl.actions.node_state import unstandby

    return render(app, json_mode, unstandby(app.cluster(), list(nodes), lifetime=lifetime, wait=wait))


@click.command("maintenance")
@nodes_argument
@click.option("--off", is_flag=True, help="Leave maintenance (delete the attribute) instead of entering it.")
@lifetime_option
@wait_option("the nodes' new maintenance state")
@json_option
@pass_app
def maintenance_command(app, nodes, off, lifetime, wait, json_mode):
    """Put NODEs in maintenance (resources there become unmanaged: not monitored, stopped or moved), or take them
    out of it with --off."""
    from remotectl.actions.node_state import maintenance

    return render(app, json_mode, maintenance(app.cluster(), list(nodes), off=off, lifetime=lifetime, wait=wait))

