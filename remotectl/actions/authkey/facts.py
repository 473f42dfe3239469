"""What a node says about its key (location, Pacemaker version, file states), and the fan-out plumbing that
push, verify and rotate share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from remotectl.actions.targets import Target
from remotectl.pacemaker import authkey as model
from remotectl.transport import files
from remotectl.reports import RemotectlError
from remotectl.transport.base import Runner, UnusableRunner

RunnerFactory = Callable[[str], Runner]
ProgressCallback = Optional[Callable[[object], None]]

# Nodes worked on at once by push, verify and rotate, each one SSH connection (one socket: capped by the open-file
# limit). bench/push_latency.py: a node costs ~60 ms of CPU (sshd and the script there ~47, remotectl ~13), so two
# cores do ~33 nodes/s, and one node takes ~15 round trips: 0.3 s at 20 ms RTT, 1.5 s at 100 ms, i.e. ~50 in
# flight keep the cores busy even at 100 ms; at 20 ms, 16 to 128 ran within 10% of each other (CPU-bound).
DEFAULT_SSH_WORKERS = 64


def ssh_workers(requested: Optional[int] = None) -> int:
    """--parallel, else DEFAULT_SSH_WORKERS as far as the open-file limit allows."""
    from remotectl.transport.limits import cap_workers

    return requested or cap_workers(DEFAULT_SSH_WORKERS)


@dataclass
class NodeFacts:
    probe: files.HostProbe
    location: model.KeyLocation
    version: Optional[model.Version]
    states: Dict[str, model.FileFacts]  # path → state, for every path inspect_node was asked about
    removed_temps: List[str]

    @property
    def env_texts(self) -> Dict[str, str]:
        """The env files the node has (path -> text), for the settings read from them."""
        return {path: data.decode("utf-8", "replace") for path, data in self.probe.files.items() if data is not None}

    @property
    def key(self) -> model.FileFacts:
        """The state of the file at the key location."""
        return self.states[self.location.path]


def inspect_node(runner: Runner, override: Optional[str], *, version: bool = True, chain: bool = False,
                 reader: Optional[str] = None, clean_temps: bool = False) -> NodeFacts:
    """Where this node reads the key (PCMK_authkey_location in its env files, unless --path overrides it), the
    Pacemaker version, root?, hacluster:haclient present?, and the state of the key file (with `chain`: of every
    file of Pacemaker's fallback chain). One round trip when the key is where it is expected, two otherwise."""
    guess = model.key_location({}, override)
    guessed_paths = model.fallback_chain(guess, None) if chain else [guess.path]
    probe = files.host_probe(runner, user=model.KEY_OWNER, group=model.KEY_GROUP, read=env_files(override),
                             version_tools=model.VERSION_TOOLS if version else (), paths=guessed_paths,
                             reader=reader, clean_temps=clean_temps)
    return facts_from_probe(runner, probe, override, chain=chain, reader=reader, clean_temps=clean_temps)


def env_files(override: Optional[str]) -> Sequence[str]:
    """The env files a probe reads: none when --path says where the key is."""
    return () if override else model.ENV_FILES


def facts_from_probe(runner: Runner, probe: files.HostProbe, override: Optional[str], *, chain: bool = False,
                     reader: Optional[str] = None, clean_temps: bool = False) -> NodeFacts:
    """NodeFacts from what host_probe said; a second round trip only for paths it was not asked about (the env
    files moved the key)."""
    texts = {path: data.decode("utf-8", "replace") for path, data in probe.files.items() if data is not None}
    location = model.key_location(texts, override)
    parsed_version = model.parse_version(probe.version_line or "")
    states = {state.path: state for state in probe.states}
    removed = list(probe.states.removed_temps)
    wanted = (model.fallback_chain(location, parsed_version) if chain else []) or [location.path]
    missing = [path for path in wanted if path not in states]
    if missing:
        more = files.file_states(runner, missing, reader=reader, clean_temps=clean_temps)
        states.update({state.path: state for state in more})
        removed += more.removed_temps
    return NodeFacts(probe=probe, location=location, version=parsed_version,
                     states={path: states[path] for path in wanted}, removed_temps=removed)


def without_prefix(message: Optional[str], target: Target) -> Optional[str]:
    """Transport errors start with the destination; the node is named next to them already."""
    for prefix in (f"{target.host}: ", f"{target.label}: "):
        while message and message.startswith(prefix):
            message = message[len(prefix):]
    return message


def active_runners(targets: Sequence[Target], runner_factory: RunnerFactory) -> Tuple[List[Target], Dict[str, Runner]]:
    """The targets that are not skipped, and a runner for each of their destinations. A target that cannot be
    reached at all (its `error`, or a destination the factory refuses) gets a runner that fails every command
    with that one line, so that node fails alone and the others go on."""
    active = [t for t in targets if not t.skip]
    runners: Dict[str, Runner] = {}
    for t in active:
        if t.error:
            runners[t.host] = UnusableRunner(t.label, t.error)
            continue
        try:
            runners[t.host] = runner_factory(t.host)
        except RemotectlError as exc:
            runners[t.host] = UnusableRunner(t.label, exc.message)
    return active, runners
