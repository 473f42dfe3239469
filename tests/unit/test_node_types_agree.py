"""`nodes`, `fence` and `standby --wait` read the same crm_mon document the same way: every node gets one type.

Each command runs against a scripted cluster answering with each shared fixture of tests/data/crm_mon."""

import pytest

from remotectl.actions import fence, node_state
from remotectl.actions.nodes import list_nodes
from remotectl.pacemaker.status import read_status
from remotectl.reports import RemotectlError
from tests.fakes import DATA, FakeClock, cib_fixture, crm_mon_fixture, scripted_cluster

EMPTY_CIB = ('<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes/><resources/>'
             '<constraints/></configuration><status/></cib>')
CIB_OF = {"mixed.xml": "mixed.xml", "bundle.xml": "bundle.xml", "bundle-without-resources-section.xml": "bundle.xml",
          "guest-named-like-bundle-replica.xml": "guest-named-like-bundle-replica.xml"}
FIXTURES = sorted(p.name for p in (DATA / "crm_mon").glob("*.xml"))


def cluster_for(fixture):
    cib = cib_fixture(CIB_OF[fixture]) if fixture in CIB_OF else EMPTY_CIB
    return scripted_cluster(crm_mon=[crm_mon_fixture(fixture)], cib=cib)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_nodes_fence_and_standby_wait_agree_on_types(fixture):
    listed = {n.name: n.type for n in list_nodes(cluster_for(fixture)).nodes}
    every = {n.name: n.type for n in read_status(crm_mon_fixture(fixture)).nodes.values()}
    assert listed == {name: kind for name, kind in every.items() if kind in ("cluster", "remote", "guest", "bundle")}
    for name, kind in every.items():
        try:
            planned = fence.prepare_fence(cluster_for(fixture), name, force=True).plan.type
        except RemotectlError as refused:  # a guest/bundle node that cannot be fenced now says what it is
            planned = kind if f"is a {kind} node" in refused.message else refused.message
        clock = FakeClock()
        waited = node_state.standby(cluster_for(fixture), [name], wait=2, clock=clock, sleep=clock.sleep)
        seen = waited.changes[0].state["type"]
        assert (planned, seen) == (kind, kind), name
