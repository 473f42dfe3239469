"""Pacemaker's value rules (remotectl/pacemaker/values.py), each against what the cited C function does."""

import xml.etree.ElementTree as ET

import pytest

from remotectl.pacemaker import values
from remotectl.reports import RemotectlError


@pytest.mark.parametrize("word", ["true", "TRUE", "on", "Yes", "y", "1"])
def test_crm_is_true_words(word):
    assert values.str_to_boolean(word) is True
    assert values.is_true(word)


@pytest.mark.parametrize("word", ["false", "Off", "no", "N", "0"])
def test_crm_false_words(word):
    assert values.str_to_boolean(word) is False
    assert not values.is_true(word)


@pytest.mark.parametrize("word", [None, "", " true", "true ", "2", "enabled", "t"])
def test_anything_else_is_neither_true_nor_false(word):
    # crm_str_to_boolean compares whole strings with strcasecmp: no trimming, no prefixes
    assert values.str_to_boolean(word) is None
    assert not values.is_true(word)


@pytest.mark.parametrize(
    "given, normal, value",
    [
        ("INFINITY", "INFINITY", 1000000), ("+INFINITY", "INFINITY", 1000000), ("-inf", "-INFINITY", -1000000),
        ("+5", "5", 5), ("-200", "-200", -200), ("2000000", "INFINITY", 1000000), ("red", "red", None),
    ],
)
def test_scores(given, normal, value):
    assert values.normalize_score(given) == normal
    assert values.score_value(given) == value


@pytest.mark.parametrize("given, score", [("INFINITY", 1000000), ("-infinity", -1000000), ("12abc", 12),
                                          ("abc", 0), (None, 0), ("99999999", 1000000)])
def test_char2score(given, score):
    assert values.char2score(given) == score


def test_add_scores_minus_infinity_wins():
    assert values.add_scores(values.INFINITY, -values.INFINITY) == -values.INFINITY
    assert values.add_scores(999999, 5) == values.INFINITY
    assert values.add_scores(3, -5) == -2


@pytest.mark.parametrize("bad", ["", "abc", "1.5", "10 ; rm", "INFINITYX", "--5"])
def test_user_scores_are_validated(bad):
    with pytest.raises(RemotectlError):
        values.parse_user_score(bad)


def test_negate_score():
    assert values.negate_score("INFINITY") == "-INFINITY"
    assert values.negate_score("200") == "-200"


@pytest.mark.parametrize("given, ms", [("10", 10000), ("10s", 10000), ("500ms", 500), ("2min", 120000),
                                       ("1h", 3600000), ("soon", -1), (None, -1)])
def test_get_msec(given, ms):
    assert values.get_msec(given) == ms


@pytest.mark.parametrize("given, ms", [("PT30S", 30000), ("P1DT1H", 90000000), ("15s", 15000), ("0", 0),
                                       ("bad", 0), (None, 0)])
def test_parse_interval(given, ms):
    assert values.parse_interval_ms(given) == ms


def test_numeric_strcasecmp_orders_like_crm_mon():
    names = ["node10", "Node2", "node1", "remote-3", "remote-20"]
    import functools
    assert sorted(names, key=functools.cmp_to_key(values.numeric_strcasecmp)) == [
        "node1", "Node2", "node10", "remote-3", "remote-20"]


def test_version_tuple_ignores_trailing_zeros():
    assert values.version_tuple("3.0.0") == values.version_tuple("3") == (3,)
    assert values.version_tuple("3.18.0") > values.version_tuple("3.9")


def test_element_int():
    el = ET.fromstring('<op call-id="12" rc-code="x"/>')
    assert values.element_int(el, "call-id", -1) == 12
    assert values.element_int(el, "rc-code", 0) == -1
    assert values.element_int(el, "missing", 7) == 7


def test_result_status_joins_error_lines():
    root = ET.fromstring('<pacemaker-result><status code="105" message="No such object">'
                         '<errors><error>crm_resource: node x not found</error></errors></status></pacemaker-result>')
    status = values.result_status(root)
    assert (status.code, status.errors) == (105, ("crm_resource: node x not found",))
    assert status.describe() == "No such object: crm_resource: node x not found"
    assert values.result_status(ET.fromstring("<pacemaker-result/>")) == (None, None, ())


@pytest.mark.parametrize("text", ["node1", "remote-1.example.com", "10.0.0.2", "fe80::1", "fe80::1%eth0",
                                  "2001:db8::2", "host_with_underscore", "fqdn.example."])
def test_host_addresses_that_are_usable(text):
    assert values.host_address_problem(text) is None


@pytest.mark.parametrize("text", ["", " ", "bad host", "a\tb", "a\x1bb", "x\n", "-oProxyCommand=id", "root@host",
                                  "host:22", "[::1]", "fe80::1%eth0 junk", "fe80::zz", "a..b", "a" * 64 + ".com",
                                  "host/x", "-"])
def test_host_addresses_that_are_not(text):
    assert values.host_address_problem(text)
