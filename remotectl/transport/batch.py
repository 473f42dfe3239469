"""Several commands in one round trip: one fixed ``sh`` script runs them side by side on the host and prints each
one's exit status, stdout and stderr length-prefixed, so a remote shell starts once and the replies cannot be
confused with each other.

Framing: a line ``remotectl-batch/1``, then per command a header line ``RC OUT_BYTES ERR_BYTES`` followed by exactly
that many bytes of stdout and stderr (their sizes are measured by ``wc -c`` on the files the command wrote, so no
output, however hostile, can move a boundary), then a line ``end``. Anything a login shell prints before the first
line is skipped. The outputs sit in a ``mktemp -d`` directory (mode 0700) that a trap removes.

The runners decode output as UTF-8 with replacement characters; when a U+FFFD appears, a decoded length may
differ from the byte count, so the batch is refused (None) and the caller runs the commands one by one, exactly
as before. None also covers a host without ``mktemp`` or any reply that does not parse.
"""

from __future__ import annotations

import shlex
from typing import List, Optional, Sequence

from remotectl.transport.base import CommandResult, Runner

MAGIC = "remotectl-batch/1"

_PROLOGUE = (
    'd=$(mktemp -d 2>/dev/null) || exit 125\n'
    "trap 'rm -rf \"$d\"' EXIT\n"
    'trap "exit 129" HUP INT TERM\n'
    'r() { n=$1; shift; "$@" >"$d/$n.o" 2>"$d/$n.e" </dev/null; echo $? >"$d/$n.c"; }\n'
)
_FRAME = 'printf "%s %s %s\\n" "$(cat "$d/{n}.c")" $(wc -c <"$d/{n}.o") $(wc -c <"$d/{n}.e"); ' \
         'cat "$d/{n}.o" "$d/{n}.e"\n'


def batch_argv(commands: Sequence[Sequence[str]], lanes: Optional[Sequence[Sequence[int]]] = None) -> List[str]:
    """``sh -c SCRIPT``: the commands (argvs, quoted with shlex.join), then the frames in command order. ``lanes``
    (lists of command indexes) run side by side, the commands of one lane one after the other; default: every
    command in a lane of its own."""
    if lanes is None:
        lanes = [[index] for index in range(len(commands))]
    if sorted(i for lane in lanes for i in lane) != list(range(len(commands))):
        raise ValueError("lanes must name every command once")
    lines = [_PROLOGUE]
    for lane in lanes:
        steps = "; ".join(f"r {index} {shlex.join(list(commands[index]))}" for index in lane)
        lines.append(f"( {steps} ) &\n")
    lines.append("wait\n")
    lines.append(f"printf '%s\\n' {MAGIC}\n")
    for index in range(len(commands)):
        lines.append(_FRAME.format(n=index))
    lines.append("printf 'end\\n'\n")
    return ["sh", "-c", "".join(lines)]


def parse_batch(commands: Sequence[Sequence[str]], stdout: str) -> Optional[List[CommandResult]]:
    """One CommandResult per command from the script's stdout, or None when it cannot be trusted."""
    if "\ufffd" in stdout:
        return None
    data = stdout.encode("utf-8")
    marker = (MAGIC + "\n").encode()
    if data.startswith(marker):
        pos = len(marker)
    else:
        found = data.find(b"\n" + marker)
        if found < 0:
            return None
        pos = found + 1 + len(marker)
    results = []
    for argv in commands:
        end = data.find(b"\n", pos)
        if end < 0:
            return None
        fields = data[pos:end].split()
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            return None
        rc, out_len, err_len = (int(f) for f in fields)
        pos = end + 1
        out, err = data[pos:pos + out_len], data[pos + out_len:pos + out_len + err_len]
        if len(out) != out_len or len(err) != err_len:
            return None
        pos += out_len + err_len
        results.append(CommandResult(tuple(argv), rc, out.decode("utf-8"), err.decode("utf-8")))
    if data[pos:].strip() != b"end":
        return None
    return results


def run_batch(runner: Runner, commands: Sequence[Sequence[str]], *, lanes: Optional[Sequence[Sequence[int]]] = None,
              env: Optional[dict] = None, timeout: float = 120) -> Optional[List[CommandResult]]:
    """Run ``commands`` in one round trip on ``runner``'s host (``lanes``: see batch_argv); None when the batch
    could not be used (run them one by one then). Transport failures (SSH, timeout) raise as for any command."""
    result = runner.run(batch_argv(commands, lanes), timeout=timeout, env=env)
    if result.rc != 0:
        return None
    return parse_batch(commands, result.stdout)
