"""`remotectl check`: reachability and key check of remote and guest nodes, without disturbing the cluster."""

from __future__ import annotations

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.reports import ExitCode, RemotectlError


def _complete_targets(ctx, param, incomplete):
    from remotectl.cli.completion import complete_node_names

    return complete_node_names(ctx, param, incomplete)


def _endpoint(address, port):
    from remotectl.output import host_port

    return host_port(address, port) or f"-:{port}"


@click.command("check")
@click.argument("targets", nargs=-1, metavar="[TARGET...]", shell_complete=_complete_targets)
@click.option("--all", "all_nodes", is_flag=True, help="Every remote, guest and bundle node of the cluster.")
@click.option("--key", "key_path", metavar="PATH",
              help="Authkey to check with [default: where Pacemaker reads it here: PCMK_authkey_location in "
              "/etc/sysconfig/pacemaker or /etc/default/pacemaker, else /etc/pacemaker/authkey]. With --from "
              "cluster: the key file's path on the cluster nodes (each uses its own key by default).")
@click.option("--ca", "ca_path", metavar="FILE",
              help="For nodes in X.509 mode (Pacemaker 3): check each node's certificate against this CA file "
              "(chain, validity, names) instead of a key, safely: no client certificate is sent and the handshake "
              "never completes. Verdicts x509-trusted, x509-untrusted, x509-expired, x509-name-mismatch, "
              "tls-not-x509. [default: nodes that answer the key probe with tls-not-psk get this probe with the "
              "PCMK_ca_file of this machine, when it is in X.509 mode, else with each node's own, read over "
              "SSH; with --from cluster: with each cluster node's own PCMK_ca_file.]")
@click.option("--port", type=click.IntRange(1, 65535), metavar="N",
              help="Port to probe [default: the node's port from the CIB; 3121 for hosts without :PORT].")
@click.option("--timeout", type=click.FloatRange(min=0.05, max=600), default=5.0, show_default=True, metavar="S",
              help="Seconds per target for the TCP connect and the TLS handshake together (one deadline).")
@click.option("--from", "source", type=click.Choice(["here", "cluster"]), default="here", show_default=True,
              help="Probe from this machine, or from every online cluster node over SSH (a matrix).")
@click.option("--full", is_flag=True,
              help="Complete the handshake and register with the executor (reports its protocol version). Only "
              "for hosts no cluster is connected to (vetting before a join): refused for connected nodes.")
@click.option("--force", is_flag=True,
              help="With --full: go ahead even against a node the cluster is connected to (it will be dropped, "
              "marked unclean and may be fenced) or when no cluster can be queried.")
@click.option("--parallel", "--workers", "workers", type=click.IntRange(1, 256), metavar="N",
              help="Targets probed at the same time (--workers is the older name) [default: 128, fewer when the "
              "open-file limit is low; 32 with --from cluster].")
@json_option
@pass_app
def check_command(app, targets, all_nodes, key_path, ca_path, port, timeout, source, full, force, workers,
                  json_mode):
    """Check that pacemaker-remoted on each TARGET is reachable and holds the same authkey, without disturbing
    the cluster.

    TARGET is a remote, guest or bundle node name from the CIB (its address and port are used) or HOST[:PORT].
    Per target: DNS, TCP connect, then a TLS 1.3 PSK probe that proves the key WITHOUT completing the handshake,
    so the cluster's connection to a live node is untouched (the node logs one failed handshake). The key is read
    once and never leaves this process.

    \b
    Verdicts: match, mismatch, tls12-only, not-tls, tls-not-psk, bad-server-finished,
    timeout (TCP open, no complete TLS answer in time), refused, tcp-timeout, unreachable, unresolved,
    probe-bug, and with --from cluster: not-checked (the probe could not run there).

    With --ca FILE (nodes in Pacemaker 3's X.509 mode) the probe checks the node's certificate instead: it must
    chain to FILE, be valid now and name the address probed or the node (x509-trusted; else x509-untrusted,
    x509-expired, x509-name-mismatch, or tls-not-x509 for a PSK node). It aborts before sending a certificate or
    Finished of its own, so a connected node is never taken over. Without --ca, each node gets the probe of
    its mode: the key probe first, then, for the nodes that answer tls-not-psk (X.509 mode), the certificate
    probe with the CA their cluster trusts (PCMK_ca_file here, else the node's own over SSH). With no authkey
    here and PCMK_ca_file set here, every target gets the certificate probe.

    --from cluster runs the same probe on every online cluster node over SSH (each with its own key) against
    every target and prints a cluster-node x target matrix: a remote that only one cluster node cannot reach is
    the one that gets fenced. For X.509 nodes the certificate probe runs there too: with --ca FILE (the CA is
    sent on stdin) or with each cluster node's own PCMK_ca_file; the verdict comes from GnuTLS on the node
    (python3 and libgnutls are all it needs), the certificate's details are left out.

    Exit status: 0 every target ok, 3 some not ok, 1 none could be checked (no TCP connection anywhere, or the
    probe could not run), 4 --full refused.
    """
    from remotectl.actions import check as action

    out = app.output(json_mode)

    def get_nodes():
        from remotectl.actions.nodes import list_nodes

        return list_nodes(app.cluster()).nodes

    try:
        plan = action.plan_check(get_nodes, list(targets), all_nodes=all_nodes, port=port, timeout=timeout,
                                 workers=workers, source=source, full=full, force=force, key_path=key_path,
                                 ca_path=ca_path)
    except RemotectlError as exc:
        if exc.exit_code == ExitCode.USAGE:
            raise click.UsageError(exc.message) from None
        raise
    action.guard_full_on_hosts(plan, app.ssh_runner, force=force)
    for warning in plan.warnings:
        out.error_line(f"WARNING: {warning}")
    units = len(plan.sources) if plan.mode == "cluster" else len(plan.targets)
    label = "probing from cluster nodes" if plan.mode == "cluster" else "probing"
    with out.progress(units, label, pending=action.first_pending(plan)) as advance:
        run = action.run_check(plan, runner_for=app.ssh_runner, on_progress=advance)
    code = run.exit_code()
    if json_mode:
        out.json_document(run.to_json(), run.reports)
        return code
    out.reports(run.reports)
    if plan.mode == "cluster":
        _render_matrix(out, run)
    else:
        _render_table(out, run)
    if out.verbosity >= 0:
        out.line(run.summary())
    return code


def _render_table(out, run):
    full = run.mode == "full"
    columns = ["TARGET", "ADDRESS", "TCP", "VERDICT", "TLS"] + (["PROTOCOL"] if full else []) + ["HINT"]
    if out.verbosity > 0:
        columns.append("DETAIL")
    rows = []
    for entry in run.entries:
        row = [entry.target, _endpoint(entry.address, entry.port), entry.tcp, entry.verdict, entry.tls_version]
        if full:
            row.append(entry.protocol_version)
        row.append(entry.hint)
        if out.verbosity > 0:
            row.append(entry.detail)
        rows.append(row)
    out.table(columns, rows)


def _render_matrix(out, run):
    sources = run.plan.sources
    columns = ["TARGET", "ADDRESS"] + [f"FROM {name}" for name in sources]
    cells = {}
    for entry in run.entries:
        cells[(entry.target, entry.source)] = entry
    rows = []
    seen = set()
    for target in run.plan.targets:
        if target.label in seen:
            continue
        seen.add(target.label)
        row = [target.label, _endpoint(target.host, target.port)]
        for name in sources:
            entry = cells.get((target.label, name))
            row.append(entry.verdict if entry else None)
        rows.append(row)
    out.table(columns, rows, title="check from every cluster node")
    failing = run.failing_pairs()
    if failing:
        out.table(["FROM", "TARGET", "ADDRESS", "TCP", "VERDICT", "HINT"],
                  [(e.source, e.target, _endpoint(e.address, e.port), e.tcp, e.verdict, e.hint)
                   for e in failing], title="pairs that are not ok")
