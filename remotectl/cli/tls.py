"""`remotectl tls`: a cluster CA, node certificates, their distribution and their verification (Pacemaker 3.0
X.509 mode for remote connections)."""

from __future__ import annotations

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.completion import complete_node_names
from remotectl.reports import ExitCode

REMOTE_DIR = "/etc/pacemaker/tls"  # pacemaker.x509.REMOTE_DIR (not imported: --help stays light)
KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072")  # pacemaker.x509.KEY_TYPES


def _dir_option(func):
    return click.option("--dir", "directory", metavar="DIR", envvar="REMOTECTL_TLS_DIR",
                        help="The CA directory here: ca.pem, ca.key, NODE.pem, NODE.key [default: "
                             "$XDG_DATA_HOME/remotectl/tls, i.e. ~/.local/share/remotectl/tls].")(func)


def _remote_dir_option(func):
    return click.option("--remote-dir", default=REMOTE_DIR, show_default=True, metavar="REMOTE_DIR",
                        help="Where the files go on the nodes (ca.pem, cert.pem, key.pem).")(func)


def _nodes_args(func):
    func = click.argument("targets", nargs=-1, metavar="[NODE]...", shell_complete=complete_node_names)(func)
    func = click.option("--all", "all_nodes", is_flag=True, help="Every cluster, remote and guest node.")(func)
    return func


def _check_targets(targets, all_nodes):
    if not targets and not all_nodes:
        raise click.UsageError("give one or more NODEs or --all")
    if targets and all_nodes:
        raise click.UsageError("NODEs and --all cannot be used together")


def _directory(directory):
    from remotectl.actions.tls.local import default_dir

    return directory or default_dir()


def _short(fp):
    return fp[: len("sha256:") + 16] + "…" if fp else None


@click.group("tls")
def tls_group():
    """X.509 certificates for remote connections (Pacemaker 3.0): a cluster CA, a key and certificate per node,
    pushed to the nodes and verified there.

    Pacemaker 3.0 uses X.509 instead of the authkey when PCMK_ca_file, PCMK_cert_file and PCMK_key_file are all
    set in /etc/sysconfig/pacemaker or /etc/default/pacemaker, on every node at once. `ca create`, `issue`,
    `push` and `verify` prepare and check the files; `enable` switches the whole cluster to X.509 and `disable`
    back to the authkey.
    """


@tls_group.group("ca")
def ca_group():
    """The cluster's private CA."""


@ca_group.command("create", short_help="Create the cluster CA (key 0400, atomically).")
@_dir_option
@click.option("--days", type=click.IntRange(1, 7300), default=3650, show_default=True, metavar="N",
              help="Lifetime of the CA certificate in days (1..7300).")
@click.option("--name", default="remotectl cluster CA", show_default=True, metavar="CN",
              help="The CA's common name.")
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ec-p256", show_default=True,
              help="Key algorithm.")
@click.option("--force", is_flag=True, help="Replace an existing CA (regular files only). Certificates it "
                                            "signed are then no longer trusted.")
@json_option
@pass_app
def ca_create_command(app, directory, days, name, key_type, force, json_mode):
    """Create a private CA for the cluster in DIR: ca.key (mode 0400) and ca.pem (0644), each written
    atomically with its final mode before any byte. It signs node certificates only (path length 0).
    Keep ca.key off the nodes."""
    from remotectl.actions.tls.local import create_ca

    out = app.output(json_mode)
    result = create_ca(_directory(directory), name=name, days=days, key_type=key_type, force=force)
    if out.json_or_reports(result, result.reports):
        return ExitCode.OK
    out.line(f"created CA {result.ca.subject} in {result.directory} (valid until {result.ca.not_after[:10]})")
    out.line(result.ca.fingerprint)
    return ExitCode.OK


@tls_group.command("issue", short_help="A key and certificate per node, signed by the cluster CA.")
@_nodes_args
@_dir_option
@click.option("--days", type=click.IntRange(1, 825), default=365, show_default=True, metavar="N",
              help="Lifetime in days (1..825; never beyond the CA's).")
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ec-p256", show_default=True,
              help="Key algorithm.")
@click.option("--force", is_flag=True, help="Issue a new key and certificate for nodes that already have them.")
@json_option
@pass_app
def issue_command(app, targets, all_nodes, directory, days, key_type, force, json_mode):
    """Issue NODE.key (0400) and NODE.pem in DIR for each node: CN and a DNS SubjectAltName for the node name,
    and the address the cluster connects to (server= of a remote node, remote-addr of a guest) as an IP or DNS
    SubjectAltName. Usable as TLS server and client. Bundle replicas are skipped.

    Exit status: 0 all issued (or already there), 3 some failed, 1 all failed."""
    from remotectl.actions.nodes import list_nodes
    from remotectl.actions.tls import local

    _check_targets(targets, all_nodes)
    out = app.output(json_mode)
    requests = local.requests_from_nodes(targets, list_nodes(app.cluster()).nodes, all_nodes=all_nodes)
    result = local.issue(requests, _directory(directory), days=days, key_type=key_type, force=force)
    code = result.exit_code()
    if out.json_or_reports(result, result.reports):
        return code
    rows = [(n.node, n.status, ", ".join(n.dns_names + n.ip_addresses) or None,
             n.not_after[:10] if n.not_after else None, n.error or n.message) for n in result.nodes]
    out.table(["NODE", "STATUS", "NAMES", "UNTIL", "DETAIL"], rows, title=f"CA {_short(result.ca)} in "
              f"{result.directory}")
    return code


@tls_group.command("push", short_help="Install the CA, node certificate and key on nodes, atomically.")
@_nodes_args
@_dir_option
@_remote_dir_option
@json_option
@pass_app
def push_command(app, targets, all_nodes, directory, remote_dir, json_mode):
    """Install ca.pem, cert.pem and key.pem in REMOTE_DIR on each node: atomically (the remote write of
    `authkey push`), owner root:haclient, key 0440, certificates 0644, the directory created 0750 root:haclient
    when missing. Files already there with the same content, owner and mode are left alone. Does not switch the
    node to X.509: no PCMK_* setting is changed.

    Exit status: 0 all done, 3 some nodes failed, 1 all failed."""
    from remotectl.actions.targets import load_targets
    from remotectl.actions.tls.push import push
    from remotectl.reports import Reporter

    _check_targets(targets, all_nodes)
    out = app.output(json_mode)
    reporter = Reporter()
    resolved = load_targets(targets, all_nodes=all_nodes, cluster_factory=app.cluster, reporter=reporter)
    with out.progress(len([t for t in resolved if not t.skip]), "pushing certificates") as advance:
        result = push(resolved, app.ssh_runner, _directory(directory), remote_dir, on_done=lambda _o: advance())
    code = result.exit_code()
    if out.json_or_reports(result, reporter.reports + result.reports):
        return code
    rows = [(n.node, n.status, n.tls_mode, " ".join(f"{f.role}:{f.status}" for f in n.files) or None, n.detail)
            for n in result.nodes]
    out.table(["NODE", "STATUS", "MODE", "FILES", "DETAIL"], rows, title=f"CA {_short(result.ca)} → {remote_dir}")
    return code


@tls_group.command("verify", short_help="Check each node's certificate, key and settings; same mode everywhere?")
@_nodes_args
@_dir_option
@_remote_dir_option
@json_option
@pass_app
def verify_command(app, targets, all_nodes, directory, remote_dir, json_mode):
    """Check on each node (read-only): the PCMK_* settings in /etc/sysconfig/pacemaker and /etc/default/pacemaker,
    the files they name (or, in PSK mode, those in REMOTE_DIR): present, PEM, the key matches the certificate,
    the certificate chains to the node's CA file and to the cluster CA (DIR's ca.pem, else the CA most nodes
    hold), not expired, days left (a warning within 30 days), its names cover the node's address, the key not
    readable by others and every file readable by hacluster; and that all nodes use the same mode (psk or x509).
    The key is read into memory to compare it with the certificate; it is never stored or shown.

    Exit status: 0 all good, 3 some nodes have problems or the modes differ, 1 no node could be checked."""
    from remotectl.actions.targets import load_targets
    from remotectl.actions.tls.local import read_ca_certificate
    from remotectl.actions.tls.verify import verify
    from remotectl.reports import Reporter

    _check_targets(targets, all_nodes)
    out = app.output(json_mode)
    reporter = Reporter()
    resolved = load_targets(targets, all_nodes=all_nodes, cluster_factory=app.cluster, reporter=reporter)
    local_ca = read_ca_certificate(_directory(directory))
    with out.progress(len([t for t in resolved if not t.skip]), "checking certificates") as advance:
        result = verify(resolved, app.ssh_runner, remote_dir, local_ca=local_ca, on_done=lambda _o: advance())
    code = result.exit_code()
    if out.json_or_reports(result, reporter.reports + result.reports):
        return code
    rows = [(n.node, n.state, n.tls_mode, n.certificate.subject if n.certificate else None, n.days_left,
             _short(n.ca_fingerprint)) for n in result.nodes]
    out.table(["NODE", "STATE", "MODE", "SUBJECT", "DAYS LEFT", "CA"], rows)
    for n in result.nodes:
        for problem in n.problems:
            out.line(f"{n.node}: {problem.severity}: {problem.message}")
    out.line(f"mode: {result.mode}; CA {_short(result.ca) or 'unknown'}"
             f"{' (' + result.ca_source + ')' if result.ca_source else ''}; {'ok' if result.ok else 'NOT ok'}")
    return code


# -- enable / disable: the whole cluster to X.509 and back (remotectl/actions/tls/switch.py) ------------------------
def _switch_options(func):
    func = click.option("--dry-run", is_flag=True, help="Check every node and print the plan; change nothing.")(func)
    func = click.option("--yes", is_flag=True, help="Apply the plan without asking (--json needs it).")(func)
    func = click.option("--resume", is_flag=True,
                        help="Finish an interrupted switch (recorded in remotectl's cache on this machine): edit "
                             "what is left, restart what was not restarted, put maintenance back.")(func)
    return func


def _switch(app, mode, directory, remote_dir, dry_run, yes, resume, json_mode):
    """Preflight and plan, a yes (or --yes), then the switch; the output of both commands."""
    import sys

    from remotectl.actions.authkey.restart import Restarter
    from remotectl.actions.targets import load_targets
    from remotectl.actions.tls import switch
    from remotectl.actions.tls.local import read_ca_certificate
    from remotectl.cli.confirm import ask, need_someone_to_ask
    from remotectl.reports import Reporter

    what = f"tls {'enable' if mode == 'x509' else 'disable'}"
    if not (yes or dry_run):
        need_someone_to_ask(json_mode, what)  # before contacting anything
    out = app.output(json_mode)
    reporter = Reporter()
    resolved = load_targets([], all_nodes=True, cluster_factory=app.cluster, reporter=reporter)
    restarter = Restarter(app.ssh_runner, app.cluster)
    local_ca = read_ca_certificate(_directory(directory)) if mode == "x509" else None
    plan = switch.prepare_switch(resolved, app.ssh_runner, mode=mode, remote_dir=remote_dir, local_ca=local_ca,
                                 resume=resume, restarter=restarter)
    shown = 0
    if not json_mode:
        out.line("Plan:")
        for line in plan.lines:
            out.line("  " + line)
        sys.stdout.flush()
        out.reports(reporter.reports + plan.reports)
        shown = len(plan.reports)
        reporter.reports.clear()
    if dry_run or plan.nothing_to_do:
        result = switch.planned_result(plan)
    else:
        if not yes:
            ask(what, "Switch every node now (under maintenance-mode)?")
        result = switch.execute_switch(plan, restarter)
    code = result.exit_code()
    if out.json_or_reports(result, reporter.reports + result.reports[shown:]):
        return code
    if result.dry_run:
        out.line("dry run: nothing was changed")
        return code
    out.table(["NODE", "STATUS", "VERSION", "ENV FILES", "DETAIL"],
              [(n.node, n.status, n.pacemaker_version, ", ".join(n.files) or None, n.error) for n in result.nodes])
    for r in result.restarts:
        out.line(f"{r.kind} {r.node}: {r.status}: {r.message}")
    for p in result.probes:
        out.line(f"safe probe {p.node} ({p.address}): {p.verdict}")
    name = "X.509" if mode == "x509" else "the PSK authkey"
    if result.ok:
        out.line(f"every node uses {name} now" if not plan.nothing_to_do else f"every node already uses {name}")
    elif result.rolled_back:
        out.line("the switch failed; every env file was restored and the daemons restarted in the previous mode")
    else:
        out.line("the switch did not complete: see the errors above")
    return code


@tls_group.command("enable", short_help="Switch the whole cluster from the PSK authkey to X.509.")
@_dir_option
@_remote_dir_option
@_switch_options
@json_option
@pass_app
def enable_command(app, directory, remote_dir, dry_run, yes, resume, json_mode):
    """Switch every cluster, remote and guest node to X.509 together, with the files `tls push` installed in
    REMOTE_DIR.

    \b
    1. check every node (nothing changed yet): reachable, Pacemaker 3.0 or later, its files pass `tls verify`
       (chain to the cluster CA: DIR's ca.pem, else the CA most nodes hold), an env file to edit
       (/etc/sysconfig/pacemaker and/or /etc/default/pacemaker); else refuse;
    2. print the plan and ask (--yes: do not ask; --dry-run: stop here);
    3. node maintenance on the remote and guest nodes, then maintenance-mode=true;
    4. set PCMK_ca_file, PCMK_cert_file and PCMK_key_file in every env file of every node (atomically, every
       other line kept, the previous file kept as FILE.bak-<timestamp>);
    5. restart pacemaker on the cluster nodes one at a time (each waited for until it is a member again), then
       pacemaker_remote on the remote and guest nodes;
    6. prove it with the X.509 safe probe against every remoted (its certificate chains to the CA and names the
       node; the probe never completes a handshake, so no connection is taken over);
    7. on any failure in 4-6: restore every env file and restart the daemons again, still under maintenance;
    8. maintenance back, wait until every node is online and every resource is where it was.

    The mode is all-or-nothing per daemon: a PSK cluster node facing an X.509 remote fails hard and fences it,
    hence maintenance until every node has switched. Pacemaker 3.0.2 and 3.0.3 accept a client certificate of
    any CA in X.509 mode (a warning in the plan, code tls-client-auth-bypass).

    Exit status: 0 done (or nothing to do); 1 nothing was changed; 3 failed after changes (rolled back); 4
    refused (a check failed, or not confirmed: --json needs --yes); 130 interrupted (the cluster stays in
    maintenance; --resume finishes the switch)."""
    return _switch(app, "x509", directory, remote_dir, dry_run, yes, resume, json_mode)


@tls_group.command("disable", short_help="Switch the whole cluster from X.509 back to the PSK authkey.")
@_switch_options
@json_option
@pass_app
def disable_command(app, dry_run, yes, resume, json_mode):
    """Switch every cluster, remote and guest node back to the PSK authkey together: the same procedure as
    `tls enable`, removing PCMK_ca_file, PCMK_cert_file, PCMK_key_file and PCMK_crl_file from the env files,
    proven with the PSK safe probe (the cluster's key). Refused unless every node holds the same authkey
    (`authkey verify`). The certificate files stay on the nodes.

    Exit status: as `tls enable`."""
    return _switch(app, "psk", None, REMOTE_DIR, dry_run, yes, resume, json_mode)

from remotectl.cli.tls_renew import renew_command  # noqa: E402 - its own module, so that merges stay easy

tls_group.add_command(renew_command)
