import os
import shutil

import pytest

from tests.integration.sshd import SSHD, start_sshd, stop_sshd


def require(condition: bool, reason: str) -> None:
    """Skip when a real component is missing here; in CI (CI=true) a missing component is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    require(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None, "OpenSSH sshd/ssh-keygen not installed")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    stop_sshd(server)
