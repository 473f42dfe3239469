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


def require_probe_servers(**needs: bool) -> None:
    """require() every real component the probe_servers servers need here (needs: need_sshd, need_gnutls_serv)."""
    from tests.integration.probe_servers import missing_requirements

    missing = missing_requirements(**needs)
    require(not missing, "; ".join(missing))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    require(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None, "OpenSSH sshd/ssh-keygen not installed")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    stop_sshd(server)
