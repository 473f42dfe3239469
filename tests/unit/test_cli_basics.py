"""The CLI contract every command shares: help, version, one-line errors, exit codes, nothing on stdout on error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import remotectl

EXAMPLE_CIB = Path(__file__).resolve().parents[2] / "examples" / "cib.xml"


def remotectl_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "remotectl", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_help_and_version():
    assert remotectl_cli("--help").returncode == 0
    version = remotectl_cli("--version")
    assert version.stdout.strip() == f"remotectl {remotectl.__version__}"


def test_no_cluster_reachable_gives_one_line_and_empty_stdout(tmp_path):
    result = remotectl_cli("--cluster", "root@127.0.0.1:1", "--known-hosts", str(tmp_path / "kh"), "nodes", "--json")
    assert (result.returncode, result.stdout) == (1, "")
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot connect" in result.stderr


def test_default_cluster_without_pacemaker_names_the_options(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no crm_mon here
    env.pop("REMOTECTL_CLUSTER", None)
    env.pop("REMOTECTL_CIB", None)
    result = remotectl_cli("nodes", "--json", env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert "--cluster" in result.stderr and "--cib" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_cib_is_a_one_line_error(tmp_path):
    bad = tmp_path / "cib.xml"
    bad.write_text("<cib><configuration>")
    result = remotectl_cli("--cib", str(bad), "nodes")
    assert (result.returncode, result.stdout) == (1, "")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_missing_cib_file_is_a_one_line_error(tmp_path):
    result = remotectl_cli("--cib", str(tmp_path / "nope.xml"), "nodes")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_cluster_and_cib_together_is_a_usage_error():
    result = remotectl_cli("--cluster", "local", "--cib", str(EXAMPLE_CIB), "nodes")
    assert result.returncode == 2


def test_example_cib_lists_every_node_type():
    result = remotectl_cli("--cib", str(EXAMPLE_CIB), "nodes", "--json")
    assert result.returncode == 0, result.stderr
    types = {node["type"] for node in json.loads(result.stdout)["nodes"]}
    assert types == {"cluster", "remote", "guest"}


def test_env_var_selects_the_cib():
    env = dict(os.environ, REMOTECTL_CIB=str(EXAMPLE_CIB))
    env.pop("REMOTECTL_CLUSTER", None)
    result = remotectl_cli("nodes", "--type", "guest", "--json", env=env)
    assert result.returncode == 0
    assert [node["type"] for node in json.loads(result.stdout)["nodes"]] == ["guest"]


def test_tool_failure_detail_comes_from_the_xml_status():
    from remotectl.pacemaker.tools import failure_detail

    xml = ('<pacemaker-result api-version="2.25" request="crm_mon">\n  <status code="102" message="Not connected">\n'
           "    <errors>\n      <error>error: Could not connect to launcher</error>\n"
           "      <error>crm_mon: Connection to cluster failed: Connection refused</error>\n"
           "    </errors>\n  </status>\n</pacemaker-result>\n")
    assert failure_detail(xml, "") == "crm_mon: Connection to cluster failed: Connection refused"
    assert failure_detail('<pacemaker-result><status code="105" message="No such object"/></pacemaker-result>',
                          "") == "No such object"
    assert failure_detail("", "\nError: it broke\nmore") == "Error: it broke"


def test_old_schema_cib_lists_its_nodes_and_too_old_is_one_line(tmp_path):
    cib = (Path(__file__).resolve().parents[1] / "data" / "cib-handwritten" / "old-schema-1.2-normal-nodes.xml")
    listed = json.loads(remotectl_cli("--cib", str(cib), "nodes", "--json").stdout)
    assert {n["name"] for n in listed["nodes"] if n["type"] == "cluster"} == {f"node{i}" for i in range(1, 6)}
    old = tmp_path / "old.xml"
    old.write_text(cib.read_text().replace('validate-with="pacemaker-1.2"', 'validate-with="pacemaker-0.7"'))
    result = remotectl_cli("--cib", str(old), "nodes")
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "pacemaker-0.7" in result.stderr


def test_newer_schema_cib_is_listed_with_a_warning(tmp_path):
    cib = tmp_path / "new.xml"
    cib.write_text(EXAMPLE_CIB.read_text().replace('validate-with="pacemaker-3.9"', 'validate-with="pacemaker-5.1"'))
    assert 'validate-with="pacemaker-5.1"' in cib.read_text()
    result = remotectl_cli("--cib", str(cib), "nodes", "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["nodes"]
    assert [r["code"] for r in doc["reports"]] == ["cib-schema-newer"]
