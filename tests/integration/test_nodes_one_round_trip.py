"""`nodes` over SSH in one round trip: real sshd, real crm_mon and cibadmin (CIB_file= a copy of each fixture CIB).
The batch (crm_mon, the <cib> element, only the inventory's sections) must give exactly the records of the old
path (crm_mon and the whole CIB as two commands), and really be one SSH command."""

import os
import shutil
from pathlib import Path

import pytest

from remotectl.actions.nodes import list_nodes
from remotectl.jsonable import jsonable
from remotectl.pacemaker import tools
from remotectl.transport.cluster import ClusterClient, SshCluster
from remotectl.transport.local import LocalRunner
from remotectl.transport.ssh import SshOptions, SshRunner
from tests.integration.conftest import require

DATA = Path(__file__).resolve().parents[1] / "data"
CIBS = sorted(p for d in ("cib", "cib-lab", "cib-handwritten") for p in (DATA / d).glob("*.xml"))


class _Counting(SshRunner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands = []

    def run(self, argv, **kwargs):
        self.commands.append(list(argv))
        return super().run(argv, **kwargs)


class _SshOnFile(SshCluster):
    """SshCluster whose tools read a CIB file on the far side (CIB_file=), like a live cluster's."""

    def __init__(self, runner, path):
        super().__init__(runner)
        self.path = path

    def _env(self):
        return {"CIB_file": self.path}


class _LocalOnFile(ClusterClient):
    """The old path (crm_mon + the whole CIB, two commands) on the same file."""

    def __init__(self, path):
        super().__init__(LocalRunner())
        self.path = path

    def _env(self):
        return {"CIB_file": self.path}


@pytest.fixture(scope="module")
def ssh_runner(sshd):
    require(shutil.which("crm_mon") is not None and shutil.which("cibadmin") is not None,
            "Pacemaker's crm_mon/cibadmin not installed")
    runner = _Counting(sshd.destination, SshOptions(identity_files=(str(sshd.client_key),),
                                                     known_hosts=str(sshd.known_hosts), config_file=os.devnull))
    yield runner
    runner.close()


def _records(cluster):
    return [jsonable(node) for node in list_nodes(cluster).nodes]


@pytest.mark.parametrize("path", CIBS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_one_round_trip_lists_what_two_commands_list(ssh_runner, path, tmp_path):
    copy = tmp_path / "cib.xml"
    shutil.copy(path, copy)
    os.chmod(tmp_path, 0o755)
    old = _LocalOnFile(str(copy))
    try:
        expected = _records(old)
    except Exception as exc:  # crm_mon refuses this CIB (e.g. a schema it does not know): both paths must agree
        with pytest.raises(type(exc)):
            _records(_SshOnFile(ssh_runner, str(copy)))
        return
    ssh_runner.commands.clear()
    assert _records(_SshOnFile(ssh_runner, str(copy))) == expected
    assert ssh_runner.commands[0][:2] == ["sh", "-c"]
    if "id-ref=" in path.read_text():  # may point outside the sections: then the whole CIB, second command
        assert ssh_runner.commands[1:] in ([], [tools.cib_query()]), ssh_runner.commands
    else:
        assert len(ssh_runner.commands) == 1, ssh_runner.commands


def test_the_status_section_is_not_fetched(ssh_runner, tmp_path):
    """With a status section far larger than the configuration, the one reply carries only a fraction of the CIB."""
    copy = tmp_path / "cib.xml"
    shutil.copy(DATA / "cib-lab" / os.listdir(DATA / "cib-lab")[0], copy)
    from remotectl.transport import batch
    from remotectl.pacemaker import inventory

    results = batch.run_batch(ssh_runner, [tools.cib_root_query(), tools.cib_sections_query(inventory.SECTIONS)],
                              env={"CIB_file": str(copy)})
    assert results is not None and all(r.rc == 0 for r in results), results
    assert "<status" not in results[0].stdout + results[1].stdout
    assert "<constraints" not in results[1].stdout
    assert inventory.cib_from_parts(results[0].stdout, results[1].stdout) is not None
