#!/usr/bin/env python3
"""The command line of remotectl's test lab: ``python3 tests/lab/lab.py up|down|status|env|fault --hosts``.

The lab is the hosts lab (hosts.py: systemd-nspawn hosts with a real systemd, Pacemaker 2.1.5 or 3.0.x); the
commands are in hostscli.py. ``--hosts`` is still accepted (it named the hosts lab while the older network-namespace
lab existed). Standard library only, Python 3.9+, root.
"""

from __future__ import annotations

import sys

try:
    from .hostscli import main
except ImportError:  # run as a script: tests/lab is sys.path[0]
    from hostscli import main  # type: ignore[no-redef]

if __name__ == "__main__":
    sys.exit(main())
