"""Pacemaker's integer enums the unpacker compares and orders, as ``IntEnum``s (values as in Pacemaker 2.1.5).

They stay integers on purpose: history entries carry them as numbers (``rc-code``, ``op-status``), and the unpacker
orders roles and on-fail policies the way the C code does.
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """``enum rsc_role_e`` (include/crm/common/scheduler_types.h); ordered: a "higher" role wins."""

    UNKNOWN = 0
    STOPPED = 1
    STARTED = 2
    UNPROMOTED = 3
    PROMOTED = 4


class OcfRc(IntEnum):
    """``enum ocf_exitcode`` (include/crm/common/results.h): an agent's result in ``rc-code``."""

    OK = 0
    UNKNOWN_ERROR = 1
    INVALID_PARAM = 2
    UNIMPLEMENT_FEATURE = 3
    INSUFFICIENT_PRIV = 4
    NOT_INSTALLED = 5
    NOT_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191


class ExecStatus(IntEnum):
    """``enum pcmk_exec_status`` (include/crm/common/results.h): the executor's status in ``op-status``."""

    UNKNOWN = -2
    PENDING = -1
    DONE = 0
    CANCELLED = 1
    TIMEOUT = 2
    NOT_SUPPORTED = 3
    ERROR = 4
    ERROR_HARD = 5
    ERROR_FATAL = 6
    NOT_INSTALLED = 7
    NOT_CONNECTED = 8
    INVALID = 9
    NO_FENCE_DEVICE = 10
    NO_SECRETS = 11
    MAX = 11  # PCMK_EXEC_MAX: an alias of the last value


class OnFail(IntEnum):
    """``enum action_fail_response`` (include/crm/pengine/common.h). The values are Pacemaker's; their
    severity order is not the value order (see :func:`cmp_on_fail`)."""

    IGNORE = 0
    RECOVER = 1
    MIGRATE = 2
    BLOCK = 3
    STOP = 4
    STANDBY = 5
    FENCE = 6
    RESTART_CONTAINER = 7
    RESET_REMOTE = 8
    DEMOTE = 9


# cmp_on_fail() (lib/pengine/unpack.c) places the three late additions between the older values:
# ignore < demote < recover < reset-remote < restart-container < migrate < block < stop < standby < fence.
_SEVERITY = {
    policy: rank
    for rank, policy in enumerate((
        OnFail.IGNORE, OnFail.DEMOTE, OnFail.RECOVER, OnFail.RESET_REMOTE, OnFail.RESTART_CONTAINER,
        OnFail.MIGRATE, OnFail.BLOCK, OnFail.STOP, OnFail.STANDBY, OnFail.FENCE,
    ))
}


def cmp_on_fail(first: int, second: int) -> int:
    """``cmp_on_fail`` (lib/pengine/unpack.c): >0 when ``first`` is more severe than ``second``, <0 when less,
    0 when equal (only the sign is meaningful)."""
    return _SEVERITY[first] - _SEVERITY[second]
