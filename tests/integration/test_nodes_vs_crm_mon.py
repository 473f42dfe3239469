"""The offline node model must agree with Pacemaker's own crm_mon.

For every CIB in ``tests/data/cib/*.xml``, ``tests/data/cib-lab/*.xml`` and ``tests/data/cib-handwritten/*.xml``
(and, when ``REMOTECTL_EXTRA_CIB_DIR`` is set, every ``*.xml`` in that
directory, e.g. a checkout of Pacemaker's ``cts/scheduler/xml``), run ``CIB_file=F crm_mon --output-as=xml -1``
on a copy of the file, turn crm_mon's ``<nodes>`` into (name, type, online, standby, maintenance, unclean) and
compare with ``nodes_from_cib(F)``. New files dropped into ``tests/data/cib`` (lab dumps: ``cibadmin -Q > F``)
are covered automatically.

Membership format: Pacemaker 2.1.7+ (feature set 3.18.0) writes ``in_ccm``/``crmd`` as timestamps, which older
crm_mon builds read as "not a member". The model is told which behaviour to emulate from the installed
crm_mon's version, so the comparison is always like with like; ``tests/unit/test_nodes_model.py`` pins the
2.1.7+ reading of ``membership-timestamps.xml``.

Known divergences of the model (docstring of the ``remotectl.pacemaker.simulate`` package): attribute sets guarded by
rules are ignored, shutdown locks are not modelled; malformed XML that libxml2 recovers from is refused (such
files in an extra directory are skipped with a reason).

crm_mon missing: skipped with a reason, except with ``CI=true`` where it is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from remotectl.jsonable import jsonable
from remotectl.pacemaker.nodes import Node, nodes_from_cib, nodes_from_crm_mon
from remotectl.reports import RemotectlError
from tests.integration.conftest import require

CIB_DIR = Path(__file__).resolve().parents[1] / "data" / "cib"
LAB_DUMP_DIR = Path(__file__).resolve().parents[1] / "data" / "cib-lab"  # cibadmin -Q of the lab in various states
HANDWRITTEN_DIR = Path(__file__).resolve().parents[1] / "data" / "cib-handwritten"  # cases gen_cib cannot write
OUR_FIXTURES = [p for d in (CIB_DIR, LAB_DUMP_DIR, HANDWRITTEN_DIR) for p in sorted(d.glob("*.xml"))]
EXTRA_ENV = "REMOTECTL_EXTRA_CIB_DIR"
FIELDS = ("type", "online", "standby", "maintenance", "unclean")


def _cases() -> List:
    cases = [pytest.param(p, False, id=f"{p.parent.name}/{p.name}") for p in OUR_FIXTURES]
    extra = os.environ.get(EXTRA_ENV)
    if extra:
        extra_dir = Path(extra)
        files = sorted(extra_dir.glob("*.xml")) if extra_dir.is_dir() else []
        cases += [pytest.param(p, True, id=f"extra/{p.name}") for p in files]
        if not files:
            cases.append(pytest.param(extra_dir, True, id="extra/(no *.xml files)"))
    return cases


def _crm_mon() -> str:
    path = shutil.which("crm_mon") or next(
        (p for p in ("/usr/sbin/crm_mon", "/usr/local/sbin/crm_mon") if os.access(p, os.X_OK)), None
    )
    require(path is not None, "crm_mon (Pacemaker CLI tools) is not installed")
    assert path is not None
    return path


_VERSIONS: Dict[str, Tuple[int, ...]] = {}


def _version(crm_mon: str) -> Tuple[int, ...]:
    if crm_mon not in _VERSIONS:
        out = subprocess.run([crm_mon, "--version"], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"Pacemaker\s+(\d+)\.(\d+)\.(\d+)", out)
        _VERSIONS[crm_mon] = tuple(int(g) for g in m.groups()) if m else (0,)
    return _VERSIONS[crm_mon]


def _reads_timestamps(crm_mon: str) -> bool:
    """Whether the installed crm_mon reads ``in_ccm``/``crmd`` timestamps (2.1.7+): the model is told to match."""
    return _version(crm_mon) >= (2, 1, 7)


def _run_crm_mon(crm_mon: str, cib: Path) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIB_")}
    env["CIB_file"] = str(cib)
    proc = subprocess.run([crm_mon, "--output-as=xml", "-1"], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, (
        f"crm_mon rejected {cib.name} (exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}"
    )
    return proc.stdout


def _table(nodes: List[Node]) -> Dict[str, Tuple]:
    return {n.name: tuple(getattr(n, f) for f in FIELDS) for n in nodes}


def _diff(expected: Dict[str, Tuple], actual: Dict[str, Tuple]) -> str:
    lines = []
    for name in sorted(set(expected) | set(actual)):
        e, a = expected.get(name), actual.get(name)
        if e == a:
            continue
        if e is None:
            lines.append(f"  {name}: listed by the model only ({dict(zip(FIELDS, a))})")
        elif a is None:
            lines.append(f"  {name}: listed by crm_mon only ({dict(zip(FIELDS, e))})")
        else:
            changed = ", ".join(f"{f}: crm_mon={ev} model={av}" for f, ev, av in zip(FIELDS, e, a) if ev != av)
            lines.append(f"  {name}: {changed}")
    return "\n".join(lines)


@pytest.mark.parametrize("cib,extra", _cases())
def test_offline_model_agrees_with_crm_mon(cib: Path, extra: bool, tmp_path: Path) -> None:
    crm_mon = _crm_mon()
    if not cib.is_file():
        pytest.fail(f"{EXTRA_ENV}={cib} has no *.xml files")
    copy = tmp_path / cib.name  # CIB_file tools may write to the file: never point them at the originals
    shutil.copyfile(cib, copy)
    if extra:
        try:
            nodes_from_cib(copy.read_bytes())
        except RemotectlError as exc:
            pytest.skip(f"not comparable: {exc.message}")

    timestamps = _reads_timestamps(crm_mon)
    now = time.time()
    out = _run_crm_mon(crm_mon, copy)
    expected = _table(nodes_from_crm_mon(out, copy.read_bytes()))
    if not extra:
        assert expected, f"crm_mon lists no nodes for {cib.name}"
    actual = _table(nodes_from_cib(copy.read_bytes(), now=now, membership_timestamps=timestamps))
    assert actual == expected, f"{cib.name}: the offline model disagrees with crm_mon:\n{_diff(expected, actual)}"


@pytest.mark.parametrize("cib", OUR_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_live_path_matches_offline_path(cib: Path, tmp_path: Path) -> None:
    """``nodes_from_crm_mon(crm_mon, cib)`` (what a live cluster uses) gives the same full records, including
    resource, address, port and host, as the offline model for our fixtures."""
    crm_mon = _crm_mon()
    copy = tmp_path / cib.name
    shutil.copyfile(cib, copy)
    timestamps = _reads_timestamps(crm_mon)
    live = [jsonable(n) for n in nodes_from_crm_mon(_run_crm_mon(crm_mon, copy), copy.read_bytes())]
    offline = [jsonable(n) for n in nodes_from_cib(copy.read_bytes(), membership_timestamps=timestamps)]
    assert live == offline
