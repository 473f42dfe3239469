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
@click.option("--tls", "tls_modes", is_flag=True,
              help="Also each node's TLS mode (psk or x509), read from its env files over SSH (one round trip per "
                   "node; nothing secret is read): the CIB does not record it.")
@json_option
@pass_app
def nodes_command(app, type_filter, tls_modes, json_mode):
    """List cluster, remote, guest and bundle nodes with their state.

    For remote nodes RESOURCE is the connection resource and ADDRESS its server:port; for guest nodes RESOURCE
    is the container resource and HOST the cluster node it runs on; for bundle replicas RESOURCE is the bundle.

    --tls adds a TLS column: psk or x509 as the node's /etc/sysconfig/pacemaker or /etc/default/pacemaker sets
    it (PCMK_ca_file, PCMK_cert_file and PCMK_key_file all set: x509), unknown when it cannot be read over SSH,
    and the cluster's mode (mixed: a warning, such nodes cannot connect to each other).
    """
    from remotectl.actions.nodes import list_nodes, with_tls_modes
    from remotectl.output import host_port

    out = app.output(json_mode)
    result = list_nodes(app.cluster(), type_filter)
    if tls_modes:
        with out.progress(len(result.nodes), "reading TLS modes") as advance:
            with_tls_modes(result, app.ssh_runner, on_done=lambda _o: advance())
    if json_mode:
        out.json_document(result)
        return ExitCode.OK
    out.reports(result.reports)
    headers = ["NAME", "TYPE", "STATE", "RESOURCE", "ADDRESS", "HOST"] + (["TLS"] if tls_modes else [])
    rows = [(node.name, node.type, _state(node), node.resource, host_port(node.address, node.port), node.host)
            + ((node.tls_mode,) if tls_modes else ()) for node in result.nodes]
    if rows:
        out.table(headers, rows, title=f"TLS mode of the cluster: {result.tls_mode}" if tls_modes else None)
    else:
        out.error_line("no nodes" + (f" of type {type_filter}" if type_filter else ""))
    return ExitCode.OK
