import os

import pytest

from remotectl.transport.base import TransportError
from remotectl.transport.local import LocalRunner
from remotectl.transport.ssh import Destination, parse_destination, remote_command

HOSTILE = ["x; touch /tmp/remotectl-pwned-local", "$(id)", "a b", "'", '"']


def test_local_runner_passes_hostile_arguments_literally():
    result = LocalRunner().run(["printf", "%s\\n", *HOSTILE])
    assert result.stdout.split("\n")[:-1] == HOSTILE
    assert not os.path.exists("/tmp/remotectl-pwned-local")


def test_local_runner_missing_command_is_a_transport_error():
    with pytest.raises(TransportError, match="command not found"):
        LocalRunner().run(["remotectl-no-such-tool"])


def test_local_runner_uses_c_locale_and_extra_env():
    result = LocalRunner().run(["sh", "-c", 'echo "$LC_ALL $CIB_file"'], env={"CIB_file": "/x y"})
    assert result.stdout == "C /x y\n"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("node1", Destination(None, "node1", None)),
        ("root@node1", Destination("root", "node1", None)),
        ("root@10.0.0.1:2222", Destination("root", "10.0.0.1", 2222)),
        ("[fe80::1]:22", Destination(None, "fe80::1", 22)),
        ("admin@[::1]", Destination("admin", "::1", None)),
        ("fe80::1", Destination(None, "fe80::1", None)),
    ],
)
def test_parse_destination(text, expected):
    assert parse_destination(text) == expected


@pytest.mark.parametrize("text", ["", "@host", "host:0", "host:99999", "host:x", "-oProxyCommand=x", "a b"])
def test_parse_destination_rejects(text):
    with pytest.raises(TransportError):
        parse_destination(text)


def test_remote_command_quotes_every_argument():
    assert remote_command(["crm_attribute", "--node", "a;b $(id)"], {"CIB_file": "/tmp/c i b"}) == (
        "env LC_ALL=C 'CIB_file=/tmp/c i b' crm_attribute --node 'a;b $(id)'"
    )
