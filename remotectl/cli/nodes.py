"""`remotectl nodes`: every node the cluster knows, side by side."""

from __future__ import annotations

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.reports import ExitCode


def _state(node) -> str:
    if node.unclean:
        words = ["UNCLEAN"]
    elif node.online:
        words = ["online"]
    else:
        words = ["OFFLINE"]
    if node.standby:
        words.append("standby")
    if node.maintenance:
        words.append("maintenance")
    return ", ".join(words)


@click.command("nodes")
@click.option(
    "--type",
    "type_filter",
    type=click.Choice(["cluster", "remote", "guest", "bundle"]),
    help="Only nodes of this type.",
)
@json_option
@pass_app
def nodes_command(app, type_filter, json_mode):
    """List cluster, remote, guest and bundle nodes with their state.

    For remote nodes RESOURCE is the connection resource and ADDRESS its server:port; for guest nodes RESOURCE
    is the container resource and HOST the cluster node it runs on; for bundle replicas RESOURCE is the bundle.
    """
    from remotectl.actions.nodes import list_nodes
    from remotectl.output import host_port

    out = app.output(json_mode)
    result = list_nodes(app.cluster(), type_filter)
    if json_mode:
        out.json_document(result)
        return ExitCode.OK
    out.reports(result.reports)
    rows = [
        (node.name, node.type, _state(node), node.resource, host_port(node.address, node.port), node.host) for node in result.nodes
    ]
    if rows:
        out.table(["NAME", "TYPE", "STATE", "RESOURCE", "ADDRESS", "HOST"], rows)
    else:
        out.error_line("no nodes" + (f" of type {type_filter}" if type_filter else ""))
    return ExitCode.OK
