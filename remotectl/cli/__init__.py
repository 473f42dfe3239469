"""The click tree: global options, command registration and the single exit point."""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional

import click

from remotectl import __version__
from remotectl.cli.app import App
from remotectl.cli.lazy import LazyGroup
from remotectl.display import for_terminal
from remotectl.reports import ExitCode, RemotectlError

EPILOG = """\b
Exit codes: 0 ok, 1 failure, 2 usage error, 3 partial (some nodes failed),
4 refused as unsafe or unconfirmed (needs --force or --yes), 130 interrupted."""


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(__version__, "--version", prog_name="remotectl", message="%(prog)s %(version)s")
@click.option(
    "--cluster",
    "cluster_target",
    envvar="REMOTECTL_CLUSTER",
    show_envvar=True,
    metavar="TARGET",
    help="'local', or a cluster node to run Pacemaker's tools on over SSH: [user@]host[:port]. "
    "Default: local when Pacemaker's tools are installed here.",
)
@click.option(
    "--cib",
    "cib_file",
    envvar="REMOTECTL_CIB",
    show_envvar=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Work on an offline CIB file (e.g. a cibadmin -Q dump) instead of a live cluster.",
)
@click.option(
    "--ssh-config",
    envvar="REMOTECTL_SSH_CONFIG",
    show_envvar=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="OpenSSH client config to honour [default: ~/.ssh/config].",
)
@click.option(
    "--identity",
    "identity_files",
    envvar="REMOTECTL_IDENTITY",
    show_envvar=True,
    metavar="FILE",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Extra SSH private key (the agent and default identities are used too). Repeatable.",
)
@click.option(
    "--known-hosts",
    envvar="REMOTECTL_KNOWN_HOSTS",
    show_envvar=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="known_hosts file for SSH host keys [default: ~/.ssh/known_hosts].",
)
@click.option(
    "--accept-new-host-keys",
    envvar="REMOTECTL_ACCEPT_NEW_HOST_KEYS",
    show_envvar=True,
    is_flag=True,
    help="Record unknown SSH host keys (like OpenSSH's accept-new). Changed keys are always refused.",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv: tracebacks for internal errors).")
@click.option("-q", "--quiet", count=True, help="Less output on stderr.")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set or stdout is not a terminal).")
@click.pass_context
def cli(ctx, cluster_target, cib_file, ssh_config, identity_files, known_hosts, accept_new_host_keys, verbose, quiet,
        no_color):
    """Operate Pacemaker clusters with pacemaker_remote nodes: list remote and guest nodes, manage the shared
    authkey, check port 3121 and the PSK key without disturbing live nodes, and drive standby, constraints and
    fencing through Pacemaker's own tools."""
    if cluster_target and cib_file:
        raise click.UsageError("--cluster and --cib cannot be used together")
    settings: Dict[str, Any] = ctx.obj if isinstance(ctx.obj, dict) else {}
    settings["verbosity"] = verbose - quiet
    app = App(
        cluster_target=cluster_target,
        cib_file=cib_file,
        ssh_config=ssh_config,
        identity_files=tuple(identity_files),
        known_hosts=known_hosts,
        accept_new_host_keys=accept_new_host_keys,
        verbosity=verbose - quiet,
        color=False if no_color else None,
        cluster_factory=settings.get("cluster_factory"),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from remotectl.cli import commands

    for name, target in commands.LAZY.items():
        cli.add_lazy_command(name, target)


_register()


def run(argv: Optional[List[str]] = None, *, cluster_factory: Optional[Callable[[App], Any]] = None) -> int:
    """Run one invocation and return its exit code: every outcome maps to a documented code, never a traceback
    for expected errors. ``cluster_factory(app)`` replaces the cluster client --cib/--cluster would build (the
    seam for in-process tests of the human output)."""
    settings: Dict[str, Any] = {"verbosity": 0, "cluster_factory": cluster_factory}
    if sys.stdout is None or sys.stderr is None:  # started with a closed stdout or stderr (>&-)
        if sys.stderr is not None:
            sys.stderr.write("remotectl: error: standard output is closed; nothing can be printed\n")
        return int(ExitCode.FAILURE)
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 terminal shows "\u2192" rather than failing
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = cli.main(args=argv, prog_name="remotectl", standalone_mode=False, obj=settings)
        if code is None:
            code = ExitCode.OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("remotectl: aborted", err=True)
        code = ExitCode.INTERRUPTED
    except RemotectlError as exc:
        click.echo(f"remotectl: error: {for_terminal(exc.message)}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("remotectl: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        code = ExitCode.FAILURE
    except OSError as exc:  # a local limit: full or failing stdout, too many open files, ...
        click.echo(f"remotectl: error: {_local_failure(exc)}", err=True)
        _silence_stdout()
        code = ExitCode.FAILURE
    except Exception as exc:  # a bug: say so in one line, the traceback only on request
        if settings["verbosity"] >= 2:
            import traceback

            traceback.print_exc()
        click.echo(f"remotectl: internal error: {type(exc).__name__}: {for_terminal(str(exc))} "
                   f"(re-run with -vv for details)", err=True)
        code = ExitCode.FAILURE
    return int(code)


def _local_failure(exc: OSError) -> str:
    import errno

    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return "too many open files (raise the limit with ulimit -n, or use fewer targets at once)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write the output: {exc.strerror}"
    return for_terminal(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


def _silence_stdout() -> None:
    """After stdout failed, point it at /dev/null so that the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _interrupted(_signum, _frame) -> None:
    """The first Ctrl-C: from now on another one ends the process at once (swapped before anything else can run,
    so no second KeyboardInterrupt can land in the reporting of the first), then a KeyboardInterrupt, which the
    command turns into its report of what was done."""
    import signal

    signal.signal(signal.SIGINT, _interrupted_again)
    raise KeyboardInterrupt


def _interrupted_again(_signum, _frame) -> None:
    import os

    os.write(2, b"remotectl: interrupted again: exiting now\n")
    os._exit(int(ExitCode.INTERRUPTED))


def main(argv: Optional[List[str]] = None) -> None:
    """The console script: the only place that exits."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when Ctrl-C is ignored (nohup, &)
        signal.signal(signal.SIGINT, _interrupted)
    sys.exit(run(argv))
