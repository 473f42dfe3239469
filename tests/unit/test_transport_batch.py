"""Several commands in one round trip (remotectl/transport/batch.py) with the real sh here, and the CIB parts
that stand in for the whole CIB in the node list (remotectl/pacemaker/inventory.py cib_from_parts)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from remotectl.pacemaker import inventory
from remotectl.transport import batch
from remotectl.transport.local import LocalRunner

DATA = Path(__file__).resolve().parents[1] / "data"

FORGED = "x\nremotectl-batch/1\n0 3 0\nabc\nend\n"  # output that imitates the framing


def test_outputs_come_back_exactly_whatever_they_contain():
    commands = [["printf", "%s", FORGED], ["sh", "-c", "printf 'oops\\n' >&2; exit 7"],
                ["printf", "\\303\\251t\\303\\251 \\342\\206\\222 \\033[31m"], ["true"], ["printf", "%s", "0 99 99\n"]]
    results = batch.run_batch(LocalRunner(), commands)
    assert [(r.rc, r.stdout, r.stderr) for r in results] == [
        (0, FORGED, ""), (7, "", "oops\n"), (0, "été → \x1b[31m", ""), (0, "", ""), (0, "0 99 99\n", "")]
    assert [r.argv for r in results] == [tuple(c) for c in commands]


def test_a_missing_command_is_its_own_127():
    results = batch.run_batch(LocalRunner(), [["remotectl-no-such-tool"], ["echo", "ok"]])
    assert results[0].rc == 127 and (results[1].rc, results[1].stdout) == (0, "ok\n")


def test_hostile_arguments_stay_literal(tmp_path):
    marker = tmp_path / "pwned"
    hostile = [f"x; touch {marker}", "$(id)", "`id`", "'q'", '"dq"', "\\", "*"]
    [result] = batch.run_batch(LocalRunner(), [["printf", "%s\\n", *hostile]])
    assert result.stdout.splitlines() == hostile and not marker.exists()


def test_invalid_utf8_refuses_the_batch():
    """The runners decode with replacement characters, so byte counts no longer hold: None (run one by one)."""
    assert batch.run_batch(LocalRunner(), [["printf", "\\377abc"]]) is None


def test_login_shell_noise_before_the_frames_is_skipped():
    commands = [["a"], ["b"]]
    body = "remotectl-batch/1\n0\n1\n 2 /t/0.o\n0 /t/0.e\n0 /t/1.o\n1 /t/1.e\n3 total\nhiXend\n"
    assert [(r.rc, r.stdout, r.stderr) for r in batch.parse_batch(commands, "motd\nwelcome\n" + body)] == [
        (0, "hi", ""), (1, "", "X")]
    assert batch.parse_batch(commands, body) is not None


HEAD = "remotectl-batch/1\n0\n0\n1 o\n0 e\n0 o\n0 e\n1 total\n"


@pytest.mark.parametrize("stdout", [
    "",  # nothing
    "remotectl-batch/1\n0\n0\n5 o\n0 e\n",  # truncated header
    HEAD,  # no data, no end
    HEAD + "a",  # no end
    HEAD + "aend\nmore\n",  # trailing data
    HEAD.replace("1 o", "x o") + "aend\n",  # not a number
    HEAD.replace("0\n0\n1", "0\n-1\n1") + "aend\n",  # not an exit status
    HEAD + "\ufffdend\n",  # replaced bytes
])
def test_replies_that_do_not_parse_are_refused(stdout):
    assert batch.parse_batch([["a"], ["b"]], stdout) is None


# --- the parts of a CIB the node list fetches -------------------------------------------------------------------

def _cibs():
    return sorted(p for d in ("cib", "cib-lab", "cib-handwritten") for p in (DATA / d).glob("*.xml"))


def _parts(path):
    """What cibadmin --query --xpath /cib --no-children and the sections query print for this CIB."""
    root = ET.parse(path).getroot()
    bare = ET.Element("cib", root.attrib)
    wrapper = ET.Element("xpath-query")
    for section in root.find("configuration"):
        if section.tag in inventory.SECTIONS:
            wrapper.append(section)
    return ET.tostring(bare, encoding="unicode"), ET.tostring(wrapper, encoding="unicode")


def _described(inv):
    return [inv.node(name) for name in inv.names()], inv.connections()


@pytest.mark.parametrize("path", _cibs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_parts_give_the_same_inventory_as_the_whole_cib(path):
    whole = inventory.inventory_from_cib(path.read_text())
    root_xml, sections_xml = _parts(path)
    parts = inventory.cib_from_parts(root_xml, sections_xml)
    if parts is None:  # only when an id-ref leads outside the parts
        assert any("id-ref" in e.attrib for e in ET.parse(path).getroot().iter())
        return
    assert parts.find("status") is None and parts.find("configuration/constraints") is None
    assert _described(inventory.inventory_from_cib(parts)) == _described(whole)


def test_an_id_ref_outside_the_parts_asks_for_the_whole_cib():
    root_xml = '<cib validate-with="pacemaker-3.9"/>'
    sections = ('<resources><primitive id="r" class="ocf" provider="pacemaker" type="remote">'
                '<meta_attributes id-ref="defined-in-constraints"/></primitive></resources>')
    assert inventory.cib_from_parts(root_xml, sections) is None
    sections_ok = sections.replace('id-ref="defined-in-constraints"', 'id="m"')
    assert inventory.cib_from_parts(root_xml, sections_ok).find("configuration/resources/primitive") is not None


@pytest.mark.parametrize("root_xml, sections_xml", [
    ('<cib><status/></cib>', '<nodes/>'),  # the root with children: not the --no-children answer
    ('<xpath-query/>', '<nodes/>'),
    ('<cib/>', '<constraints/>'),  # a section that was not asked for
    ('<cib/>', '<xpath-query/>'),  # nothing at all
])
def test_parts_that_are_not_what_was_asked_for_are_refused(root_xml, sections_xml):
    assert inventory.cib_from_parts(root_xml, sections_xml) is None
