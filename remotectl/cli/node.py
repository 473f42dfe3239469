"""`remotectl node add|add-guest|drain|resume|remove`: the lifecycle of remote and guest nodes, over plain SSH."""

from __future__ import annotations

import dataclasses

import click

from remotectl.cli.app import json_option, pass_app
from remotectl.cli.completion import complete_node_names
from remotectl.cli.confirm import ask, need_someone_to_ask
from remotectl.cli.options import DEFAULT_WAIT, wait_option

_MARK = {"done": "done", "unchanged": "ok", "checked": "ok", "would": "plan", "failed": "FAILED",
         "refused": "REFUSED", "skipped": "skip"}


_DONE = {"add": "added", "add-guest": "added", "remove": "removed", "drain": "drained", "resume": "resumed"}


def render(app, json_mode: bool, result) -> int:
    """Human: one line per step (`[done] key: …`), the outcome last; refusals and failures on stderr."""
    out = app.output(json_mode)
    if json_mode:
        out.json_document(result.to_json(), result.reports)
        return result.exit_code
    _steps(out, result.steps)
    out.reports(_not_in_steps(result))
    words = {"done": f"{result.node}: {result.command} done",
             "nothing-to-do": f"{result.node}: nothing to do (already {_DONE[result.command]})",
             "dry-run": f"{result.node}: dry run, nothing was changed",
             "refused": f"{result.node}: {result.command} refused, nothing was changed",
             "failed": (f"{result.node}: {result.command} failed after the changes marked done; "
                        "run the same command again to continue" if result.changed
                        else f"{result.node}: {result.command} failed, nothing was changed")}
    (out.error_line if result.outcome in ("refused", "failed") else out.line)(words[result.outcome])
    return result.exit_code


def _not_in_steps(result):
    """The reports to print under the steps: the failed step's own report (``node-step-failed``, kept for --json)
    says what its ``[FAILED]`` line already says."""
    failed = {step.detail for step in result.steps if step.status == "failed"}
    return [r for r in result.reports if not (r.code == "node-step-failed" and r.message in failed)]


def _steps(out, steps) -> None:
    for step in steps:
        line = f"[{_MARK.get(step.status, step.status)}] {step.step}: {step.detail}"
        if step.status in ("failed", "refused"):
            out.error_line(line)
        else:
            out.line(line)


@click.group("node")
def node_group():
    """Add, drain, resume and remove remote nodes (and add guest nodes) over plain SSH (one cluster node and the
    host)."""


def _wait(wait):
    return DEFAULT_WAIT if wait is None else wait


@node_group.command("add", short_help="Make a host a remote node: checks first, then key, firewall, service, resource.")
@click.argument("host", metavar="HOST")
@click.option("--name", help="The node's name (default: HOST without user@ and :port).")
@click.option("--address", help="The address cluster nodes connect to (default: HOST's host part).")
@click.option("--port", type=click.IntRange(1, 65535), default=3121, show_default=True)
@click.option("--reconnect-interval", default="60s", show_default=True, metavar="T",
              help="reconnect_interval of the connection resource.")
@click.option("--no-firewall", is_flag=True, help="Do not touch the host's firewall.")
@click.option("--dry-run", is_flag=True, help="Run the checks and show the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Apply the plan without asking.")
@wait_option("the node online", cib_note=False)
@json_option
@pass_app
def add_command(app, host, name, address, port, reconnect_interval, no_firewall, dry_run, yes, wait, json_mode):
    """Make HOST (an SSH destination [user@]host[:port]) a remote node of the cluster.

    Steps, each shown: preflight (pacemaker-remote installed and compatible, name free, no connection held on the
    host); open the port in the host's active firewall: firewalld (its zone, runtime and permanent, recorded in
    /var/lib/remotectl), ufw (a rule with a remotectl-node-add comment), else nftables when its input policy drops
    (a trial: then tested from every online cluster node, and refused, with the change undone, when one cannot
    reach it; a port someone else opened is left as it is; --no-firewall skips this); install the cluster's
    key; systemctl enable --now pacemaker_remote and wait until it listens; a full handshake + registration
    check; create the ocf:pacemaker:remote resource; wait until it is online. Running it again changes nothing.
    Without --yes the checks run first and the plan is shown, then a yes on the terminal applies it (--json and
    a missing terminal need --yes). Exit 4: refused or not confirmed, before any change; 1: failed after changes
    (listed; run again to continue).
    """
    from remotectl.actions.node_lifecycle import AddOptions, add_node

    options = AddOptions(name=name, address=address, port=port, reconnect_interval=reconnect_interval,
                         dry_run=dry_run, firewall=not no_firewall, wait=_wait(wait))
    return _plan_then_apply(app, json_mode, yes, f"add {host} as a remote node", host, options,
                            lambda cluster, opts: add_node(cluster, app.ssh_runner, host, opts))


def _plan_then_apply(app, json_mode: bool, yes: bool, what: str, where: str, options, work) -> int:
    """--yes / --dry-run: just run. Otherwise run the checks and show the plan (``options`` with dry_run), ask,
    then do it. ``work(cluster, options)`` returns the LifecycleResult."""
    if yes or options.dry_run:
        return render(app, json_mode, work(app.cluster(), options))
    need_someone_to_ask(json_mode, what)  # before contacting anything
    cluster = app.cluster()
    plan = work(cluster, dataclasses.replace(options, dry_run=True))
    if plan.outcome != "dry-run":  # refused (or failed) before any change: nothing to ask about
        return render(app, json_mode, plan)
    if not any(step.status == "would" for step in plan.steps):  # nothing would change: say so, as --yes would
        return render(app, json_mode, work(cluster, options))
    out = app.output(json_mode)
    _steps(out, plan.steps)
    out.reports(plan.reports)
    ask(what, f"Apply the steps marked [plan] to {where}?")
    return render(app, json_mode, work(cluster, options))


@node_group.command("add-guest", short_help="Make a running VM or container resource a guest node.")
@click.argument("host", metavar="HOST")
@click.option("--resource", required=True, metavar="RSC",
              help="The VM or container resource (a primitive, top level or in a group) that runs HOST.")
@click.option("--name", help="The guest node's name (default: HOST without user@ and :port).")
@click.option("--address", help="The address cluster nodes connect to (remote-addr; default: the name).")
@click.option("--port", type=click.IntRange(1, 65535), default=3121, show_default=True)
@click.option("--no-firewall", is_flag=True, help="Do not touch the guest's firewall.")
@click.option("--dry-run", is_flag=True, help="Run the checks and show the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Apply the plan without asking.")
@wait_option("the guest node online", cib_note=False)
@json_option
@pass_app
def add_guest_command(app, host, resource, name, address, port, no_firewall, dry_run, yes, wait, json_mode):
    """Make the guest HOST (an SSH destination [user@]host[:port]) that the running resource RSC (a VM or
    container) holds a guest node: the same host steps as node add (preflight, firewall trial, the cluster's key,
    systemctl enable --now pacemaker_remote, the pre-join check), then remote-addr/remote-port and, last,
    remote-node meta attributes on RSC, and a wait until the guest node is online. Running it again changes
    nothing. Without --yes the plan is shown first and confirmed on the terminal. Exit 4: refused or not
    confirmed, before any change; 1: failed after changes (listed; run again to continue).
    """
    from remotectl.actions.node_guest import GuestOptions, add_guest

    options = GuestOptions(name=name, address=address, port=port, dry_run=dry_run, firewall=not no_firewall,
                           wait=_wait(wait), resource=resource)
    return _plan_then_apply(app, json_mode, yes, f"add {host} as a guest node of {resource}", host, options,
                            lambda cluster, opts: add_guest(cluster, app.ssh_runner, host, opts))


@node_group.command("drain", short_help="Standby, wait until nothing runs there, stop its connection.")
@click.argument("node", metavar="NODE", shell_complete=complete_node_names)
@click.option("--force", is_flag=True, help="Allow draining a guest node (this stops the guest).")
@wait_option("no resource on the node, then the node disconnected", cib_note=False)
@json_option
@pass_app
def drain_command(app, node, force, wait, json_mode):
    """Take NODE out of service without fencing: standby, wait until no resource runs there, then set the
    connection resource's target-role=Stopped (for a guest node the container itself: needs --force).
    Exit 4: refused; 1: failed (a step did not finish in time)."""
    from remotectl.actions.node_remove import DrainOptions, drain_node

    return render(app, json_mode, drain_node(app.cluster(), node, DrainOptions(wait=_wait(wait), force=force)))


@node_group.command("resume", short_help="Enable its connection, wait online, unstandby.")
@click.argument("node", metavar="NODE", shell_complete=complete_node_names)
@wait_option("the node online and out of standby", cib_note=False)
@json_option
@pass_app
def resume_command(app, node, wait, json_mode):
    """Bring a drained NODE back: remove target-role from its connection (or container), wait until it is
    online, take it out of standby and wait until crm_mon shows it can take resources."""
    from remotectl.actions.node_remove import DrainOptions, resume_node

    return render(app, json_mode, resume_node(app.cluster(), node, DrainOptions(wait=_wait(wait))))


@node_group.command("remove", short_help="Drain, delete its resource (or guest meta), forget it, clean its host.")
@click.argument("node", metavar="NODE", shell_complete=complete_node_names)
@click.option("--host", help="SSH destination of the host to clean (default: the connection's server).")
@click.option("--keep-key", is_flag=True, help="Leave the authkey on the host.")
@click.option("--remove-constraints", is_flag=True, help="Also delete location constraints naming the node.")
@click.option("--dry-run", is_flag=True, help="Run the checks and show the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Apply the plan without asking.")
@wait_option("each step done", cib_note=False)
@json_option
@pass_app
def remove_command(app, node, host, keep_key, remove_constraints, dry_run, yes, wait, json_mode):
    """Remove remote or guest NODE: drain it, delete its connection resource (a guest: standby and wait until no
    resource runs there, then delete remote-node, remote-addr and remote-port from its VM or container resource,
    which keeps running), and with --remove-constraints the location constraints naming it, crm_node --force
    --remove, then on the host (a guest: inside it): systemctl disable --now, undo the firewall change node add
    made (its firewalld port, ufw or nftables rule; nothing else), remove the key (unless --keep-key). Running
    it again changes nothing. Without --yes the plan is shown first, then a yes on the terminal applies it.
    Exit 4: refused (cluster and bundle nodes, constraints without --remove-constraints) or not confirmed;
    1: failed."""
    from remotectl.actions.node_remove import RemoveOptions, remove_node

    options = RemoveOptions(host=host, keep_key=keep_key, remove_constraints=remove_constraints, dry_run=dry_run,
                            wait=_wait(wait))
    return _plan_then_apply(app, json_mode, yes, f"remove {node} from the cluster", node, options,
                            lambda cluster, opts: remove_node(cluster, app.ssh_runner, node, opts))
