"""The node model (remotectl.pacemaker.nodes) and hardened XML parsing (remotectl.pacemaker.xmlsafe): pure tests.

The state columns of EXPECTED were checked against Pacemaker 2.1.5's crm_mon (tests/integration/
test_nodes_vs_crm_mon.py does that for every fixture on every run where crm_mon is installed); the address,
port, resource and host columns follow the CIB configuration as documented in the module.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from remotectl.jsonable import jsonable
from remotectl.pacemaker import xmlsafe
from remotectl.pacemaker.nodes import (
    DEFAULT_REMOTE_PORT,
    NODE_TYPES,
    Node,
    nodes_from_cib,
    nodes_from_crm_mon,
    sort_nodes,
)
from remotectl.reports import RemotectlError

ROOT = Path(__file__).resolve().parents[2]
CIB_DIR = ROOT / "tests" / "data" / "cib"
CONTRACT_KEYS = ["name", "type", "online", "standby", "maintenance", "unclean", "resource", "address", "port", "host",
                 "pacemaker_version", "feature_set", "tls_mode"]


def _gen_cib():
    spec = importlib.util.spec_from_file_location("gen_cib", ROOT / "bench" / "gen_cib.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cib", module)
    spec.loader.exec_module(module)
    return module


# name, type, flags that are true, resource, address, port, host
EXPECTED = {
    "bundle-no-ip.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        # no ip-range-start: the connection goes to the container's host ("#uname"), control-port 3124
        ("web-bundle-0", "bundle", "online", "web-bundle", "node2", 3124, "node2"),
    ],
    "bundle.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("httpd-bundle-0", "bundle", "online", "httpd-bundle", "192.168.122.131", 3121, "node1"),
        ("httpd-bundle-1", "bundle", "online", "httpd-bundle", "192.168.122.132", 3121, "node2"),
    ],
    "cluster-node-offline.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "", None, None, None, None),  # left cleanly
        ("node3", "cluster", "unclean", None, None, None, None),  # lost: will be fenced
        ("node4", "cluster", "unclean", None, None, None, None),  # never seen, startup fencing
        ("node5", "cluster", "online standby", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "online", "remote2", "192.168.122.22", 3121, "node3"),
        ("guest1", "guest", "", "vm-guest1", "guest1", 3121, "node3"),  # host unclean: guest offline
    ],
    "cluster-only.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("node3", "cluster", "online", None, None, None, None),
    ],
    "guest.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("guest1", "guest", "online", "vm-guest1", "192.168.122.41", 3121, "node1"),
        ("guest2", "guest", "", "vm-guest2", "guest2", 3122, None),  # remote-addr defaults to the node name
    ],
    # a guest whose names follow bundle replica naming: still a guest (crm_mon 2.1.5 agrees; regression for the
    # old crm_mon reader of `nodes`, which called it a bundle node)
    "guest-named-like-bundle-replica.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("guest2", "guest", "", "vm-guest2", "guest2", 3122, None),
        ("web-0", "guest", "online", "web-podman-0", "192.168.122.41", 3121, "node1"),
    ],
    "maintenance-mode.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online maintenance", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "maintenance", "remote2", "remote2", 3121, None),
        ("guest1", "guest", "online maintenance", "vm-guest1", "guest1", 3121, "node1"),
        ("httpd-bundle-0", "bundle", "online maintenance", "httpd-bundle", "192.168.122.131", 3121, "node1"),
    ],
    "membership-booleans.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("node3", "cluster", "", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("guest1", "guest", "online", "vm-guest1", "guest1", 3121, "node1"),
    ],
    # Feature set 3.18.0: in_ccm/crmd are timestamps; read as Pacemaker 2.1.7+ does (the default for such CIBs)
    "membership-timestamps.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("node3", "cluster", "", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("guest1", "guest", "online", "vm-guest1", "guest1", 3121, "node1"),
    ],
    "mixed.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("node3", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "online standby", "remote2", "remote2", 3121, "node3"),
        ("remote10", "remote", "online", "remote10", "192.168.122.30", 3121, "node2"),
        ("guest1", "guest", "online", "vm-guest1", "guest1", 3121, "node2"),
        ("httpd-bundle-0", "bundle", "online", "httpd-bundle", "192.168.122.131", 3121, "node1"),
        ("httpd-bundle-1", "bundle", "online", "httpd-bundle", "192.168.122.132", 3121, "node3"),
    ],
    "remote-placements-pacemaker-ignores.xml": [
        ("node1", "cluster", "online", None, None, None, None),
    ],
    "remote-failed-monitor-no-fencing.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "", "remote1", "192.168.122.21", 3121, "node1"),  # no fencing: not unclean
    ],
    "remote-maintenance.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online maintenance", "remote1", "192.168.122.21", 3121, "node1"),  # attribute
        ("remote2", "remote", "online maintenance", "remote2", "192.168.122.22", 3121, "node1"),  # unmanaged
        ("remote3", "remote", "online", "remote3", "192.168.122.23", 3121, "node1"),
    ],
    "remote-offline-stopped.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "", "remote2", "192.168.122.22", 3121, None),
    ],
    "remote-online.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "online", "remote2", "remote2", 3121, "node2"),  # server defaults to the id
        ("remote3", "remote", "online", "remote3", "rem3.example.com", 3131, "node2"),
    ],
    "remote-standby.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online standby", "remote1", "192.168.122.21", 3121, "node1"),  # permanent
        ("remote2", "remote", "online standby", "remote2", "192.168.122.22", 3121, "node2"),  # transient
        ("remote3", "remote", "online", "remote3", "192.168.122.23", 3121, "node1"),
    ],
    "remote-unclean-failed-monitor.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "unclean", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "online", "remote2", "192.168.122.22", 3121, "node1"),
    ],
    "remote-unseen.xml": [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "online", None, None, None, None),
        ("remote1", "remote", "online", "remote1", "192.168.122.21", 3121, "node1"),
        ("remote2", "remote", "unclean", "remote2", "192.168.122.22", 3121, None),  # never seen: startup fencing
    ],
}


def _row(node: Node):
    d = jsonable(node)
    flags = " ".join(k for k in ("online", "standby", "maintenance", "unclean") if d[k])
    return (d["name"], d["type"], flags, d["resource"], d["address"], d["port"], d["host"])


def test_every_fixture_has_expectations():
    assert sorted(p.name for p in CIB_DIR.glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    assert [_row(n) for n in nodes_from_cib((CIB_DIR / name).read_bytes())] == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixtures_are_what_gen_cib_writes(name):
    gen = _gen_cib()
    assert (CIB_DIR / name).read_text() == gen.build(gen.SCENARIOS[name]), (
        f"{name} differs from bench/gen_cib.py's scenario: regenerate with "
        "python bench/gen_cib.py --write-fixtures tests/data/cib"
    )


def test_timestamps_read_the_pacemaker_2_1_5_way_on_request():
    # Pacemaker 2.1.5 does not know the timestamp form: in_ccm="1732536400" is not "true", so the cluster
    # nodes look lost (offline, unclean) to it. That is what crm_mon 2.1.5 prints for this file.
    old = {n.name: n.state_key() for n in nodes_from_cib((CIB_DIR / "membership-timestamps.xml").read_bytes(),
                                                          membership_timestamps=False)}
    assert old["node1"] == ("node1", "cluster", False, False, False, True)
    assert old["node2"] == ("node2", "cluster", False, False, False, True)
    assert old["node3"] == ("node3", "cluster", False, False, False, False)
    # Booleans read the same either way
    both = [nodes_from_cib((CIB_DIR / "membership-booleans.xml").read_bytes(), membership_timestamps=flag) for flag in (True, False)]
    assert both[0] == both[1]


def test_timestamp_zero_means_not_a_member():
    root = ElementTree.fromstring((CIB_DIR / "membership-timestamps.xml").read_bytes())
    for state in root.iter("node_state"):
        if state.get("uname") == "node2":
            state.set("in_ccm", "0")
            state.set("crmd", "0")
            state.set("join", "down")
            state.set("expected", "down")
    nodes = {n.name: n for n in nodes_from_cib(root)}
    assert (nodes["node2"].online, nodes["node2"].unclean) == (False, False)


def test_to_dict_has_exactly_the_contract_keys_on_every_node():
    for path in CIB_DIR.glob("*.xml"):
        for node in nodes_from_cib(path.read_bytes()):
            d = jsonable(node)
            assert list(d) == CONTRACT_KEYS
            assert d["type"] in NODE_TYPES
            assert all(isinstance(d[k], bool) for k in ("online", "standby", "maintenance", "unclean"))
            assert d["port"] is None or isinstance(d["port"], int)
            json.dumps(d)
            if d["type"] == "cluster":
                assert (d["resource"], d["address"], d["port"], d["host"]) == (None, None, None, None)
    assert [f.name for f in fields(Node)] == CONTRACT_KEYS


def test_node_is_immutable():
    node = Node("n", "cluster", True, False, False, False)
    with pytest.raises(FrozenInstanceError):
        node.online = False  # type: ignore[misc]


def test_sort_order_cluster_remote_guest_bundle_then_natural_name():
    nodes = [
        Node("b-1", "bundle", True, False, False, False),
        Node("g1", "guest", True, False, False, False),
        Node("remote10", "remote", True, False, False, False),
        Node("Remote3", "remote", True, False, False, False),
        Node("remote2", "remote", True, False, False, False),
        Node("node10", "cluster", True, False, False, False),
        Node("node9", "cluster", True, False, False, False),
        Node("b-0", "bundle", True, False, False, False),
    ]
    assert [n.name for n in sort_nodes(nodes)] == [
        "node9", "node10", "remote2", "Remote3", "remote10", "g1", "b-0", "b-1",
    ]
    assert sort_nodes(list(reversed(nodes))) == sort_nodes(nodes)


def test_input_forms_agree():
    path = CIB_DIR / "mixed.xml"
    data = path.read_bytes()
    expected = nodes_from_cib(data)
    assert nodes_from_cib(data.decode()) == expected
    assert nodes_from_cib(ElementTree.fromstring(data)) == expected


def test_the_model_reads_no_files():
    path = CIB_DIR / "mixed.xml"
    with pytest.raises(TypeError, match="read the file first"):
        nodes_from_cib(path)  # type: ignore[arg-type]
    with pytest.raises(RemotectlError, match="malformed XML"):
        nodes_from_cib(str(path))  # a str is XML text, never a file name


def test_not_a_cib():
    with pytest.raises(RemotectlError, match="not a CIB"):
        nodes_from_cib(b"<pacemaker-result/>")


def test_empty_cib_lists_nothing():
    assert nodes_from_cib(b'<cib><configuration><crm_config/><nodes/><resources/><constraints/></configuration>'
                          b'<status/></cib>') == []


def test_guest_in_group_and_rsc_defaults_unmanaged():
    cib = b"""<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" have-quorum="1">
      <configuration>
        <crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/>
        </cluster_property_set></crm_config>
        <nodes><node id="1" uname="node1"/></nodes>
        <resources>
          <group id="g">
            <primitive id="vm" class="ocf" provider="pacemaker" type="Dummy">
              <meta_attributes id="vm-m"><nvpair id="vm-m1" name="remote-node" value="guest9"/>
                <nvpair id="vm-m2" name="remote-port" value="4000"/></meta_attributes>
            </primitive>
          </group>
        </resources>
        <rsc_defaults><meta_attributes id="d"><nvpair id="d1" name="is-managed" value="false"/></meta_attributes>
        </rsc_defaults>
      </configuration>
      <status><node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member"/></status>
    </cib>"""
    nodes = {n.name: n for n in nodes_from_cib(cib)}
    guest = nodes["guest9"]
    assert (guest.type, guest.resource, guest.address, guest.port) == ("guest", "vm", "guest9", 4000)
    assert not guest.online and not guest.unclean


# ---- nodes_from_crm_mon ----------------------------------------------------------------------------------------

CRM_MON = (Path(__file__).resolve().parents[1] / "data" / "crm_mon" / "node-kinds-with-ping.xml").read_bytes()


def test_crm_mon_without_cib():
    rows = [_row(n) for n in nodes_from_crm_mon(CRM_MON)]
    assert rows == [
        ("node1", "cluster", "online", None, None, None, None),
        ("node2", "cluster", "unclean", None, None, None, None),
        ("remote1", "remote", "online maintenance", "remote1", None, None, "node1"),
        ("guest1", "guest", "online standby", "vm-guest1", None, None, "node1"),
        ("httpd-bundle-0", "bundle", "online", "httpd-bundle", "node1", None, "node1"),
    ]


def test_crm_mon_with_cib_takes_addresses_from_the_configuration():
    cib = (CIB_DIR / "mixed.xml").read_bytes()
    nodes = {n.name: n for n in nodes_from_crm_mon(CRM_MON, cib)}
    assert (nodes["remote1"].address, nodes["remote1"].port) == ("192.168.122.21", DEFAULT_REMOTE_PORT)
    assert (nodes["guest1"].address, nodes["guest1"].port, nodes["guest1"].host) == ("guest1", 3121, "node1")
    assert (nodes["httpd-bundle-0"].address, nodes["httpd-bundle-0"].resource) == ("192.168.122.131", "httpd-bundle")
    assert nodes["guest1"].standby and nodes["remote1"].maintenance  # states come from crm_mon, not the CIB
    assert "pinger" not in nodes


def test_crm_mon_with_configuration_section_only():
    root = ElementTree.fromstring((CIB_DIR / "mixed.xml").read_bytes())
    config = ElementTree.tostring(root.find("configuration"))
    assert nodes_from_crm_mon(CRM_MON, config) == nodes_from_crm_mon(CRM_MON, (CIB_DIR / "mixed.xml").read_bytes())


def test_crm_mon_errors_are_one_line():
    with pytest.raises(RemotectlError, match="no <nodes>"):
        nodes_from_crm_mon(b'<pacemaker-result><status code="0" message="OK"/></pacemaker-result>')
    with pytest.raises(RemotectlError, match="crm_mon failed: Not connected"):
        nodes_from_crm_mon(b'<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>')
    with pytest.raises(RemotectlError) as err:
        nodes_from_crm_mon(b"<pacemaker-result><nodes>")
    assert "\n" not in err.value.message and "crm_mon output" in err.value.message


# ---- xmlsafe ---------------------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<cib>&lol9;</cib>"""

HOSTILE = {
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE"),
    "external entity": (b'<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY x SYSTEM "file:///etc/passwd">]><cib>&x;</cib>',
                        "DOCTYPE"),
    "external DTD": (b'<!DOCTYPE cib SYSTEM "http://example.invalid/cib.dtd"><cib/>', "DOCTYPE"),
    "DOCTYPE after comment": (b"<!-- hi --><!DOCTYPE cib><cib/>", "DOCTYPE"),
    "undefined entity": (b"<cib>&x;</cib>", "undefined entity"),
    "truncated": (b'<cib><configuration><nodes><node id="1"', "malformed XML at line 1"),
    "empty": (b"", "empty document"),
    "whitespace": (b"  \n ", "empty document"),
    "not XML": (b"crm_mon: connection refused", "malformed XML"),
    "two roots": (b"<cib/><cib/>", "junk after document element"),
    "bad encoding": (b"<cib a='\xff\xfe'/>", "malformed XML"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_refused_with_one_line(name):
    data, expected = HOSTILE[name]
    with pytest.raises(RemotectlError) as err:
        xmlsafe.parse(data, "CIB from node1")
    message = err.value.message
    assert "\n" not in message
    assert message.startswith("CIB from node1: ")
    assert expected in message


def test_hostile_cib_through_the_model():
    with pytest.raises(RemotectlError, match="DOCTYPE"):
        nodes_from_cib(BILLION_LAUGHS)


def test_line_and_column_are_reported():
    with pytest.raises(RemotectlError, match=r"line 3, column 8: mismatched tag"):  # 1-based, at "c"
        xmlsafe.parse(b"<cib>\n  <a/>\n  <b></c>\n</cib>", "x")


def test_size_limit():
    with pytest.raises(RemotectlError, match=r"too large \(2.0 KiB; the limit is 100 bytes\)"):
        xmlsafe.parse(b"<cib>" + b" " * (2048 - 11) + b"</cib>", "x", max_bytes=100)
    with pytest.raises(RemotectlError, match=r"too large \(101 bytes; the limit is 100 bytes\)"):
        xmlsafe.parse("<cib>" + " " * (101 - 11) + "</cib>", "x", max_bytes=100)
    assert xmlsafe.MAX_BYTES == 64 * 1024 * 1024


def test_accepts_declaration_comments_bom_and_text():
    root = xmlsafe.parse(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><?pi x?><cib a="1"/>', "x")
    assert root.tag == "cib" and root.get("a") == "1"
    assert xmlsafe.parse('<?xml version="1.0" encoding="ISO-8859-1"?><cib a="é"/>', "x").get("a") == "é"
    assert xmlsafe.parse("<cib/>".encode("utf-16"), "x").tag == "cib"
    assert xmlsafe.parse(b"<cib><![CDATA[<!DOCTYPE x>]]></cib>", "x").text == "<!DOCTYPE x>"


def test_xmlsafe_rejects_other_types():
    with pytest.raises(TypeError):
        xmlsafe.parse(123, "x")  # type: ignore[arg-type]


# ---- the generator and the module's command line --------------------------------------------------------------

def test_generated_big_cib():
    gen = _gen_cib()
    nodes = nodes_from_cib(gen.build(gen.big(60, cluster_nodes=3)))
    assert [n.type for n in nodes].count("remote") == 60
    assert [n.type for n in nodes].count("cluster") == 3
    assert all(n.online and not n.unclean for n in nodes)
    assert sum(n.standby for n in nodes) == 1  # remote1 (every 97th remote is in transient standby)
    remote7 = next(n for n in nodes if n.name == "remote7")
    assert (remote7.address, remote7.port, remote7.host) == ("10.0.0.6", 3121, "node1")


def test_module_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "remotectl.pacemaker.nodes", str(CIB_DIR / "guest.xml")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [n["name"] for n in doc["nodes"]] == ["node1", "node2", "guest1", "guest2"]
    bad = tmp_path / "bad.xml"
    bad.write_bytes(BILLION_LAUGHS)
    for path in (bad, tmp_path / "nope.xml"):
        out = subprocess.run([sys.executable, "-m", "remotectl.pacemaker.nodes", str(path)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 1 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "nope.xml" in out.stderr
