"""`remotectl tls renew`: its own module, registered by remotectl.cli.tls."""

from __future__ import annotations

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.tls import _check_targets, _dir_option, _directory, _nodes_args, _remote_dir_option


@click.command("renew", short_help="New certificates (same keys) for nodes whose certificate expires soon.")
@_nodes_args
@_dir_option
@_remote_dir_option
@click.option("--within", type=click.IntRange(0, 825), default=30, show_default=True, metavar="DAYS",
              help="Renew the certificates that end within DAYS days (0: only expired ones).")
@click.option("--days", type=click.IntRange(1, 825), default=365, show_default=True, metavar="N",
              help="Lifetime of the new certificates in days (1..825; never beyond the CA's).")
@click.option("--restart", is_flag=True,
              help="Then restart the daemons that must load the new certificates (nodes in X.509 mode whose files "
                   "changed), as `authkey rotate --restart` does: under maintenance, cluster nodes one at a time, "
                   "then pacemaker-remoted.")
@click.option("--resume", is_flag=True,
              help="Finish an interrupted `tls renew --restart` (Ctrl-C, a lost connection): restart the daemons it "
                   "had not restarted yet and put maintenance back as it was. Implies --restart.")
@click.option("--dry-run", is_flag=True, help="Only say which certificates would be renewed; change nothing.")
@json_option
@pass_app
def renew_command(app, targets, all_nodes, directory, remote_dir, within, days, restart, resume, dry_run,
                  json_mode):
    """Renew the certificate of each NODE (in DIR) that has expired or ends within --within DAYS: a new
    certificate for the SAME key, with the node's current names and address, signed by the cluster CA. Only
    NODE.pem changes here and cert.pem on the node (the push of `tls push`, atomic; unchanged files are left
    alone, so a second run finishes an interrupted push). The key stays where it is and never travels again; for
    a new key use `tls issue --force NODE` and `tls push`.

    Pacemaker loads certificates when a daemon starts. Without --restart the nodes in X.509 mode whose files
    changed are listed as needing a restart (they keep the old certificate, still valid until it ends); with
    --restart they are restarted without moving or fencing anything; a run cut short is finished with --resume
    (the certificates are current by then, so only its journal knows which daemons still need a restart).

    Exit status: 0 all done, 3 some nodes failed or still need a restart after a failed one, 1 all failed."""
    from remotectl.actions.nodes import list_nodes
    from remotectl.actions.targets import load_targets
    from remotectl.actions.tls import local, renew
    from remotectl.reports import Reporter

    _check_targets(targets, all_nodes)
    restart = restart or resume
    if restart and dry_run:
        raise click.UsageError("--restart (or --resume) and --dry-run cannot be used together")
    out = app.output(json_mode)
    requests = local.requests_from_nodes(targets, list_nodes(app.cluster()).nodes, all_nodes=all_nodes)
    reporter = Reporter()
    resolved, restarter, journal = [], None, None
    if not dry_run:
        resolved = load_targets(targets, all_nodes=all_nodes, cluster_factory=app.cluster, reporter=reporter)
    if restart:  # refused before any certificate is written
        from remotectl.actions.authkey.restart import Restarter

        journal = renew.journal_for([t.label for t in resolved if not t.skip], resume)
        restarter = Restarter(app.ssh_runner, app.cluster)
    result = renew.reissue(requests, _directory(directory), days=days, within=within, dry_run=dry_run)
    if not dry_run:
        with out.progress(len([t for t in resolved if not t.skip]), "pushing certificates") as advance:
            result = renew.push_and_restart(result, resolved, app.ssh_runner, remote_dir, restarter=restarter,
                                            journal=journal, on_done=lambda _o: advance())
    code = result.exit_code()
    if out.json_or_reports(result, reporter.reports + result.reports):
        return code
    rows = [(n.node, n.status, n.days_left, n.not_after[:10] if n.not_after else None, n.push, n.restart,
             n.error or n.message) for n in result.nodes]
    out.table(["NODE", "STATUS", "DAYS LEFT", "UNTIL", "PUSH", "RESTART", "DETAIL"], rows,
              title=f"certificates ending within {within} day(s), in {result.directory}")
    if result.restart_needed:
        out.line(f"still on the old certificate until restarted: {', '.join(result.restart_needed)}")
    return code
