"""Run commands on this machine: argv lists, no shell, C locale."""

from __future__ import annotations

import os
import subprocess
from typing import Optional, Sequence

from remotectl.transport.base import CommandResult, Runner, TransportError


class LocalRunner(Runner):
    name = "local"

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: Optional[bytes] = None,
        timeout: Optional[float] = None,
        env: Optional[dict] = None,
    ) -> CommandResult:
        full_env = dict(os.environ, LC_ALL="C")
        if env:
            full_env.update(env)
        try:
            proc = subprocess.run(
                list(argv),
                input=stdin if stdin is not None else b"",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise TransportError(f"{argv[0]}: command not found on this machine") from None
        except PermissionError:
            raise TransportError(f"{argv[0]}: permission denied") from None
        except subprocess.TimeoutExpired:
            raise TransportError(f"{argv[0]}: no answer within {timeout:g} s") from None
        return CommandResult(
            tuple(argv),
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )
