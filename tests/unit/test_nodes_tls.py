"""`nodes --tls`: each node's TLS mode from its own env files (FakeHost answers the probe script like a host)."""

from remotectl.actions.nodes import NodeList, with_tls_modes
from remotectl.pacemaker.nodes import Node
from tests.fakes import FakeHost

X509_ENV = ("PCMK_ca_file=/etc/pacemaker/tls/ca.pem\nPCMK_cert_file=/etc/pacemaker/tls/node.pem\n"
            "PCMK_key_file=/etc/pacemaker/tls/node.key\n")


def _node(name, type_="remote", address=None):
    return Node(name, type_, True, False, False, False, address=address)


def _hosts(**envs):
    hosts = {}
    for name, env in envs.items():
        hosts[name] = FakeHost(name, env={"/etc/default/pacemaker": env} if env is not None else {})
    return hosts


def test_modes_per_node_and_for_the_cluster():
    hosts = _hosts(node1=X509_ENV, r1=X509_ENV)
    result = with_tls_modes(NodeList([_node("node1", "cluster"), _node("r1", address="r1")], "live"), hosts.get)
    assert [(n.name, n.tls_mode) for n in result.nodes] == [("node1", "x509"), ("r1", "x509")]
    assert result.tls_mode == "x509" and result.reports == []


def test_a_psk_node_among_x509_ones_is_mixed_and_named():
    hosts = _hosts(node1=X509_ENV, r1="# PCMK_ca_file=/etc/pacemaker/tls/ca.pem\n")
    result = with_tls_modes(NodeList([_node("node1", "cluster"), _node("r1", address="r1")], "live"), hosts.get)
    assert {n.name: n.tls_mode for n in result.nodes} == {"node1": "x509", "r1": "psk"}
    assert result.tls_mode == "mixed"
    [report] = result.reports
    assert report.code == "nodes-tls-mixed" and "psk: r1" in report.message and "x509: node1" in report.message


def test_an_unreachable_node_is_unknown_with_a_warning_and_does_not_decide_the_cluster():
    hosts = _hosts(node1=None, r1=None)
    hosts["r1"].unreachable = True
    result = with_tls_modes(NodeList([_node("node1", "cluster"), _node("r1", address="r1")], "live"), hosts.get)
    assert {n.name: n.tls_mode for n in result.nodes} == {"node1": "psk", "r1": "unknown"}
    assert result.tls_mode == "psk"
    assert [(r.code, r.node) for r in result.reports] == [("nodes-tls-unread", "r1")]
    assert "Connection refused" in result.reports[0].message


def test_remote_nodes_are_reached_at_the_address_the_cluster_uses():
    hosts = _hosts(node1=None, **{"10.0.0.7": X509_ENV})
    result = with_tls_modes(NodeList([_node("node1", "cluster"), _node("r1", address="10.0.0.7")], "live"),
                            hosts.get)
    assert {n.name: n.tls_mode for n in result.nodes} == {"node1": "psk", "r1": "x509"}
