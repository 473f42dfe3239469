"""Several commands in one round trip: one fixed ``sh`` script runs them side by side on the host and prints each
one's exit status, stdout and stderr length-prefixed, so a remote shell starts once and the replies cannot be
confused with each other.

Framing: a line ``remotectl-batch/1``; one line per command with its exit status; ``wc -c`` over every command's
stdout and stderr files in order (one line each, then its total line); then exactly those bytes, stdout and stderr
of each command in turn; then a line ``end``. The header comes before any output and the sizes are measured on
the files the commands wrote, so no output, however hostile, can move a boundary. Anything a login shell prints before the first
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


def batch_argv(commands: Sequence[Sequence[str]]) -> List[str]:
    """``sh -c SCRIPT``: every command (an argv, quoted with shlex.join) started at once; then the marker, each
    exit status (one ``cat``), each output's size (one ``wc -c`` over all the files, with its total line) and
    the outputs themselves (one ``cat``): a few processes whatever the number of commands."""
    if not commands:
        raise ValueError("no commands")
    lines = [_PROLOGUE]
    for index, argv in enumerate(commands):
        lines.append(f"r {index} {shlex.join(list(argv))} &\n")
    lines.append("wait\n")
    lines.append(f"printf '%s\\n' {MAGIC}\n")
    codes = " ".join(f'"$d/{index}.c"' for index in range(len(commands)))
    outputs = " ".join(f'"$d/{index}.o" "$d/{index}.e"' for index in range(len(commands)))
    lines.append(f"cat {codes}\nwc -c {outputs}\ncat {outputs}\n")
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
    header: List[bytes] = []
    for _ in range(len(commands) + 2 * len(commands) + 1):  # exit statuses, sizes, wc's total line
        end = data.find(b"\n", pos)
        if end < 0:
            return None
        header.append(data[pos:end])
        pos = end + 1
    codes = [line.strip() for line in header[:len(commands)]]
    sizes = [(line.split() or [b""])[0] for line in header[len(commands):-1]]
    if not all(f.isdigit() for f in codes + sizes):
        return None
    results = []
    for index, argv in enumerate(commands):
        out_len, err_len = int(sizes[2 * index]), int(sizes[2 * index + 1])
        out, err = data[pos:pos + out_len], data[pos + out_len:pos + out_len + err_len]
        if len(out) != out_len or len(err) != err_len:
            return None
        pos += out_len + err_len
        results.append(CommandResult(tuple(argv), int(codes[index]), out.decode("utf-8"), err.decode("utf-8")))
    if data[pos:].strip() != b"end":
        return None
    return results


def run_batch(runner: Runner, commands: Sequence[Sequence[str]], *, env: Optional[dict] = None,
              timeout: float = 120) -> Optional[List[CommandResult]]:
    """Run ``commands`` in one round trip on ``runner``'s host; None when the batch could not be used (run them
    one by one then). Transport failures (SSH, timeout) raise as for any command."""
    result = runner.run(batch_argv(commands), timeout=timeout, env=env)
    if result.rc != 0:
        return None
    return parse_batch(commands, result.stdout)
