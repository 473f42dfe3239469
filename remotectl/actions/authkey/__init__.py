"""Authkey lifecycle: generate, fingerprint, push, verify and rotate the Pacemaker remote key.

Key bytes travel only on the stdin of the remote write script (transport.files.probe_and_write and
write_file_atomic); everything that is returned, reported or raised carries `sha256:<hex>` fingerprints, never the
key. One module per command:
:mod:`.keys` (the local key), :mod:`.push`, :mod:`.verify`, :mod:`.rotate` (its restarts: :mod:`.restart`);
:mod:`.facts` is what a node says.
"""

from remotectl.actions.authkey.facts import NodeFacts, inspect_node, ssh_workers
from remotectl.actions.authkey.keys import (KeyFileResult, fingerprint_bytes, fingerprint_file, generate_key,
                                            generate_to_file, read_key)
from remotectl.actions.authkey.push import NodeKeyResult, PushOptions, PushResult, push_key, push_one
from remotectl.actions.authkey.restart import Restarter, RestartOutcome, run_restarts
from remotectl.actions.authkey.rotate import RotateResult, RotationPlan, execute_rotation, prepare_rotation, rotate_key
from remotectl.actions.authkey.verify import VerifyNodeResult, VerifyResult, verify_keys

__all__ = [
    "KeyFileResult", "NodeFacts", "NodeKeyResult", "PushOptions", "PushResult", "Restarter", "RestartOutcome",
    "RotateResult", "RotationPlan", "VerifyNodeResult", "VerifyResult", "execute_rotation",
    "fingerprint_bytes", "fingerprint_file", "generate_key", "generate_to_file", "inspect_node",
    "prepare_rotation", "push_key", "push_one", "read_key", "rotate_key",
    "run_restarts", "ssh_workers", "verify_keys",
]
