"""The offline node model must agree with Pacemaker's own crm_mon, of each Pacemaker version it follows.

For every CIB in ``tests/data/cib/*.xml``, ``tests/data/cib-lab/*.xml`` and ``tests/data/cib-handwritten/*.xml``
(and, when ``REMOTECTL_EXTRA_CIB_DIR`` is set, every ``*.xml`` in that
directory, e.g. a checkout of Pacemaker's ``cts/scheduler/xml``), run ``CIB_file=F crm_mon --output-as=xml -1``
on a copy of the file, turn crm_mon's ``<nodes>`` into (name, type, online, standby, maintenance, unclean) and
compare with ``nodes_from_cib(F)``. New files dropped into ``tests/data/cib`` (lab dumps: ``cibadmin -Q > F``)
are covered automatically.

Which crm_mon: the main run (``-m "not hosts_lab"``) uses the one installed here (Debian 12: 2.1.5). The tests
marked ``hosts_lab`` run in ``scripts/test``'s per-version loop and use the crm_mon of ``LAB_PACEMAKER``'s lab image
(``tests/lab/images.py``: 2.1 = 2.1.5, 3.0 = 3.0.3; ``mixed`` has a 2.1 cluster), run chrooted in an overlay of
the image root, all fixtures in one batch (this needs root: skipped without it, a failure under ``CI=true``).

The model is told the version of the crm_mon it is compared with (``pacemaker_version``), because 2.1.5 and 3.0.x
legitimately read some CIBs differently (``fencing-enabled``, ``no-quorum-policy=fence``, the 3.0 upgrade of every
pre-4.0 CIB); without that it follows the CIB's ``dc-version`` (:mod:`remotectl.pacemaker.simulate.schema`).
Likewise the membership format: Pacemaker 2.1.7+ (feature set 3.18.0) writes ``in_ccm``/``crmd`` as timestamps,
which older crm_mon builds read as "not a member"; ``tests/unit/test_nodes_model.py`` pins the 2.1.7+ reading of
``membership-timestamps.xml``. A fixture whose schema that crm_mon does not know yet (``pacemaker-4.0`` for 2.1.5)
is not comparable there and is skipped with that reason.

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
from remotectl.pacemaker import xmlsafe
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


def _parse_version(text: str) -> Tuple[int, ...]:
    m = re.search(r"Pacemaker\s+(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in m.groups()) if m else (0,)


class HostCrmMon:
    """The crm_mon installed here."""

    def __init__(self) -> None:
        self.path = _crm_mon()
        out = subprocess.run([self.path, "--version"], capture_output=True, text=True, timeout=30).stdout
        self.version = _parse_version(out)

    def run(self, cib: Path) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIB_")}
        env["CIB_file"] = str(cib)
        return subprocess.run([self.path, "--output-as=xml", "-1"], env=env, capture_output=True, timeout=120)


class ImageCrmMon:
    """The crm_mon of a hosts-lab image (tests/lab/images.py), chrooted in an overlay of the image root; every CIB
    of the run is judged in one batch (one private mount namespace, gone when the batch ends)."""

    def __init__(self, variant: str, cibs: List[Path], scratch: Path) -> None:
        from tests.lab import images

        version = "2.1" if variant == "mixed" else variant
        require(os.geteuid() == 0, "crm_mon of the lab image runs chrooted, which needs root")
        require(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
        require(images.is_built(version), f"the Pacemaker {version} lab image is not built "
                                          f"(python3 tests/lab/images.py {version})")
        self.results: Dict[str, Tuple[int, bytes, bytes]] = {}
        upper, work, root = scratch / "upper", scratch / "work", scratch / "root"
        (upper / "cibs").mkdir(parents=True)
        work.mkdir()
        root.mkdir()
        names = {}
        for i, cib in enumerate(cibs):
            names[cib] = f"{i}.xml"
            shutil.copyfile(cib, upper / "cibs" / names[cib])
        lower = f"{images.cluster_layer(version)}:{images.base_root(version)}"
        # $1 lower dirs, $2 upper, $3 work, $4 root: paths as arguments, never spliced into the script
        script = ('mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" || exit 1\n'
                  'chroot "$4" crm_mon --version > "$2/version"\n'
                  'for f in "$4"/cibs/*.xml; do b=${f##*/}; b=${b%.xml}\n'
                  '  CIB_file="/cibs/$b.xml" chroot "$4" crm_mon --output-as=xml -1 > "$2/$b.out" 2> "$2/$b.err"\n'
                  '  echo $? > "$2/$b.rc"\n'
                  'done\n')
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", lower,
                               str(upper), str(work), str(root)],
                              capture_output=True, text=True, timeout=60 + 30 * len(cibs),
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"})
        assert proc.returncode == 0, f"crm_mon in the {version} image root failed: {proc.stderr.strip()}"
        self.version = _parse_version((upper / "version").read_text())
        for cib, name in names.items():
            stem = upper / name[:-4]
            self.results[str(cib)] = (int(Path(f"{stem}.rc").read_text()), Path(f"{stem}.out").read_bytes(),
                                      Path(f"{stem}.err").read_bytes())

    def run(self, cib: Path) -> subprocess.CompletedProcess:
        rc, out, err = self.results[str(cib)]
        return subprocess.CompletedProcess(["crm_mon"], rc, out, err)


def _crm_mon_output(crm_mon, original: Path, copy: Path) -> bytes:
    proc = crm_mon.run(copy if isinstance(crm_mon, HostCrmMon) else original)
    if proc.returncode != 0:
        schema = (xmlsafe.parse(original.read_bytes(), "CIB").get("validate-with") or "")
        if _newer_schema_than(crm_mon.version, schema):
            pytest.skip(f"crm_mon {_dotted(crm_mon.version)} does not know the schema {schema}")
    assert proc.returncode == 0, (
        f"crm_mon {_dotted(crm_mon.version)} rejected {original.name} (exit {proc.returncode}): "
        f"{proc.stderr.decode(errors='replace').strip()}"
    )
    return proc.stdout


def _newer_schema_than(version: Tuple[int, ...], schema: str) -> bool:
    """Whether ``pacemaker-X.Y`` is newer than any schema Pacemaker ``version`` ships (2.1.x: 3.9, 3.0: 4.0)."""
    m = re.match(r"pacemaker-(\d+)\.(\d+)$", schema)
    newest = (4, 0) if version >= (3,) else (3, 9)
    return bool(m) and (int(m.group(1)), int(m.group(2))) > newest


def _dotted(version: Tuple[int, ...]) -> str:
    return ".".join(map(str, version))


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


def _agrees(crm_mon, cib: Path, extra: bool, tmp_path: Path) -> None:
    if not cib.is_file():
        pytest.fail(f"{EXTRA_ENV}={cib} has no *.xml files")
    copy = tmp_path / cib.name  # CIB_file tools may write to the file: never point them at the originals
    shutil.copyfile(cib, copy)
    model = {"membership_timestamps": crm_mon.version >= (2, 1, 7), "pacemaker_version": crm_mon.version}
    if extra:
        try:
            nodes_from_cib(copy.read_bytes(), **model)
        except RemotectlError as exc:
            pytest.skip(f"not comparable: {exc.message}")
    now = time.time()
    out = _crm_mon_output(crm_mon, cib, copy)
    expected = _table(nodes_from_crm_mon(out, copy.read_bytes(), pacemaker_version=crm_mon.version))
    if not extra:
        assert expected, f"crm_mon lists no nodes for {cib.name}"
    actual = _table(nodes_from_cib(copy.read_bytes(), now=now, **model))
    assert actual == expected, (f"{cib.name}: the offline model disagrees with crm_mon {_dotted(crm_mon.version)}:"
                                f"\n{_diff(expected, actual)}")


def _live_matches_offline(crm_mon, cib: Path, tmp_path: Path) -> None:
    copy = tmp_path / cib.name
    shutil.copyfile(cib, copy)
    version = crm_mon.version
    out = _crm_mon_output(crm_mon, cib, copy)
    live = [jsonable(n) for n in nodes_from_crm_mon(out, copy.read_bytes(), pacemaker_version=version)]
    offline = [jsonable(n) for n in nodes_from_cib(copy.read_bytes(), membership_timestamps=version >= (2, 1, 7),
                                                   pacemaker_version=version)]
    assert live == offline


@pytest.fixture(scope="module")
def host_crm_mon() -> HostCrmMon:
    return HostCrmMon()


@pytest.fixture(scope="module")
def lab_crm_mon(tmp_path_factory) -> ImageCrmMon:
    variant = os.environ.get("LAB_PACEMAKER") or "2.1"
    cibs = [p for p in (param.values[0] for param in _cases()) if p.is_file()]
    return ImageCrmMon(variant, cibs, tmp_path_factory.mktemp("crm-mon-image"))


@pytest.mark.parametrize("cib,extra", _cases())
def test_offline_model_agrees_with_crm_mon(host_crm_mon, cib: Path, extra: bool, tmp_path: Path) -> None:
    _agrees(host_crm_mon, cib, extra, tmp_path)


@pytest.mark.parametrize("cib", OUR_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_live_path_matches_offline_path(host_crm_mon, cib: Path, tmp_path: Path) -> None:
    """``nodes_from_crm_mon(crm_mon, cib)`` (what a live cluster uses) gives the same full records, including
    resource, address, port and host, as the offline model for our fixtures."""
    _live_matches_offline(host_crm_mon, cib, tmp_path)


@pytest.mark.hosts_lab
@pytest.mark.parametrize("cib,extra", _cases())
def test_offline_model_agrees_with_lab_crm_mon(lab_crm_mon, cib: Path, extra: bool, tmp_path: Path) -> None:
    """The same judgement by the crm_mon of the Pacemaker version the lab run targets (LAB_PACEMAKER)."""
    _agrees(lab_crm_mon, cib, extra, tmp_path)


@pytest.mark.hosts_lab
@pytest.mark.parametrize("cib", OUR_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_live_path_matches_offline_path_lab_version(lab_crm_mon, cib: Path, tmp_path: Path) -> None:
    _live_matches_offline(lab_crm_mon, cib, tmp_path)
