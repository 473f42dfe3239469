"""Per-invocation state shared by every command: global options, lazily built connections, output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

import click

if TYPE_CHECKING:  # imported when used: --help and completion never need it
    from remotectl.output import Output


class App:
    """Built once by the root group from the global options; commands ask it for what they need."""

    def __init__(
        self,
        *,
        cluster_target: Optional[str],
        cib_file: Optional[str],
        ssh_config: Optional[str],
        identity_files: Tuple[str, ...],
        known_hosts: Optional[str],
        accept_new_host_keys: bool,
        verbosity: int,
        color: Optional[bool],
        cluster_factory: Optional[Callable[["App"], Any]] = None,
    ) -> None:
        self.cluster_target = cluster_target
        self.cib_file = cib_file
        self.verbosity = verbosity
        self.color = color
        self._ssh_settings = (ssh_config, identity_files, known_hosts, accept_new_host_keys)
        self._cluster = None
        self._cluster_factory = cluster_factory
        self._runners: Dict[str, object] = {}
        self._warned: set = set()

    def output(self, json_mode: bool = False) -> "Output":
        from remotectl.output import Output

        return Output(json_mode=json_mode, color=self.color, verbosity=self.verbosity)

    @property
    def ssh_options(self):
        from remotectl.transport.ssh import SshOptions

        config, identities, known_hosts, accept_new = self._ssh_settings
        return SshOptions(
            config_file=config,
            identity_files=identities,
            known_hosts=known_hosts,
            accept_new_host_keys=accept_new,
            on_warning=self._warn_once,
        )

    def _warn_once(self, message: str) -> None:
        """A warning from a transport, shown once per invocation however many connections meet it."""
        if message not in self._warned:
            self._warned.add(message)
            self.output().error_line(f"Warning: {message}")

    def ssh_runner(self, destination: str):
        """One shared connection per destination for the whole invocation."""
        from remotectl.transport.ssh import SshRunner

        if not self._runners:
            _route_paramiko_log(self.verbosity)
        if destination not in self._runners:
            self._runners[destination] = SshRunner(destination, self.ssh_options)
        return self._runners[destination]

    def cluster(self):
        """The cluster client chosen by --cib / --cluster (default: local when Pacemaker is installed)."""
        if self._cluster is None and self._cluster_factory is not None:
            self._cluster = self._cluster_factory(self)
        if self._cluster is None:
            from remotectl.transport import cluster

            if self.cib_file:
                self._cluster = cluster.CibFileCluster(self.cib_file)
            else:
                target = self.cluster_target or cluster.default_cluster_target()
                if target == "local":
                    self._cluster = cluster.LocalCluster()
                else:
                    self._cluster = cluster.SshCluster(self.ssh_runner(target))
        return self._cluster

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()


def _route_paramiko_log(verbosity: int) -> None:
    """paramiko logs every failed handshake (a stalled or resetting host) with a traceback; without a handler of
    its own, Python prints that on stderr. The failure already reaches the operator as one line: show paramiko's
    log only with -vv."""
    import logging

    log = logging.getLogger("paramiko")
    if log.handlers:
        return
    if verbosity >= 2:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("paramiko: %(message)s"))
        log.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    log.addHandler(handler)
    log.propagate = False


pass_app = click.make_pass_decorator(App)

json_option = click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")
