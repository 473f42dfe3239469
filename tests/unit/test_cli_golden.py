"""The human output of nodes, standby, fence, node and constraint, in-process against a scripted cluster.

Each case runs the real click tree through ``remotectl.cli.run(argv, cluster_factory=...)`` and compares stdout,
stderr and the exit code with a golden file in tests/data/golden. After an intended change of the output,
regenerate with ``REMOTECTL_UPDATE_GOLDEN=1 pytest tests/unit/test_cli_golden.py`` and review the diff."""

import os

import pytest

from remotectl.cli import run
from tests.fakes import DATA, cib_fixture, crm_mon_fixture, scripted_cluster

GOLDEN = DATA / "golden"
CONSTRAINT_CIB = """\
<cib epoch="3" num_updates="0" admin_epoch="0">
  <configuration>
    <nodes><node id="1" uname="node1"/></nodes>
    <resources>
      <primitive id="remote1" class="ocf" provider="pacemaker" type="remote"/>
      <primitive id="remote2" class="ocf" provider="pacemaker" type="remote"/>
      <primitive id="dummy1" class="ocf" provider="pacemaker" type="Dummy"/>
    </resources>
    <constraints>
      <rsc_location id="location-dummy1-remote2-200" rsc="dummy1" node="remote2" score="200"/>
      <rsc_order id="order-remote1-dummy1" first="remote1" then="dummy1"/>
    </constraints>
  </configuration>
  <status/>
</cib>
"""

CASES = {
    "nodes": (["nodes"], dict(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))),
    "nodes-json": (["nodes", "--json"], dict(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))),
    "nodes-type-guest": (["nodes", "--type", "guest"],
                         dict(crm_mon=[crm_mon_fixture("fence-cases.xml")], cib=CONSTRAINT_CIB)),
    "standby-wait": (["standby", "remote2", "--wait=5"], dict(crm_mon=[crm_mon_fixture("mixed.xml")])),
    "unstandby-unknown-node": (["unstandby", "nosuch"], dict(crm_mon=[crm_mon_fixture("mixed.xml")])),
    "fence-remote": (["fence", "remote1", "--yes"], dict(crm_mon=[crm_mon_fixture("fence-cases.xml")])),
    "fence-guest-off-refused": (["fence", "guest1", "--action", "off", "--yes"],
                                dict(crm_mon=[crm_mon_fixture("fence-cases.xml")])),
    "node-drain-guest-refused": (["node", "drain", "guest1"],
                                 dict(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))),
    "node-drain-unknown-node": (["node", "drain", "nosuch"],
                                dict(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))),
    # standby is set, but crm_mon never shows it within --wait=0: the failed step, said once
    "node-drain-step-failed": (["node", "drain", "remote1", "--wait=0"],
                               dict(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))),
    "node-remove-cluster-node-refused": (["node", "remove", "node1", "--yes"],
                                         dict(crm_mon=[crm_mon_fixture("mixed.xml")], cib=cib_fixture("mixed.xml"))),
    "node-remove-json-without-yes": (["node", "remove", "remote1", "--json"], dict()),
    "constraint-list": (["constraint", "list"], dict(cib=CONSTRAINT_CIB)),
    "constraint-prefer": (["constraint", "prefer", "dummy1", "remote1", "--score", "100"], dict(cib=CONSTRAINT_CIB)),
    "constraint-prefer-unknown-node": (["constraint", "prefer", "dummy1", "nosuch"], dict(cib=CONSTRAINT_CIB)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_human_output(case, capsys):
    argv, tools = CASES[case]
    code = run(argv, cluster_factory=lambda app: scripted_cluster(**tools))
    captured = capsys.readouterr()
    got = f"$ remotectl {' '.join(argv)}\n--- exit {code}\n--- stdout\n{captured.out}--- stderr\n{captured.err}"
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("REMOTECTL_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert path.exists(), f"no golden file {path.name}: run with REMOTECTL_UPDATE_GOLDEN=1 and review it"
    assert got == path.read_text()
