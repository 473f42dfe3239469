"""`remotectl fence NODE` and `remotectl fence history [NODE]`.

"history" as the first word always means the history; a node literally named "history" is fenced with
`remotectl fence --node history`, and its history is `remotectl fence history history`.
"""

from __future__ import annotations

import sys

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.completion import complete_node_names
from remotectl.cli.options import wait_option

FENCE_HELP = """Fence NODE, or show the fencing history.

\b
  remotectl fence NODE [--action reboot|off] [--yes] [--wait[=S]] [--json]
  remotectl fence --node NODE ...      (the same; for a node literally named "history")
  remotectl fence history [NODE] [--json]

Cluster and remote nodes are fenced by the cluster's fencing devices (stonith_admin). Guest and bundle nodes
have no fencing device: Pacemaker fences them by recovering their container resource, and so does remotectl
(crm_resource --fail on the container, so the cluster stops and restarts it); --action off does not exist for
them.

Asks for confirmation on a terminal; without one, --yes is required (exit 4 otherwise, nothing fenced).
Needs a live cluster (locally or --cluster), not --cib. The history comes from the fencer's memory
(stonith_admin --history --verbose): it does not survive a restart of the whole cluster and has no entries for
guest nodes.
"""


def _history(app, node, json_mode):
    from remotectl.actions.fence import fence_history
    from remotectl.reports import ExitCode

    out = app.output(json_mode)
    result = fence_history(app.cluster(), node)
    if json_mode:
        out.json_document(result)
        return ExitCode.OK
    rows = [
        (e.target, e.action, e.status, e.completed, e.origin, e.delegate, e.client, e.exit_reason)
        for e in result.events
    ]
    if rows:
        out.table(["TARGET", "ACTION", "STATUS", "COMPLETED", "ORIGIN", "DELEGATE", "CLIENT", "REASON"], rows)
    else:
        out.error_line("no fencing events recorded" + (f" for {node}" if node else ""))
    out.reports(result.reports)
    return ExitCode.OK


def _confirm(out, preparation, yes: bool) -> None:
    from remotectl.reports import RefusedError

    plan = preparation.plan
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError(
            f"refusing to fence {plan.node} without confirmation: there is no terminal to ask on; pass --yes "
            f"(nothing fenced)"
        )
    now = preparation.before.summary() if preparation.before else "not shown by crm_mon"
    out.error_line(f"{plan.node} ({plan.type} node, now {now}): {plan.explanation}.")
    if not click.confirm(f"Fence {plan.node} ({plan.action})?", default=False, err=True):
        raise RefusedError(f"not confirmed; {plan.node} was not fenced")


def _fence(app, node, action, yes, force, wait, json_mode):
    from remotectl.actions.fence import execute_fence, prepare_fence

    out = app.output(json_mode)
    cluster = app.cluster()
    preparation = prepare_fence(cluster, node, action, force=force)
    _confirm(out, preparation, yes)
    result = execute_fence(cluster, preparation, wait=wait)
    if json_mode:
        out.json_document({"changes": [result.change()]}, result.reports)
        return result.exit_code
    plan = result.plan
    if result.ok or result.settled is False:
        if plan.method == "stonith":
            how = f"fenced ({plan.action}) by the fencer"
            event = result.event
            if event is not None:
                how += f"; history: {event.status}"
                if event.completed:
                    how += f" at {event.completed}"
                if event.delegate:
                    how += f" by {event.delegate}"
        else:
            how = f"container {plan.container} marked failed on {plan.host}: the cluster recovers it"
        out.line(f"{plan.node}: {result.before or '(unknown)'} → {result.after or '(unknown)'} ({how})")
        if result.settled:
            out.line(f"{plan.node}: back online")
    if result.error:
        out.error_line(f"Error: {plan.node}: {result.error}")
    out.reports(result.reports)
    return result.exit_code


@click.command("fence", help=FENCE_HELP, short_help="Fence a node, or show the fencing history.")
@click.argument("words", nargs=-1, metavar="NODE | history [NODE]", shell_complete=complete_node_names)
@click.option("--node", "node_option", metavar="NODE", shell_complete=complete_node_names,
              help="The node to fence (for a node named 'history').")
@click.option("--action", type=click.Choice(["reboot", "off"]), default="reboot", show_default=True,
              help="What the fencing device does; guest and bundle nodes only support reboot.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@click.option("--force", is_flag=True, help="Fence even a node crm_mon does not show (handed to the fencer).")
@wait_option("the node back online after a reboot", cib_note=False)
@json_option
@pass_app
@click.pass_context
def fence_command(ctx, app, words, node_option, action, yes, force, wait, json_mode):
    history = not node_option and words and words[0] == "history"
    if history:
        if len(words) > 2:
            raise click.UsageError("fence history takes at most one NODE")
        for name in ("action", "force", "wait"):
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name} does not apply to fence history")
        return _history(app, words[1] if len(words) == 2 else None, json_mode)
    if node_option and words:
        raise click.UsageError("give the node either as NODE or as --node NODE, not both")
    if not node_option and len(words) != 1:
        raise click.UsageError("fence takes exactly one NODE (or: fence history [NODE])")
    return _fence(app, node_option or words[0], action, yes, force, wait, json_mode)
