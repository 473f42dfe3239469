"""The session fixture ``hosts_lab``: the real Pacemaker lab, registered from tests/conftest.py.

It starts the lab once per pytest session and stops it at the end, even when tests fail. A lab that is already
running is reused: one started by hand (``python3 tests/lab/lab.py up --hosts``) is left running, and one started by
another pytest session is stopped by whichever session finishes last. Without root or the daemons, lab tests are
skipped, except under CI=true, where a missing piece is a failure rather than a silent skip.
"""

import os

import pytest

from .labutil import LabError


@pytest.fixture(scope="session")
def hosts_lab():
    """The hosts lab (tests/lab/hosts.py) on the Pacemaker of LAB_PACEMAKER (2.1 by default, 3.0, mixed); built
    and booted on first use, stopped at the end of the session unless it was started by hand."""
    from .hosts import HostsLab, missing_prerequisites as hosts_missing

    problems = hosts_missing()
    if problems:
        reason = "hosts lab unavailable: " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true, so this fails instead of skipping)", pytrace=False)
        pytest.skip(reason)
    the_lab = HostsLab(variant=os.environ.get("LAB_PACEMAKER") or "2.1")
    try:
        the_lab.acquire()
        the_lab.wait_online()
    except LabError as exc:
        the_lab.release()
        pytest.fail(f"could not bring the hosts lab up: {exc}", pytrace=False)
    yield the_lab
    the_lab.release()
