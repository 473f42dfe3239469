"""`remotectl doctor`: what is wrong with each remote and guest node, why, and the command that fixes it."""

from __future__ import annotations

import click

from remotectl.cli.app import pass_app
from remotectl.cli.confirm import ask, need_someone_to_ask
from remotectl.reports import ExitCode, RemotectlError

NAGIOS = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def _complete_nodes(ctx, param, incomplete):
    from remotectl.cli.completion import complete_node_names

    return complete_node_names(ctx, param, incomplete)


@click.command("doctor")
@click.argument("names", nargs=-1, metavar="[NODE...]", shell_complete=_complete_nodes)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "nagios", "prometheus"]), default=None,
              help="Output format [default: text; json with --json].")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout (--format json).")
@click.option("--timeout", type=click.FloatRange(min=0.05, max=600), default=5.0, show_default=True, metavar="S",
              help="Seconds for each TCP connect and TLS answer of the safe probe.")
@click.option("--fix", "fix", is_flag=True,
              help="Apply the safe, reversible fixes (shown as a plan, then asked), then check again.")
@click.option("--yes", is_flag=True, help="With --fix: apply without asking.")
@pass_app
def doctor_command(app, names, fmt, json_mode, timeout, fix, yes):
    """Say what is wrong with each remote and guest node (or the NODEs named), why, and the command that fixes it.

    Read-only, and without disturbing any node: the key is checked with the safe probe from every online cluster
    node (the handshake is never completed), key files, env files, versions and (X.509 mode) certificates are read
    over SSH, and the pacemaker-remoted service is asked about on each host. With --cib FILE only the checks that need no live node
    run (no-reconnect-interval, connection-misuse, stale-node, failed-connection); the others are listed as
    skipped.

    \b
    Checks (the "check" of each finding):
      key-mismatch           a node holds another key than the others, or a remote's
                             pacemaker-remoted answers the probe with another key
      port-unreachable       the port is refused / times out / unroutable / unresolvable
                             from a cluster node, or no TLS answer comes
      service-down           pacemaker-remoted not running or not listening on the port
      key-unreadable         key missing, empty, < 16 bytes, unreadable by hacluster on a
                             cluster node, or loose permissions
      no-reconnect-interval  a connection resource without reconnect_interval
      failed-connection      failed operations / fail counts of a connection resource
      stale-node             node entry or status left without a connection resource
      connection-misuse      a connection resource in a group, order or colocation
      config-drift           PCMK_remote_port, PCMK_authkey_location or PCMK_tls_priorities
                             differ between nodes (or from the CIB)
      version-skew           Pacemaker versions that do not go together well
      cert-expiry            X.509: a node's certificate expired (critical) or ends
                             within 30 days (warning)
      tls-mode-mixed         some nodes use X.509, others the PSK authkey
      tls-mode-mismatch      a remote/guest node in another mode than a cluster node
                             that connects to it (the cluster fences it)
      x509-client-unverified Pacemaker 3.0.2/3.0.3 in X.509 mode on a remote/guest node
                             accepts client certificates of any CA (takeover risk)
      node-offline           a node is offline and no other check explains it

    Each finding has a severity (critical, warning, info), the node, one line of evidence, and a fix: a command
    line and where to run it (here, any cluster node, or the node itself), or none when it needs a person. The
    finding that explains why a node is offline is marked as its cause.

    --format nagios prints one status line with perfdata; --format prometheus the text exposition format (for
    node_exporter's textfile collector).

    --fix applies only what is safe and reversible: the cleanup of a failed connection once its cause is gone (no
    other finding for the node, and every cluster node reaches it with the matching key), owner and mode (hacluster:haclient 0400, as authkey push sets them) of a key file that
    holds the key most nodes hold, and the removal of a stale node entry. They are shown as a plan and asked about
    on the terminal (--yes: not asked; --json needs --yes). Every other fix stays a printed command. Then doctor
    checks again and says per fix: applied, failed or skipped (and why); the exit status is that of the check
    after the fixes. Exit 4: not confirmed (nothing was changed).

    Exit status: 0 healthy (info findings only), 3 warnings only, 1 any critical finding (or doctor could not
    run); with --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    """
    from remotectl.actions import doctor as action

    fmt = fmt or ("json" if json_mode else "text")
    if json_mode and fmt != "json":
        raise click.UsageError("--json is --format json; give one of them")
    if (yes and not fix) or (fix and fmt in ("nagios", "prometheus")):
        raise click.UsageError("--yes goes with --fix" if not fix else f"--fix does not go with --format {fmt}")
    out = app.output(fmt != "text")
    what = "apply the safe fixes doctor finds"
    if fix and not yes:
        need_someone_to_ask(fmt == "json", what)  # before contacting anything
    try:
        cluster = app.cluster()
        if fix and not cluster.live:
            raise click.UsageError("--fix needs the live cluster, not --cib FILE")
        with out.progress_later("checking") as progress:
            result = action.run_doctor(cluster, list(names), runner_for=app.ssh_runner if cluster.live else None,
                                       on_progress=progress.advance, timeout=timeout,
                                       progress_total=progress.start)
        if fix:
            result = _fix(app, out, cluster, result, list(names), timeout, yes, what)
    except RemotectlError as exc:
        if exc.exit_code == ExitCode.USAGE:
            raise click.UsageError(exc.message) from None
        if fmt == "nagios":
            click.echo(f"REMOTECTL DOCTOR UNKNOWN - {_one_line(exc.message)}")
            return NAGIOS["unknown"]
        raise
    if fmt == "json":
        out.json_document(result.to_json(), result.reports)
        return result.exit_code()
    if fmt == "nagios":
        click.echo(render_nagios(result))
        counts = result.counts
        return NAGIOS["critical"] if counts["critical"] else NAGIOS["warning"] if counts["warning"] else NAGIOS["ok"]
    if fmt == "prometheus":
        click.echo(render_prometheus(result), nl=False)
        return result.exit_code()
    out.reports(result.reports)
    if result.fixes is not None:
        render_fixes(out, result.fixes)
    render_text(out, result)
    return result.exit_code()


def _fix(app, out, cluster, before, names, timeout, yes, what):
    """The plan (findings with a safe fix), a yes on the terminal unless --yes, the fixes, the check after them."""
    from remotectl.actions import doctor_fix

    fixes = doctor_fix.plan_fixes(before)
    if not any(item.status == "planned" for item in fixes):
        before.fixes = fixes
        return before
    if not yes:
        render_text(out, before)
        render_fixes(out, fixes)
        ask(what, "Apply the fixes marked [plan]?")
    return doctor_fix.apply_fixes(cluster, fixes, names, runner_for=app.ssh_runner, timeout=timeout)


_MARK = {"planned": "plan", "applied": "done", "failed": "FAILED", "skipped": "skip"}


def render_fixes(out, fixes) -> None:
    for item in fixes:
        on = {"here": "here", "cluster": "on a cluster node"}.get(item.fix_on or "", f"on {item.fix_on}")
        line = f"[{_MARK[item.status]}] {item.check} {item.node or '-'}: {item.fix} ({on})"
        out.line(line + (f": {item.reason}" if item.reason else ""))


def _one_line(text: str) -> str:
    from remotectl.display import for_terminal

    return for_terminal(" ".join(str(text).split()))


def render_text(out, result) -> None:
    for finding in result.findings:
        where = finding.node or "-"
        cause = f"  [why {finding.node} is offline]" if finding.cause else ""
        out.line(f"{finding.severity.upper():8} {finding.check:22} {where}{cause}")
        out.line(f"  {finding.message}")
        if finding.fix:
            on = {"here": "here", "cluster": "on a cluster node"}.get(finding.fix_on or "", f"on {finding.fix_on}")
            out.line(f"  fix ({on}): {finding.fix}")
    for skipped in result.skipped:
        out.line(f"skipped {skipped['check']}: {skipped['reason']}")
    counts = result.counts
    peers = len(result.nodes)
    what = f"{peers} remote/guest node{'s' if peers != 1 else ''}"
    if result.healthy:
        tail = f", {counts['info']} note{'s' if counts['info'] != 1 else ''}" if counts["info"] else ""
        out.line(f"healthy: no problem found on {what}{tail}")
    else:
        out.line(f"{counts['critical']} critical, {counts['warning']} warning, {counts['info']} info on {what}")


def render_nagios(result) -> str:
    counts = result.counts
    state = "CRITICAL" if counts["critical"] else "WARNING" if counts["warning"] else "OK"
    worst = [f for f in result.findings if f.severity in ("critical", "warning")]
    if worst:
        text = "; ".join(f"{f.node or 'cluster'} {f.check}" for f in worst[:5])
        if len(worst) > 5:
            text += f"; {len(worst) - 5} more"
    else:
        text = f"{len(result.nodes)} remote/guest nodes healthy"
    offline = sum(1 for n in result.nodes if not n.online)
    perf = (f"critical={counts['critical']};;1 warning={counts['warning']};1 info={counts['info']} "
            f"nodes={len(result.nodes)} offline={offline}")
    return f"REMOTECTL DOCTOR {state} - {_one_line(text).replace('|', '/')} | {perf}"


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def render_prometheus(result) -> str:
    """Text exposition format, one gauge family per fact."""
    lines = []

    def family(name: str, help_text: str, samples) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            text = ",".join(f'{key}="{_label(val)}"' for key, val in labels)
            lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")

    nodes = result.nodes
    family("remotectl_node_online", "1 when the remote or guest node is online.",
           [((("node", n.node), ("type", n.type)), int(n.online)) for n in nodes])
    family("remotectl_node_key_match", "1 when every cluster node's safe probe matched the node's key.",
           [((("node", n.node),), int(n.key_match)) for n in nodes if n.key_match is not None])
    family("remotectl_node_port_open", "1 when the cluster node could open a TCP connection to the node's port.",
           [((("node", n.node), ("from", source)), int(is_open)) for n in nodes
            for source, is_open in sorted(n.port_open.items())])
    family("remotectl_node_fail_count", "Fail count of the node's connection resource, over all cluster nodes.",
           [((("node", n.node),), n.fail_count) for n in nodes])
    counts = result.counts
    family("remotectl_doctor_findings", "Findings of remotectl doctor by severity.",
           [((("severity", severity),), counts[severity]) for severity in ("critical", "warning", "info")])
    family("remotectl_doctor_finding", "1 per finding, by check and node.",
           [((("check", f.check), ("severity", f.severity), ("node", f.node or "")), 1) for f in result.findings])
    return "\n".join(lines) + "\n"
