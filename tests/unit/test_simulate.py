"""remotectl.pacemaker.simulate: the pieces of the port that are easier to pin alone than through a whole CIB."""

import itertools

from remotectl.pacemaker.simulate.enums import OnFail, cmp_on_fail


def _pacemaker_cmp_on_fail(first, second):
    """cmp_on_fail() of Pacemaker 2.1.5's lib/pengine/unpack.c, branch by branch."""
    if first == OnFail.DEMOTE:
        return 1 if second == OnFail.IGNORE else 0 if second == OnFail.DEMOTE else -1
    if first == OnFail.RESET_REMOTE:
        if second in (OnFail.IGNORE, OnFail.DEMOTE, OnFail.RECOVER):
            return 1
        return 0 if second == OnFail.RESET_REMOTE else -1
    if first == OnFail.RESTART_CONTAINER:
        if second in (OnFail.IGNORE, OnFail.DEMOTE, OnFail.RECOVER, OnFail.RESET_REMOTE):
            return 1
        return 0 if second == OnFail.RESTART_CONTAINER else -1
    if second == OnFail.DEMOTE:
        return -1 if first == OnFail.IGNORE else 1
    if second == OnFail.RESET_REMOTE:
        return -1 if first in (OnFail.IGNORE, OnFail.DEMOTE, OnFail.RECOVER) else 1
    if second == OnFail.RESTART_CONTAINER:
        return -1 if first in (OnFail.IGNORE, OnFail.DEMOTE, OnFail.RECOVER, OnFail.RESET_REMOTE) else 1
    return first - second


def _sign(n):
    return (n > 0) - (n < 0)


def test_on_fail_severity_is_pacemakers_order():
    for first, second in itertools.product(OnFail, OnFail):
        assert _sign(cmp_on_fail(first, second)) == _sign(_pacemaker_cmp_on_fail(first, second)), (first, second)
