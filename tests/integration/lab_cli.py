"""The remotectl CLI as the lab tests run it: in a subprocess, locally (this machine is node1), over SSH (ssh:
--cluster node1 with the lab's ssh_config) or on a CIB file (cib)."""

import os
import subprocess
import sys


def cli_env():
    """No colour, Pacemaker's tools on PATH, and no REMOTECTL_CLUSTER or CIB_file from the caller's environment."""
    env = dict(os.environ, NO_COLOR="1", PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    env.pop("REMOTECTL_CLUSTER", None)
    env.pop("CIB_file", None)
    return env


def run_remotectl(*args, lab=None, ssh=False, cib=None, timeout=120):
    options = []
    if ssh:
        options = ["--cluster", "node1", *lab.remotectl_ssh_options]
    if cib:
        options = ["--cib", str(cib)]
    return subprocess.run([sys.executable, "-m", "remotectl", *options, *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), stdin=subprocess.DEVNULL)
