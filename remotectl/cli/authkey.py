"""`remotectl authkey`: generate, fingerprint, push, verify and rotate the Pacemaker remote authkey."""

from __future__ import annotations

import sys

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.completion import complete_node_names
from remotectl.reports import ExitCode, RefusedError, per_node_exit

DEFAULT_KEY = "/etc/pacemaker/authkey"
DEFAULT_BYTES = 256
MIN_BYTES = 16
MAX_BYTES = 65536


def _short(fp):
    if not fp:
        return None
    return fp[: len("sha256:") + 16] + "…"


def _targets_args(func):
    func = click.argument("targets", nargs=-1, metavar="[TARGET]...", shell_complete=complete_node_names)(func)
    func = click.option("--all", "all_nodes", is_flag=True, help="Every cluster, remote and guest node.")(func)
    return func


_parallel_option = click.option(
    "--parallel", "workers", type=click.IntRange(1, 256), metavar="N",
    help="Nodes worked on at the same time (one SSH connection each) [default: 64, fewer when the open-file "
         "limit is low].")


def _remote_path(ctx, param, value):
    """--path is a path on the nodes: absolute, naming a file (checked before any node is asked)."""
    if value is None:
        return None
    from remotectl.pacemaker.authkey import remote_path_error

    error = remote_path_error(value)
    if error:
        raise click.BadParameter(error, ctx=ctx, param=param)
    return value


def _check_targets(targets, all_nodes):
    if not targets and not all_nodes:
        raise click.UsageError("give one or more TARGETs or --all")
    if targets and all_nodes:
        raise click.UsageError("TARGETs and --all cannot be used together")


def _load(app, targets, all_nodes, reporter):
    from remotectl.actions.targets import load_targets

    return load_targets(targets, all_nodes=all_nodes, cluster_factory=app.cluster, reporter=reporter)


@click.group("authkey")
def authkey_group():
    """Generate, fingerprint, push, verify and rotate the Pacemaker remote authkey.

    The key itself is never printed, logged or passed on a command line: only its fingerprint
    (sha256:<hex>) is shown. TARGET is a node name known to the cluster (cluster nodes are reached by name,
    remote nodes by their server address, guest nodes by remote-addr) or an SSH destination [user@]host[:port].
    """


# -- generate -------------------------------------------------------------------------------------------------------
@authkey_group.command("generate", short_help="Write a new random key (256 bytes, 0400, atomically).")
@click.option("--output", "-o", "output", default=DEFAULT_KEY, show_default=True, metavar="PATH|-",
              help="Where to write the key; '-' writes the raw key to stdout (only when it is not a terminal).")
@click.option("--bytes", "size", type=click.IntRange(MIN_BYTES, MAX_BYTES), default=DEFAULT_BYTES,
              show_default=True, metavar="N",
              help=f"Key size in bytes ({MIN_BYTES}..{MAX_BYTES}). 256 is what pcs uses and works with every TLS "
                   "stack; OpenSSL-based clients cannot use keys over 512 bytes.")
@click.option("--force", is_flag=True,
              help="Replace an existing regular file (never a symlink, device, FIFO or directory).")
@json_option
@pass_app
def generate_command(app, output, size, force, json_mode):
    """Write a new random key: mode 0400, owner hacluster:haclient when run as root (and those exist),
    created with its final mode before any byte is written, fsynced, then renamed into place."""
    from remotectl.actions import authkey as actions

    out = app.output(json_mode)
    if output == "-":
        if json_mode:
            raise click.UsageError("--json cannot be combined with --output - (stdout carries the key)")
        if sys.stdout.isatty():
            raise RefusedError("refusing to write a key to a terminal; redirect stdout to a file or a pipe")
        from remotectl.pacemaker.authkey import fingerprint, key_size_warning

        warning = key_size_warning(size)
        if warning:
            out.error_line(f"Warning: {warning}")
        data = actions.generate_key(size)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        out.error_line(f"wrote a {size}-byte key to stdout: {fingerprint(data)}")
        return ExitCode.OK
    result = actions.generate_to_file(output, size=size, force=force)
    if out.json_or_reports(result, result.reports):
        return ExitCode.OK
    out.line(f"wrote a new {result.size}-byte key to {result.path} "
             f"({result.owner}:{result.group} {result.mode_text})")
    out.line(result.fingerprint)
    return ExitCode.OK


# -- fingerprint ------------------------------------------------------------------------------------------------
@authkey_group.command("fingerprint", short_help="Print sha256:<hex> of a key file, never the key.")
@click.argument("path", default=DEFAULT_KEY, required=False, metavar="[PATH]")
@json_option
@pass_app
def fingerprint_command(app, path, json_mode):
    """Print sha256:<hex> of a key file (default /etc/pacemaker/authkey; '-' reads stdin). Never the key."""
    from remotectl.actions import authkey as actions

    out = app.output(json_mode)
    if path == "-":
        from remotectl.pacemaker.authkey import MAX_KEY_BYTES

        data = sys.stdin.buffer.read(MAX_KEY_BYTES + 1)
        if len(data) > MAX_KEY_BYTES:
            from remotectl.reports import RemotectlError

            raise RemotectlError(f"more than {MAX_KEY_BYTES} bytes on stdin; is it really a Pacemaker authkey?")
        result = actions.fingerprint_bytes(data)
    else:
        result = actions.fingerprint_file(path)
    if not out.json_or_reports(result, result.reports):
        out.line(result.fingerprint)
    return ExitCode.OK


# -- push -----------------------------------------------------------------------------------------------------------
@authkey_group.command("push", short_help="Install a key on nodes atomically, with backups.")
@click.option("--key", "key_path", default=DEFAULT_KEY, show_default=True, metavar="PATH",
              help="The local key file to distribute.")
@click.option("--path", "remote_path", metavar="REMOTE_PATH", callback=_remote_path,
              help="Where to write it on the nodes [default: the node's PCMK_authkey_location, from "
                   "/etc/sysconfig/pacemaker or /etc/default/pacemaker, else /etc/pacemaker/authkey].")
@_targets_args
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--no-backup", is_flag=True,
              help="Do not keep the replaced key as <path>.bak-<timestamp>-<its fingerprint>.")
@_parallel_option
@json_option
@pass_app
def push_command(app, key_path, remote_path, targets, all_nodes, dry_run, no_backup, workers, json_mode):
    """Install the key on nodes: atomically (private temp file with the final mode, content checked against
    its sha256, fsync, owner hacluster:haclient, rename), mode 0400, the previous key kept as a backup.
    Nodes that already have it are reported as unchanged. Each node is re-read afterwards to confirm. The write is
    conditional: a node whose key changed after push first looked (another write got there first) is left as it
    is and reported as changed-underneath. Ctrl-C stops at once and reports each node as written, not-written or
    unknown (its write was under way); a second Ctrl-C exits without that report.

    Exit status: 0 all done, 3 some nodes failed (the others were done), 1 all failed, 130 interrupted."""
    from remotectl.actions import authkey as actions
    from remotectl.reports import Reporter

    _check_targets(targets, all_nodes)
    out = app.output(json_mode)
    data, key_reports = actions.read_key(key_path)
    reporter = Reporter(list(key_reports))
    resolved = _load(app, targets, all_nodes, reporter)
    options = actions.PushOptions(path=remote_path, dry_run=dry_run, backup=not no_backup)
    with out.progress(len([t for t in resolved if not t.skip]), "pushing authkey") as advance:
        result = actions.push_key(resolved, app.ssh_runner, data, options, on_done=lambda _o: advance(),
                                  workers=actions.ssh_workers(workers))
    code = ExitCode.INTERRUPTED if result.interrupted else per_node_exit(result.nodes)
    if out.json_or_reports(result, reporter.reports + result.reports):
        return code
    rows = [(n.node, n.status, _short(n.fingerprint), n.mode_text, f"{n.owner}:{n.group}" if n.owner else None,
             n.path, n.detail) for n in result.nodes]
    out.table(["NODE", "STATUS", "FINGERPRINT", "MODE", "OWNER", "PATH", "DETAIL"], rows,
              title=f"{'dry run: ' if dry_run else ''}key {result.fingerprint} ({result.size} bytes)")
    for n in result.nodes:
        if n.status in ("written", "would-write"):
            before = n.previous_fingerprint or "no key"
            arrow = "would be" if n.status == "would-write" else "→"
            out.line(f"{n.node}: {before} {arrow} {result.fingerprint}"
                     + (f" (old key kept as {n.backup})" if n.backup else ""))
    out.line(", ".join(f"{count} {status}" for status, count in sorted(result.summary.items())))
    return code


# -- verify -----------------------------------------------------------------------------------------------------------
@authkey_group.command("verify", short_help="Compare the key on nodes by fingerprint; report problems.")
@click.option("--key", "key_path", metavar="PATH",
              help="Compare every node with this local key file instead of with the majority.")
@click.option("--path", "remote_path", metavar="REMOTE_PATH", callback=_remote_path,
              help="Check this path on the nodes [default: what Pacemaker reads there: PCMK_authkey_location from "
                   "/etc/sysconfig/pacemaker or /etc/default/pacemaker, else /etc/pacemaker/authkey, with the "
                   "pre-3.0 fallback to /etc/corosync/authkey].")
@_targets_args
@_parallel_option
@json_option
@pass_app
def verify_command(app, key_path, remote_path, targets, all_nodes, workers, json_mode):
    """Compare the key on nodes by fingerprint (the key never leaves the nodes) and report owner, mode, size,
    location problems (missing, unreadable by hacluster, world-readable, silent fallback to
    /etc/corosync/authkey before Pacemaker 3.0).

    Exit status: 0 all nodes have the same readable key and no problems; 3 some nodes could not be checked
    (the others are fine); 1 keys differ, a key is missing or has a problem."""
    from remotectl.actions import authkey as actions
    from remotectl.reports import Reporter

    _check_targets(targets, all_nodes)
    out = app.output(json_mode)
    reporter = Reporter()
    key = None
    if key_path:
        key, key_reports = actions.read_key(key_path)
        reporter.reports.extend(key_reports)
    resolved = _load(app, targets, all_nodes, reporter)
    with out.progress(len([t for t in resolved if not t.skip]), "checking authkeys") as advance:
        result = actions.verify_keys(resolved, app.ssh_runner, path=remote_path, key=key, key_path=key_path,
                                     on_done=lambda _o: advance(), workers=actions.ssh_workers(workers))
    code = result.exit_code()
    if out.json_or_reports(result, reporter.reports + result.reports):
        return code
    rows = [(n.node, n.state, _short(n.fingerprint), n.size, n.mode_text, f"{n.owner}:{n.group}" if n.owner else None,
             n.path, n.pacemaker_version) for n in result.nodes]
    out.table(["NODE", "STATE", "FINGERPRINT", "SIZE", "MODE", "OWNER", "PATH", "PACEMAKER"], rows)
    for n in result.nodes:
        for problem in n.problems:
            if problem.code != "skipped":
                out.line(f"{n.node}: {problem.severity}: {problem.message}")
    verdict = result.verdict
    head = "consistent" if verdict.consistent else "NOT consistent"
    out.line(f"{head}: {verdict.summary}")
    return code


# -- rotate -----------------------------------------------------------------------------------------------------------
@authkey_group.command("rotate", short_help="Replace the key on every node; roll back on failure.")
@click.option("--dry-run", is_flag=True, help="Print the plan (after checking every node is reachable); change "
                                              "nothing.")
@click.option("--restart", is_flag=True,
              help="Restart the daemons that keep the key in memory for their lifetime (Pacemaker 3.0.2+, or "
                   "unknown version): pacemaker on cluster nodes one at a time, then pacemaker_remote on remote and "
                   "guest nodes, under maintenance-mode=true and node maintenance; rolled back if a node does not "
                   "come back. Older nodes re-read the key within 60 s and are not restarted.")
@click.option("--restart-all", is_flag=True,
              help="Like --restart, but restart the nodes that re-read the key (before 3.0.2) as well.")
@click.option("--resume", is_flag=True,
              help="Finish an interrupted --restart (recorded in remotectl's cache on this machine): no new key; "
                   "restart what was not restarted yet and put back the maintenance values from before it.")
@click.option("--bytes", "size", type=click.IntRange(MIN_BYTES, MAX_BYTES), default=DEFAULT_BYTES,
              show_default=True, metavar="N", help="Size of the new key.")
@click.option("--path", "remote_path", metavar="REMOTE_PATH", callback=_remote_path,
              help="Write the key here on every node [default: each node's configured location].")
@click.argument("targets", nargs=-1, metavar="[TARGET]...", shell_complete=complete_node_names)
@_parallel_option
@json_option
@pass_app
def rotate_command(app, dry_run, restart, restart_all, resume, size, remote_path, targets, workers, json_mode):
    """Replace the key on every node (all cluster, remote and guest nodes; TARGETs only to work on a subset,
    which splits the cluster's keys).

    \b
    1. check every node is reachable and learn its key location and Pacemaker version (else change nothing);
    2. print the plan; with --dry-run stop here;
    3. push a new random key to every node, keeping each old key as <path>.bak-<timestamp>-<its fingerprint>;
    4. with --restart, restart what keeps the key in memory (see below);
    5. verify every node has the new key; on any failure in 3 or 5, restore the backup on every node already
       changed.

    Pacemaker up to 3.0.1 re-reads the key within 60 s of a new connection, so no restart is needed and
    established connections stay up. 3.0.2 and later read it once per daemon lifetime, in the cluster nodes'
    controllers and in every remoted, and a connection needs the same key at both ends. --restart therefore puts
    the remote and guest nodes in node maintenance and sets maintenance-mode=true (nothing is started, stopped,
    moved or fenced), restarts pacemaker on the cluster nodes one at a time (each waited for until it is a member
    again; the first that is not stops the procedure), then pacemaker_remote on the remote and guest nodes, puts
    maintenance-mode back, waits until every node is online, puts node maintenance back and waits until every
    resource is where it was. If a node does not come back, the old key is restored everywhere and the same
    daemons are restarted again. Bundle replicas (remoted inside a container) are refused: restarting bundle
    containers is not part of it. Without --restart such nodes are listed and keep the old key until their
    daemon restarts. Finally the safe probe (no takeover) checks that every remoted accepts the new key.

    Interrupted, --restart leaves the cluster in maintenance on purpose (ending it with some daemons on the new key
    and some on the old would break connections); --resume finishes the procedure, and any other rotation of
    these nodes is refused until then.

    Exit status: 0 done; 3 some nodes failed (the change was rolled back); 1 nothing could be done; 130
    interrupted (each node reported as written, not-written or unknown; nothing rolled back).
    """
    from remotectl.actions import authkey as actions
    from remotectl.reports import Reporter

    out = app.output(json_mode)
    reporter = Reporter()
    resolved = _load(app, targets, not targets, reporter)
    restarter = actions.Restarter(app.ssh_runner, app.cluster)

    def show_plan(lines):
        if not json_mode:
            out.line("Plan:")
            for line in lines:
                out.line("  " + line)
            sys.stdout.flush()

    with out.progress(len([t for t in resolved if not t.skip]), "pushing new authkey") as advance:
        result = actions.rotate_key(resolved, app.ssh_runner, size=size, path=remote_path, dry_run=dry_run,
                                    restart=restart, restart_all=restart_all, resume=resume, restarter=restarter,
                                    on_done=lambda _o: advance(), on_plan=show_plan,
                                    workers=actions.ssh_workers(workers))
    code = result.exit_code()
    if out.json_or_reports(result, reporter.reports + result.reports):
        return code
    if result.dry_run:
        out.line("dry run: nothing was changed")
        return code
    rows = [(n.node, n.status, _short(result.previous.get(n.node)), _short(n.fingerprint), n.backup, n.detail)
            for n in result.nodes]
    out.table(["NODE", "STATUS", "BEFORE", "AFTER", "BACKUP", "DETAIL"], rows)
    for r in result.restarts:
        if r.needed or r.status not in ("not-needed",):
            out.line(f"{r.kind} {r.node}: {r.status}: {r.message}")
    for p in result.probes:
        out.line(f"safe probe {p.node} ({p.address}) with the new key: {p.verdict}")
    if result.ok:
        out.line(f"rotated: every node has {result.fingerprint}")
    elif result.interrupted:
        out.line("rotation interrupted: nothing was rolled back; the written nodes keep their old key as BACKUP")
    elif result.rolled_back:
        out.line("rotation failed; the previous key was restored on every node that had been changed")
    else:
        out.line("rotation did not complete: see the errors above")
    return code
