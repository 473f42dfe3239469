"""`check` without --ca: the right safe probe per node's mode, and the CA the node's cluster trusts.

The mode comes from what the server offers: the PSK probe runs first (it needs no SSH), and a node that answers
``tls-not-psk`` is an X.509 node (an X.509 remoted offers no PSK). Those nodes then get the X.509 probe with the
CA named by PCMK_ca_file: this machine's own when it is in X.509 mode (a cluster node: the CA its controller
verifies the remotes with, as --key defaults to this machine's key), else each node's own, read over SSH (its
settings say which file; the CA is public; a HOST[:PORT] target is asked at HOST). With no authkey here but an
X.509 CA, every target gets the X.509 probe. Both probes abort before the handshake completes: no connected node
is taken over.

Measured on 3.0.3 (tests/integration/test_hosts_tls_renew_lab.py): the PSK probe against an X.509 remoted gets
``tls-not-psk``, then the X.509 probe with the host's PCMK_ca_file gets ``x509-trusted``.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from remotectl.actions.targets import Target
from remotectl.reports import RemotectlError, Reporter
from remotectl.transport import psk_probe, x509_probe

SSH_TYPES = (None, "remote", "guest")  # a host given as HOST[:PORT] too; bundle replicas have no SSH of their own


def x509_jobs(targets: Sequence[Target]) -> List[Tuple[str, object, List[str]]]:
    """(host, port, names) for the X.509 probe: a certificate must name the address probed or the node (one is
    enough)."""
    return [(t.host, t.port, [t.host] + ([t.node] if t.node else [])) for t in targets]


def local_ca(env_files=None) -> Optional[Tuple[str, bytes]]:
    """(path, bytes) of this machine's PCMK_ca_file when it is in X.509 mode and the file can be read."""
    from remotectl.transport import tls_files

    settings = tls_files.local_tls_settings(env_files)
    if settings.mode != "x509" or not settings.ca_file:
        return None
    try:
        return settings.ca_file, tls_files.read_local_ca(settings.ca_file)
    except RemotectlError:
        return None


def _node_cas(targets: Sequence[Target], runner_for: Optional[Callable[[str], object]], reporter: Reporter
              ) -> Dict[int, Tuple[str, bytes]]:
    """index → (source, CA bytes) of each target's own PCMK_ca_file, read over SSH (in parallel)."""
    from remotectl.actions.tls.node_certs import ca_from_node
    from remotectl.transport.fanout import fan_out

    reachable = [(i, t) for i, t in enumerate(targets) if t.type in SSH_TYPES and runner_for]
    for t in targets:
        if not (t.type in SSH_TYPES and runner_for):
            reporter.warning(f"{t.label} offers a certificate, and no CA to check it with is known (no SSH to it "
                             "to read its PCMK_ca_file, and none set here): give --ca FILE", node=t.node,
                             code="check-ca-unknown")
    found: Dict[int, Tuple[str, bytes]] = {}
    for outcome in fan_out(lambda item: ca_from_node(runner_for(item[1].host)), reachable, workers=16):
        index, target = outcome.item
        if not outcome.ok:
            reporter.warning(f"{target.label} offers a certificate, and its PCMK_ca_file could not be read over SSH "
                             f"({outcome.error}): give --ca FILE", node=target.node, code="check-ca-unknown")
        elif outcome.value is None:
            reporter.warning(f"{target.label} offers a certificate, but its settings say PSK (PCMK_ca_file, "
                             "PCMK_cert_file, PCMK_key_file not all set): pacemaker-remoted was started with other "
                             "settings than its env files hold now; give --ca FILE", node=target.node,
                             code="check-ca-unknown")
        else:
            found[index] = (f"PCMK_ca_file of {target.node or target.host}", outcome.value)
    return found


def probe_x509(plan, indexes: Sequence[int], cas: Dict[int, Tuple[str, bytes]], tick=None) -> Dict[int, object]:
    """index → CheckEntry from the X.509 probe, one probe run per distinct CA."""
    from remotectl.actions.check import entry_from_probe

    by_ca: Dict[bytes, List[int]] = {}
    for index in indexes:
        if index in cas:
            by_ca.setdefault(cas[index][1], []).append(index)
    entries: Dict[int, object] = {}
    for data, group in by_ca.items():
        targets = [plan.targets[i] for i in group]
        try:
            results = x509_probe.probe_many(x509_jobs(targets), ca_pem=data, timeout=plan.timeout,
                                            workers=plan.workers, callback=lambda _r: tick and tick(None))
        except psk_probe.ProbeError as exc:
            raise RemotectlError(f"the certificate probe cannot run here: {exc}") from None
        for index, target, result in zip(group, targets, results):
            entry = entry_from_probe(target, result.to_dict(), x509=True)
            entry.ca = cas[index][0]
            entries[index] = entry
    return entries


def follow_x509(plan, entries: List, runner_for: Optional[Callable[[str], object]], reporter: Reporter,
                env_files=None) -> List:
    """Replace the PSK probe's ``tls-not-psk`` entries by the X.509 probe's, with the CA of :func:`local_ca`,
    else of each node."""
    indexes = [i for i, e in enumerate(entries) if e.verdict == psk_probe.TLS_NOT_PSK]
    if not indexes:
        return entries
    here = local_ca(env_files)
    if here is not None:
        cas = {i: (here[0], here[1]) for i in indexes}
    else:
        picked = _node_cas([plan.targets[i] for i in indexes], runner_for, reporter)
        cas = {indexes[j]: ca for j, ca in picked.items()}
    out = list(entries)
    for index, entry in probe_x509(plan, indexes, cas).items():
        out[index] = entry
    return out


def x509_only(plan, tick, env_files=None) -> Optional[List]:
    """No authkey here: when this machine is in X.509 mode, every target gets the X.509 probe with its CA (PSK
    nodes then answer tls-not-x509); None when it is not."""
    here = local_ca(env_files)
    if here is None:
        return None
    indexes = list(range(len(plan.targets)))
    probed = probe_x509(plan, indexes, {i: here for i in indexes}, tick)
    return [probed[i] for i in indexes]


# --- check --from cluster ----------------------------------------------------------------------------------------


def _on_nodes(plan, names: Sequence[str], targets: Sequence[Target], ca_pem: Optional[bytes], runner_for, tick):
    """fan_out's outcomes of the X.509 probe shipped to each cluster node (x509_node)."""
    import math

    from remotectl.actions.check import run_on_sources
    from remotectl.transport import x509_node

    argv, stdin = x509_node.remote_invocation(x509_jobs(targets), ca_pem=ca_pem, timeout=plan.timeout,
                                              workers=plan.workers)
    budget = plan.timeout * math.ceil(len(targets) / max(1, plan.workers)) + 30.0
    return run_on_sources(names, argv, stdin, x509_node.FORMAT, len(targets), budget, runner_for, tick)


def x509_from_cluster(plan, runner_for, tick, reporter: Reporter, origins: Dict) -> Dict[str, List]:
    """--from cluster --ca FILE: the X.509 probe on every cluster node, the CA's PEM shipped on stdin."""
    from remotectl.actions.check import per_node_entries
    from remotectl.transport import tls_files

    pem = tls_files.read_local_ca(plan.ca_path)
    try:
        pem.decode("ascii")
    except UnicodeDecodeError:
        raise RemotectlError(f"cannot load the CA file {plan.ca_path}: not PEM (ASCII) text") from None
    outcomes = _on_nodes(plan, plan.sources, plan.targets, pem, runner_for, tick)
    per_node = per_node_entries(plan, outcomes, reporter, origins, x509=True)
    for entries in per_node.values():
        for entry in entries:
            entry.ca = plan.ca_path
    return per_node


def follow_x509_on_nodes(plan, per_node: Dict[str, List], runner_for, reporter: Reporter, origins: Dict) -> None:
    """--from cluster without --ca: on each cluster node, the targets that answered it ``tls-not-psk`` get the
    X.509 probe there with that node's own PCMK_ca_file (what it trusts): one more SSH round trip, only to the
    nodes that saw an X.509 remote. A node not in X.509 mode keeps ``tls-not-psk`` (warning check-ca-unknown)."""
    from remotectl.actions.check import entry_from_probe

    wanted = {name: [i for i, e in enumerate(entries) if e.verdict == psk_probe.TLS_NOT_PSK]
              for name, entries in per_node.items()}
    wanted = {name: indexes for name, indexes in wanted.items() if indexes}
    if not wanted:
        return
    # one program per distinct target set (usually one: all nodes see the same X.509 remotes)
    groups: Dict[Tuple[int, ...], List[str]] = {}
    for name, indexes in wanted.items():
        groups.setdefault(tuple(indexes), []).append(name)
    for indexes, names in groups.items():
        targets = [plan.targets[i] for i in indexes]
        for outcome in _on_nodes(plan, names, targets, None, runner_for, lambda _pending: None):
            name = outcome.item
            doc = outcome.value if outcome.ok else {"error": outcome.error}
            origins[name]["ca"] = doc.get("ca")
            if doc.get("error"):
                reporter.warning(f"{name} sees {len(targets)} target(s) offering a certificate, and the X.509 "
                                 f"probe could not run there ({doc['error']}): give --ca FILE", node=name,
                                 code="check-ca-unknown")
                continue
            ca = f"PCMK_ca_file of {name}"
            for index, target, result in zip(indexes, targets, doc["results"]):
                entry = entry_from_probe(target, result, source=name, x509=True)
                entry.ca = ca
                per_node[name][index] = entry
