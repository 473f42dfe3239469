"""The completion cache: what may be offered, file names, the CIB resource parser, and the private cache files.
(The background refresher and its deadline are exercised in tests/integration/test_completion_shell.py.)"""

import json
import os
import stat
import time
from pathlib import Path

import pytest

from remotectl.actions import completion_cache as cc
from remotectl.reports import RemotectlError
from remotectl.transport import cache

ROOT = Path(__file__).resolve().parents[2]
CIB = ROOT / "tests" / "data" / "completion-cib.xml"


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "remotectl"


def test_safe_values_drop_what_a_shell_would_interpret():
    values = ["node1", "node1", "remote-1.example.com", "user@host:22", "a b", "a\nb", "$(reboot)", "`id`",
              "x;y", "x|y", "x&y", "*", "a?", "[ab]", "{a,b}", "~root", "!1", "#c", "q'", 'q"', "back\\slash",
              "", "é-node", "x" * 201, 42, None]
    assert cc.safe_values(values) == ["node1", "remote-1.example.com", "user@host:22", "é-node"]


def test_safe_values_never_offer_an_option_or_a_control_character():
    values = ["-x", "--force", "-", "\x1b[2J", "a\x7f", "a\u0085b", "a\u202eb", "a\tb", "a\rb", "ok-node", "a-"]
    assert cc.safe_values(values) == ["ok-node", "a-"]


def test_cache_file_names_are_injective_and_safe():
    names = {cc.cache_file_name(t) for t in ["local", "root@n1:2222", "root@n1%3A2222", "../x", "a/b", "ü", "."]}
    assert len(names) == 7
    for name in names:
        assert "/" not in name and not name.startswith(".") and name.endswith(".json")
    assert cc.cache_file_name("root@node1:2222") == "completion-root@node1%3A2222.json"
    long = cc.cache_file_name("h" * 500)
    assert len(long) < 255 and long != cc.cache_file_name("h" * 499)


def test_resource_ids_from_the_cib():
    ids = cc.resource_ids_from_cib(CIB.read_text())
    assert ids == ["remote1", "vm-guest1", "dummy1", "web", "web-ip", "web-server", "ping-clone", "ping"]


def test_resource_parser_refuses_entities():
    evil = '<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY x "boom">]><cib><configuration><resources>' \
           '<primitive id="&x;"/></resources></configuration></cib>'
    with pytest.raises(RemotectlError):
        cc.resource_ids_from_cib(evil)


def test_values_from_a_cib_file():
    assert cc.values_from_cib_file(str(CIB), "nodes") == ["node1", "node2", "remote1", "guest1"]
    assert "web" in cc.values_from_cib_file(str(CIB), "resources")


def test_completion_wait_is_bounded(monkeypatch):
    for text, expected in [("", cc.DEFAULT_WAIT), ("0.2", 0.2), ("-3", 0.0), ("99", cc.MAX_WAIT),
                           ("nan", cc.DEFAULT_WAIT), ("soon", cc.DEFAULT_WAIT)]:
        monkeypatch.setenv("REMOTECTL_COMPLETION_TIMEOUT", text)
        assert cc.completion_wait() == expected, text


def test_cache_files_are_private(cache_home):
    assert cache.write_json("completion-x.json", {"a": [1]})
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_home / "completion-x.json").stat().st_mode) == 0o600
    assert cache.read_json("completion-x.json") == {"a": [1]}
    assert [p.name for p in cache_home.iterdir()] == ["completion-x.json"]  # no temp file left


def test_a_loose_cache_directory_is_tightened(cache_home):
    cache_home.mkdir(parents=True, mode=0o755)
    os.chmod(cache_home, 0o777)
    assert cache.write_json("completion-x.json", {})
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700


def test_symlinks_and_garbage_are_not_trusted(cache_home, tmp_path):
    cache_home.mkdir(parents=True, mode=0o700)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"nodes": ["planted"]}))
    (cache_home / "completion-link.json").symlink_to(elsewhere)
    assert cache.read_json("completion-link.json") is None
    (cache_home / "completion-bad.json").write_text("{not json")
    assert cache.read_json("completion-bad.json") is None
    (cache_home / "completion-list.json").write_text("[1, 2]")
    assert cache.read_json("completion-list.json") is None
    (cache_home / "completion-big.json").write_text(" " * (cache.MAX_BYTES + 1) + "{}")
    assert cache.read_json("completion-big.json") is None


def test_a_symlinked_cache_directory_is_not_used(tmp_path, monkeypatch):
    (tmp_path / "xdg").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "xdg" / "remotectl").symlink_to(tmp_path / "target")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() is None
    assert not cache.write_json("completion-x.json", {})
    assert list((tmp_path / "target").iterdir()) == []


def test_bad_names_are_refused(cache_home):
    for name in ("../x.json", ".hidden", "", "a/b"):
        with pytest.raises(ValueError):
            cache.read_json(name)


def test_a_fresh_entry_is_served_without_connecting(cache_home):
    now = time.time()
    cache.write_json(cc.cache_file_name("n1"), {"format": cc.FORMAT, "target": "n1", "nodes": ["a", "b"],
                                                 "resources": ["r"], "fetched_at": now, "attempted_at": now})

    def connect():
        raise AssertionError("must not connect while the cache is fresh")

    assert cc.lookup("n1", "nodes", connect, wait=0) == ["a", "b"]
    assert cc.lookup("n1", "resources", connect, wait=0) == ["r"]


def test_an_entry_for_another_target_or_format_is_ignored(cache_home):
    now = time.time()
    cache.write_json(cc.cache_file_name("n1"), {"format": cc.FORMAT, "target": "n2", "nodes": ["a"],
                                                 "fetched_at": now})
    assert cc._entry("n1") is None
    cache.write_json(cc.cache_file_name("n1"), {"format": 999, "target": "n1", "nodes": ["a"], "fetched_at": now})
    assert cc._entry("n1") is None


def test_a_recent_failed_attempt_serves_stale_values_without_retrying(cache_home):
    now = time.time()
    cache.write_json(cc.cache_file_name("n1"), {"format": cc.FORMAT, "target": "n1", "nodes": ["old"],
                                                 "resources": [], "fetched_at": now - 3600, "attempted_at": now - 1,
                                                 "error": "TransportError: unreachable"})

    def connect():
        raise AssertionError("must not retry within the TTL of a failed attempt")

    assert cc.lookup("n1", "nodes", connect, wait=0) == ["old"]


def test_unknown_kind_is_a_bug():
    with pytest.raises(ValueError):
        cc.lookup("n1", "fruit", lambda: None, wait=0)
