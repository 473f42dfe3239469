"""The session fixture ``lab``: the real Pacemaker lab, registered from tests/conftest.py.

It starts the lab once per pytest session and stops it at the end, even when tests fail. A lab that is already
running (``python tests/lab/lab.py up`` by hand) is reused and left running. Without root or the daemons, lab tests
are skipped, except under CI=true, where a missing piece is a failure rather than a silent skip.
"""

import os

import pytest

from .lab import Lab, LabError, missing_prerequisites


@pytest.fixture(scope="session")
def lab():
    problems = missing_prerequisites()
    if problems:
        reason = "Pacemaker lab unavailable: " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true, so this fails instead of skipping)", pytrace=False)
        pytest.skip(reason)
    the_lab = Lab()
    reused = the_lab.is_up()
    try:
        the_lab.up()
        if reused:
            the_lab.wait_online()
    except LabError as exc:
        pytest.fail(f"could not bring the Pacemaker lab up: {exc}", pytrace=False)
    yield the_lab
    if not reused:
        the_lab.down()
