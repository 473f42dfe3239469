"""The restart half of `authkey rotate --restart`: make every daemon that keeps the key in memory (Pacemaker
3.0.2+) load the new one without the cluster losing a node, fencing one, or moving resources. `tls enable` and
`tls disable` (remotectl/actions/tls/switch.py) run the same procedure to switch every daemon's mode (PSK or
X.509, read once at start), through its hooks: edit the env files once maintenance is set, prove the new mode
with the safe probe and roll back before it ends.

Why this order (measured on the hosts lab, 3.0.3; facts in controld_remote_ra.c, controld_execd_state.c and
pacemaker-execd.c of Pacemaker 3.0.2):
* Both ends of a remote connection load the key once per process and an established session never checks it
  again, but every new connection needs the same key in the cluster node's controller and in the remoted: no
  connection may be made while one end holds the new key and the other the old ("Key was rejected", a hard
  error that ends reconnecting). So all cluster nodes are restarted before any remoted, and no connection is
  started in between: maintenance-mode=true (nothing is started, stopped, moved, recovered or fenced; a restarted
  cluster node leaves its resources running and its remote connections just drop).
* Node maintenance on each remote and guest node as well. remoted's stop asks the cluster to stop its resources
  first and waits (TimeoutStopSec=30min) unless the node's connection is unmanaged ("not managed so no ordered
  shutdown"). And leaving maintenance-mode with a guest whose connection is down while its resources are thought
  active makes the scheduler fence the guest (recover its container); with node maintenance still on, it starts
  the connection and probes instead.
* Cluster nodes one at a time, each waited for until it is a full member again (corosync keeps running, so quorum
  is untouched); then remoted on the remote and guest nodes; then maintenance-mode back (the connections start,
  new key on both ends), wait until every node is online, node maintenance back, wait until the resources are
  where they were.
* Interrupted (Ctrl-C, a lost connection to this machine), the cluster stays in maintenance on purpose: ending it
  with some daemons on the new key and some on the old would break connections. The journal says where to go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from remotectl.actions.authkey.facts import RunnerFactory
from remotectl.actions.targets import Target
from remotectl.jsonable import jsonable
from remotectl.pacemaker import authkey as model
from remotectl.pacemaker import tools
from remotectl.reports import RemotectlError, Reporter

REMOTE_PORT = 3121


@dataclass
class RestartOutcome:
    """One row of the restart procedure: a daemon restart (kind cluster|remote|guest, node = the node) or a
    cluster-wide step (kind maintenance-mode|node-maintenance|wait, node = the node it concerns or "cluster")."""

    node: str
    kind: str
    command: Optional[str]
    needed: bool
    status: str  # done | not-needed | failed | planned | skipped
    message: str

    @classmethod
    def of(cls, step: model.RestartStep, *, status: str, message: Optional[str] = None,
           command: bool = True) -> "RestartOutcome":
        """`command`: show the step's command line (left out for steps that are not run)."""
        return cls(node=step.node, kind=step.kind, command=" ".join(step.argv) if command else None,
                   needed=step.needed, status=status, message=step.reason if message is None else message)

    def to_json(self) -> dict:
        return jsonable(self)


def _placement(status) -> Dict[str, Tuple[str, ...]]:
    return {rid: tuple(sorted(r.nodes)) for rid, r in status.resources.items() if r.active}


class Restarter:
    """Runs the restart steps over SSH and the cluster's tools; ``clock``/``sleep`` are injected so that waiting
    can be tested without waiting."""

    def __init__(self, runner_factory: RunnerFactory, cluster_factory: Optional[Callable[[], object]],
                 *, online_timeout: float = 300.0, poll: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.runner_factory = runner_factory
        self.cluster_factory = cluster_factory
        self.online_timeout = online_timeout
        self.poll = poll
        self.clock = clock
        self.sleep = sleep

    def run_on(self, destination: str, argv: Sequence[str], timeout: Optional[float] = None) -> Tuple[bool, str]:
        result = self.runner_factory(destination).run(list(argv), timeout=timeout or self.online_timeout)
        return result.rc == 0, result.first_error_line() if result.rc else "ok"

    def cluster_tool(self, argv: Sequence[str]) -> Tuple[bool, str]:
        if self.cluster_factory is None:
            return False, "no cluster to ask"
        result = self.cluster_factory().run_tool(list(argv))
        return result.rc == 0, result.first_error_line() if result.rc else "ok"

    def query(self, argv: Sequence[str]) -> Optional[str]:
        """The value a crm_attribute/crm_resource query printed; None when unset or the cluster cannot be asked."""
        if self.cluster_factory is None:
            return None
        result = self.cluster_factory().run_tool(list(argv))
        return tools.attribute_value(result.stdout) if result.rc == 0 else None

    def maintenance_mode(self) -> Optional[str]:
        return self.query(tools.cluster_property_query("maintenance-mode"))

    def status(self, destination: Optional[str] = None):
        """crm_mon's view, from the cluster (or from the node at `destination` itself); None when not answered."""
        from remotectl.pacemaker.status import read_status

        try:
            if destination is None:
                return read_status(self.cluster_factory().crm_mon_xml())
            result = self.runner_factory(destination).run(tools.crm_mon_xml(), timeout=30)
            return read_status(result.stdout) if result.rc == 0 else None
        except RemotectlError:
            return None

    def offline(self, names: Sequence[str]) -> List[str]:
        """Those of `names` that are not online now (all of them when the cluster cannot be asked)."""
        status = self.status() if self.cluster_factory is not None else None
        if status is None:
            return list(names)
        return [n for n in names if not (status.node(n) and status.node(n).online and not status.node(n).pending)]

    def wait_until(self, done: Callable[[], bool], timeout: Optional[float] = None) -> bool:
        deadline = self.clock() + (self.online_timeout if timeout is None else timeout)
        while True:
            if done():
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(self.poll)

    def wait_online(self, names: Sequence[str]) -> Tuple[bool, List[str]]:
        """Until every named node is online and not pending (crm_mon), or the timeout; returns those still not."""
        missing: List[str] = list(names)

        def check() -> bool:
            missing[:] = self.offline(names)
            return not missing

        return self.wait_until(check), missing

    def wait_rejoined(self, target: Target) -> bool:
        """A restarted cluster node is back when its own crm_mon (the new daemons) and the cluster's both show it
        online and not pending: the cluster's view alone may still be the one from before the restart."""
        def check() -> bool:
            own = self.status(target.host)
            me = own.node(target.label) if own is not None else None
            return bool(me and me.online and not me.pending) and not self.offline([target.label])

        return self.wait_until(check)

    def wait_listening(self, target: Target) -> bool:
        """remoted's unit is Type=simple: systemctl returns before it listens."""
        from remotectl.transport import hostops

        runner = self.runner_factory(target.host)

        def check() -> bool:
            try:
                return hostops.host_state(runner, target.port or REMOTE_PORT).listening is not False
            except RemotectlError:
                return False

        return self.wait_until(check, timeout=min(self.online_timeout, 60.0))

    def probe(self, addresses: Sequence[Tuple[str, int]], key: bytes) -> List[str]:
        """The safe probe's verdicts (raises psk_probe.ProbeError when it cannot run here)."""
        from remotectl.transport import psk_probe

        return [result.verdict for result in psk_probe.probe_many(list(addresses), key)]

    def probe_x509(self, targets: Sequence[Tuple[str, int, Sequence[str]]], ca_pem: bytes) -> List[str]:
        """The X.509 safe probe's verdicts against the CA (PEM bytes, loaded from memory) (host, port, names the
        certificate must carry); raises psk_probe.ProbeError when it cannot run here."""
        from remotectl.transport import x509_probe

        return [result.verdict for result in x509_probe.probe_many(list(targets), ca_pem=ca_pem)]

    def placement(self) -> Optional[Dict[str, Tuple[str, ...]]]:
        status = self.status() if self.cluster_factory is not None else None
        return None if status is None else _placement(status)


# -- the journal: what an interrupted procedure leaves for --resume ---------------------------------------------------
class Journal:
    """The procedure's progress in the private cache (``<kind>-<cluster>.json``): what it leads to (the new key's
    or the CA's fingerprint), the maintenance values to put back, the daemons already restarted, and what the
    procedure itself needs to go on or undo (`extra`, e.g. the env file backups of `tls enable`). Written before
    the first change and after every restart, removed when the procedure ends, so a run cut short (Ctrl-C, a lost
    SSH connection) can be finished with `--resume` instead of leaving the cluster in maintenance."""

    def __init__(self, nodes: Sequence[str], fingerprint: Optional[str] = None, *,
                 kind: str = "rotate-restart") -> None:
        import hashlib

        self.name = kind + "-" + hashlib.sha256("\0".join(sorted(nodes)).encode()).hexdigest()[:16] + ".json"
        self.fingerprint = fingerprint
        self.previous_mode: Optional[str] = None
        self.previous_nodes: Dict[str, Optional[str]] = {}
        self.done: List[str] = []
        self.entered = False
        self.extra: Dict[str, object] = {}

    def load(self) -> bool:
        """Take over what an interrupted run stored; False when there is none."""
        from remotectl.transport import cache

        document = cache.read_json(self.name)
        if not document or not isinstance(document.get("fingerprint"), str):
            return False
        self.fingerprint = document["fingerprint"]
        self.previous_mode = document.get("maintenance_mode")
        self.previous_nodes = dict(document.get("node_maintenance") or {})
        self.done = [str(n) for n in document.get("done") or []]
        self.entered = bool(document.get("entered"))
        self.extra = dict(document.get("extra") or {})
        return True

    def save(self) -> None:
        from remotectl.transport import cache

        cache.write_json(self.name, {"fingerprint": self.fingerprint, "maintenance_mode": self.previous_mode,
                                     "node_maintenance": self.previous_nodes, "done": self.done,
                                     "entered": self.entered, "extra": self.extra})

    def remove(self) -> None:
        from remotectl.transport import cache

        cache.remove_json(self.name)


# -- the procedure -----------------------------------------------------------------------------------------------
def _row(node: str, kind: str, status: str, message: str, argv: Optional[Sequence[str]] = None) -> RestartOutcome:
    return RestartOutcome(node=node, kind=kind, command=" ".join(argv) if argv else None, needed=True,
                          status=status, message=message)


class Procedure:
    """One run of the restart procedure; `rows` is its per-step record, in order. The hooks of run_restarts get
    it to add their own rows and restart daemons again."""

    def __init__(self, targets: Dict[str, Target], restarter: Restarter, reporter: Reporter) -> None:
        self.targets = targets
        self.r = restarter
        self.reporter = reporter
        self.rows: List[RestartOutcome] = []

    def tool(self, node: str, kind: str, argv: Sequence[str], done: str, code: str) -> bool:
        ok, message = self.r.cluster_tool(argv)
        self.rows.append(_row(node, kind, "done" if ok else "failed", done if ok else message, argv))
        if not ok:
            self.reporter.error(f"{' '.join(argv)} failed: {message}", code=code)
        return ok

    def enter(self, peers: Sequence[str]) -> Optional[Tuple[Optional[str], Dict[str, Optional[str]]]]:
        """Node maintenance on every remote/guest node, then maintenance-mode=true; the previous values, or None
        (after putting back what was set) when the cluster refused."""
        previous_mode = self.r.maintenance_mode()
        previous_nodes: Dict[str, Optional[str]] = {}
        for node in peers:
            previous_nodes[node] = self.r.query(tools.attribute_query(node, "maintenance"))
            if not self.tool(node, "node-maintenance", tools.attribute_update(node, "maintenance", "true"),
                             "node maintenance on: the cluster neither stops nor recovers what runs there",
                             "maintenance-mode-not-set"):
                self.leave_nodes(previous_nodes)
                return None
        if not self.tool("cluster", "maintenance-mode", tools.cluster_property_update("maintenance-mode", "true"),
                         "maintenance-mode=true: nothing is started, stopped, moved or fenced",
                         "maintenance-mode-not-set"):
            self.leave_nodes(previous_nodes)
            return None
        return previous_mode, previous_nodes

    def leave_mode(self, previous: Optional[str]) -> bool:
        argv = tools.cluster_property_delete("maintenance-mode") if previous is None else \
            tools.cluster_property_update("maintenance-mode", previous)
        return self.tool("cluster", "maintenance-mode", argv, f"maintenance-mode back to {previous or 'unset'}",
                         "maintenance-mode-not-restored")

    def leave_nodes(self, previous: Dict[str, Optional[str]]) -> None:
        for node, value in previous.items():
            argv = tools.attribute_delete(node, "maintenance") if value is None else \
                tools.attribute_update(node, "maintenance", value)
            self.tool(node, "node-maintenance", argv, f"node maintenance back to {value or 'unset'}",
                      "maintenance-mode-not-restored")

    def restart(self, step: model.RestartStep) -> bool:
        target = self.targets[step.node]
        ok, message = self.r.run_on(target.host, step.argv, timeout=min(self.r.online_timeout, 180.0))
        if ok and step.kind == "cluster" and not self.r.wait_rejoined(target):
            ok, message = False, f"not a member again within {self.r.online_timeout:g} s"
        elif ok and step.kind != "cluster" and not self.r.wait_listening(target):
            ok, message = False, "pacemaker-remoted does not listen again"
        self.rows.append(RestartOutcome.of(step, status="done" if ok else "failed", message=None if ok else message))
        if not ok:
            self.reporter.error(f"restart failed: {message}", node=step.node, code="restart-failed")
        return ok

    def restart_each(self, steps: Sequence[model.RestartStep], resumed: Optional[Journal] = None,
                     journal: Optional[Journal] = None) -> Tuple[List[str], bool]:
        """Cluster nodes one at a time, then the rest; the first cluster node that does not come back stops it.
        `resumed`: the interrupted run's journal (its daemons are not restarted again); `journal`: recorded as it
        goes. Returns (the nodes restarted, whether a cluster node failed)."""
        done: List[str] = []
        failed = False  # a cluster node did not come back: stop (every other daemon still holds the old key)
        for step in [s for s in steps if s.kind == "cluster"] + [s for s in steps if s.kind != "cluster"]:
            if failed:
                self.rows.append(RestartOutcome.of(step, status="skipped", message="not restarted: a cluster node "
                                                   "did not come back"))
                continue
            if resumed is not None and step.node in resumed.done:
                self.rows.append(RestartOutcome.of(step, status="done", message="restarted before the "
                                                   "interruption"))
                done.append(step.node)
                continue
            try:
                ok = self.restart(step)
            except RemotectlError as exc:
                self.rows.append(RestartOutcome.of(step, status="failed", message=exc.message))
                self.reporter.error(f"restart failed: {exc.message}", node=step.node, code="restart-failed")
                ok = False
            if ok:
                done.append(step.node)
                if journal is not None:
                    journal.done.append(step.node)
                    journal.save()
            elif step.kind == "cluster":
                failed = True
            # a remoted that fails does not stop the others: the cluster nodes hold the new key by now, so every
            # remoted left on the old one would be refused ("Key was rejected") once maintenance ends
        return done, failed


def run_restarts(steps: Sequence[model.RestartStep], targets: Dict[str, Target], restarter: Restarter,
                 reporter: Reporter, journal: Optional[Journal] = None, *,
                 prepare: Optional[Callable[[Procedure], bool]] = None,
                 finish: Optional[Callable[[Procedure, List[str]], Optional[List[str]]]] = None
                 ) -> List[RestartOutcome]:
    """The procedure of the module docstring over the steps that are needed; one row per step taken. A cluster
    node that does not come back stops it before any other daemon is restarted; maintenance is always put back.
    `journal`: recorded as it goes; one loaded from an interrupted run gives the maintenance values to put back
    and the daemons not to restart again. Hooks, both run under maintenance: `prepare(run)` before the first
    restart (False: restart nothing, put maintenance back); `finish(run, done)` after the last (it may prove,
    undo and restart again; it returns the nodes that must be online once maintenance ends, or None to leave the
    cluster in maintenance, the journal kept for --resume)."""
    outcomes = [RestartOutcome.of(s, status="not-needed", command=False) for s in steps if not s.needed]
    needed = [s for s in steps if s.needed]
    if not needed:
        return outcomes
    run = Procedure(targets, restarter, reporter)
    started = restarter.clock()
    before = restarter.placement()
    peers = [s.node for s in needed if s.kind != "cluster"]
    resumed = journal is not None and journal.entered
    entered = run.enter(peers)
    if entered is None:
        return outcomes + run.rows + [RestartOutcome.of(s, status="skipped", message="no daemon restarted: "
                                                        "maintenance could not be set") for s in needed]
    if resumed:  # what is set now is the interrupted run's doing: put back what was there before it
        entered = journal.previous_mode, {n: journal.previous_nodes.get(n) for n in peers}
    elif journal is not None:
        journal.previous_mode, journal.previous_nodes, journal.entered = entered[0], dict(entered[1]), True
        journal.save()
    previous_mode, previous_nodes = entered
    if prepare is not None and not prepare(run):
        run.rows.extend(RestartOutcome.of(s, status="skipped", message="no daemon restarted: the preparation "
                                          "failed") for s in needed)
        run.leave_mode(previous_mode)
        run.leave_nodes(previous_nodes)
        if journal is not None:
            journal.remove()
        return outcomes + run.rows
    done, _failed = run.restart_each(needed, journal if resumed else None, journal)
    if finish is not None:
        kept = finish(run, done)
        if kept is None:  # the hook could not make the daemons agree: ending maintenance could fence; the journal stays
            run.rows.append(_row("cluster", "maintenance-mode", "failed", "maintenance kept on: the daemons may not "
                                 "all be in the same mode; fix that, then run the same command with --resume"))
            return outcomes + run.rows
        done = kept
    if any(s.kind == "cluster" and not s.needed for s in steps) and peers:
        # a cluster node before 3.0.2 is not restarted: its controller may have read the old key up to
        # CACHE_SECONDS before; let that run out before maintenance ends and it connects to a new remoted
        remaining = model.CACHE_SECONDS + 5 - (restarter.clock() - started)
        if remaining > 0:
            restarter.sleep(remaining)
        run.rows.append(_row("cluster", "wait", "done", f"{model.CACHE_SECONDS} s for the cluster nodes that "
                                                        "re-read the key"))
    run.leave_mode(previous_mode)
    online, missing = restarter.wait_online(done)
    run.rows.append(_row(", ".join(done) or "cluster", "wait", "done" if online else "failed",
                         "every restarted node is online" if online else f"still offline: {', '.join(missing)}"))
    if not online:
        reporter.error(f"still offline after the restarts: {', '.join(missing)}", code="still-offline")
        for row in run.rows:
            if row.node in missing and row.kind in ("cluster", "remote", "guest"):
                row.status, row.message = "failed", "not online again after the restart"
    run.leave_nodes(previous_nodes)
    if before is not None:
        back = restarter.wait_until(lambda: _settled(restarter.placement(), before), timeout=60.0)
        if not back:
            moved = _moved(restarter.placement() or {}, before)
            reporter.warning(f"resources not where they were before the restarts: {', '.join(moved)}",
                             code="resources-moved")
        run.rows.append(_row("cluster", "wait", "done" if back else "failed",
                             "every resource is where it was" if back else "some resources moved or stopped"))
    if journal is not None:
        journal.remove()
    return outcomes + run.rows


def _settled(now: Optional[Dict[str, Tuple[str, ...]]], before: Dict[str, Tuple[str, ...]]) -> bool:
    return now is not None and not _moved(now, before)


def _moved(now: Dict[str, Tuple[str, ...]], before: Dict[str, Tuple[str, ...]]) -> List[str]:
    return sorted(rid for rid, where in before.items() if now.get(rid) != where)


def restart_rows_failed(rows: Sequence[RestartOutcome]) -> bool:
    return any(r.status == "failed" for r in rows)


# -- the proof: the safe probe against every remoted -----------------------------------------------------------------
@dataclass
class ProbeOutcome:
    node: str
    address: str
    verdict: str  # the safe probe's verdict with the new key (match | mismatch | ...), or not-checked

    def to_json(self) -> dict:
        return jsonable(self)


def probe_until(peers: Sequence[Target], probe: Callable[[List[Target]], List[str]], good: str, *, wait: float,
                restarter: Restarter) -> List[ProbeOutcome]:
    """`probe(targets)` (a safe probe: never completes the handshake, so no takeover) over the peers not yet
    `good`, again and again until each is or `wait` seconds have passed; one outcome per peer."""
    from remotectl.transport import psk_probe

    verdicts: Dict[str, str] = {}

    def check() -> bool:
        pending = [t for t in peers if verdicts.get(t.label) != good]
        try:
            results = probe(pending)
        except psk_probe.ProbeError as exc:
            verdicts.update({t.label: f"not-checked ({exc})" for t in pending})
            return True
        verdicts.update((t.label, verdict) for t, verdict in zip(pending, results))
        return all(verdicts[t.label] == good for t in peers)

    if peers:
        restarter.wait_until(check, timeout=wait)
    return [ProbeOutcome(t.label, f"{t.host}:{t.port or REMOTE_PORT}", verdicts.get(t.label, "not-checked"))
            for t in peers]


def probe_new_key(targets: Sequence[Target], key: bytes, *, wait: float, restarter: Restarter) -> List[ProbeOutcome]:
    """The PSK safe probe against every remote and guest node's remoted, with the new key, until each says
    `match` or `wait` seconds have passed (up to 3.0.1 remoted keeps the key it read for 60 s)."""
    peers = [t for t in targets if t.type in ("remote", "guest") and not t.skip]
    return probe_until(peers, lambda pending: restarter.probe([(t.host, t.port or REMOTE_PORT) for t in pending], key),
                       "match", wait=wait, restarter=restarter)
