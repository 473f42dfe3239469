"""Every top-level command, registered explicitly (no discovery). Command modules import only click at top
level; the work they call is imported when the command runs.

LAZY maps a command name to "module:attribute": the module is imported only when that command is run, completed
or its help shown, so start-up and completion stay fast (remotectl/cli/lazy.py). After adding or renaming a
command, or changing its first help sentence, run `.venv/bin/python scripts/gen_docs.py` (it regenerates the
--help index, man/ and completions/; tests/unit/test_generated.py fails until then).
"""

LAZY = {
    "authkey": "remotectl.cli.authkey:authkey_group",
    "check": "remotectl.cli.check:check_command",
    "completion": "remotectl.cli.completion:completion_command",
    "constraint": "remotectl.cli.constraint:constraint_group",
    "doctor": "remotectl.cli.doctor:doctor_command",
    "fence": "remotectl.cli.fence:fence_command",
    "maintenance": "remotectl.cli.node_state:maintenance_command",
    "node": "remotectl.cli.node:node_group",
    "nodes": "remotectl.cli.nodes:nodes_command",
    "standby": "remotectl.cli.node_state:standby_command",
    "tls": "remotectl.cli.tls:tls_group",
    "unstandby": "remotectl.cli.node_state:unstandby_command",
}
