"""`remotectl constraint list|prefer|avoid|remove`: location constraints, live or on a CIB file."""

from __future__ import annotations

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.completion import complete_node_names, complete_resource_ids


@click.group("constraint")
def constraint_group():
    """Location constraints: list them (including crm_resource's cli-prefer-*/cli-ban-*), prefer or avoid a node
    for a resource, remove one by id.

    Remote connection resources may only be placed with location constraints; `list` warns about connection
    resources found in groups, order or colocation constraints.
    """


@constraint_group.command("list")
@click.option("--node", "node", metavar="NODE", shell_complete=complete_node_names,
              help="Only constraints about this node (also through #uname rules).")
@click.option("--resource", "resource", metavar="RSC", shell_complete=complete_resource_ids,
              help="Only constraints about this resource.")
@json_option
@pass_app
def list_command(app, node, resource, json_mode):
    """List location constraints, with rules shown readably."""
    from remotectl.actions.constraint import list_constraints
    from remotectl.reports import ExitCode

    out = app.output(json_mode)
    result = list_constraints(app.cluster(), node=node, resource=resource)
    if json_mode:
        out.json_document(result)
        return ExitCode.OK
    rows = []
    for c in result.constraints:
        resource_text = c.resource or (f"/{c.resource_pattern}/" if c.resource_pattern else None)
        if resource_text is None and c.resource_set:
            resource_text = " ".join(c.resource_set)
        if c.role:
            resource_text = f"{resource_text} [{c.role}]"
        score = c.score if c.score is not None else (f"attr:{c.score_attribute}" if c.score_attribute else None)
        rows.append((c.id, resource_text, c.node, score, c.kind, c.rule))
    if rows:
        out.table(["ID", "RESOURCE", "NODE", "SCORE", "KIND", "RULE"], rows)
    else:
        what = " ".join(x for x in (f"node {node}" if node else "", f"resource {resource}" if resource else "") if x)
        out.error_line("no location constraints" + (f" for {what}" if what else ""))
    out.reports(result.reports)
    return ExitCode.OK


def _render_change(app, json_mode, result):
    out = app.output(json_mode)
    if json_mode:
        out.json_document(result)
        return result.exit_code
    out.reports([r for r in result.reports if r.severity.value != "warning"])
    for change in result.changes:
        if change.action == "unchanged":
            out.line(f"{change.description} (already there, unchanged)")
        elif change.action == "created" and change.ok:
            out.line(f"(none) → {change.description}")
        elif change.action == "removed" and change.ok:
            out.line(f"{change.description} → (none)")
        if change.error:
            out.error_line(f"Error: {change.id}: {change.error}")
    out.reports([r for r in result.reports if r.severity.value == "warning"])
    return result.exit_code


def _location_command(verb: str, sign: str, force_help: str):
    """`constraint prefer|avoid RSC NODE [--score S] [--force] [--json]`: the same arguments, worded for verb."""

    def decorate(func):
        func = pass_app(func)
        func = json_option(func)
        func = click.option("--force", is_flag=True, help=force_help)(func)
        func = click.option("--score", metavar="S", help=f"How strongly to {verb} NODE: an integer > 0 or INFINITY "
                                                        f"(default INFINITY; stored as {sign}SCORE).")(func)
        func = click.argument("node", metavar="NODE", shell_complete=complete_node_names)(func)
        func = click.argument("resource", metavar="RSC", shell_complete=complete_resource_ids)(func)
        return constraint_group.command(verb)(func)

    return decorate


@_location_command("prefer", "", "Create it even if RSC or NODE does not exist or it can never apply.")
def prefer_command(app, resource, node, score, force, json_mode):
    """Make RSC prefer NODE (location constraint with a positive score).

    The id is location-RSC-NODE-SCORE (made a valid, unique XML id). Refused (exit 4) for a resource or node that
    does not exist, or for a placement Pacemaker never allows (a remote connection resource or a guest's container
    on a Pacemaker Remote node), unless --force.
    """
    from remotectl.actions.constraint import add_location

    return _render_change(app, json_mode, add_location(app.cluster(), resource, node, score, force=force))


@_location_command("avoid", "-", "Create it even if RSC or NODE does not exist.")
def avoid_command(app, resource, node, score, force, json_mode):
    """Make RSC avoid NODE (location constraint with a negative score; INFINITY bans it from NODE)."""
    from remotectl.actions.constraint import add_location

    return _render_change(app, json_mode, add_location(app.cluster(), resource, node, score, avoid=True,
                                                       force=force))


@constraint_group.command("remove")
@click.argument("constraint_id", metavar="ID")
@json_option
@pass_app
def remove_command(app, constraint_id, json_mode):
    """Remove the constraint with this ID (any constraint type; see `constraint list`)."""
    from remotectl.actions.constraint import remove_constraint

    return _render_change(app, json_mode, remove_constraint(app.cluster(), constraint_id))
