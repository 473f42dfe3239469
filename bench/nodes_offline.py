#!/usr/bin/env python3
"""Benchmark: listing the nodes of a big CIB offline, remotectl's model vs Pacemaker's crm_mon.

Both sides are timed as whole processes, in the same run, on the same file, interleaved:

* remotectl: ``python -m remotectl --cib CIB nodes --json`` (the command an operator runs: interpreter start,
  CLI, parse, unpack, JSON out)
* crm_mon: ``CIB_file=CIB crm_mon --output-as=xml -1``

By default the CIB is generated with ``bench/gen_cib.py`` (1,000 remote nodes, each with its connection's
history and a ``node_state``). The target is model <= 1.5 x crm_mon (median wall time); ``--check`` makes a
miss exit 1. Also checks that both list the same nodes with the same states.

    .venv/bin/python bench/nodes_offline.py [--remotes 1000] [--runs 7] [--cib FILE] [--check]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5


def _time(argv: List[str], env: Optional[dict] = None) -> "tuple[float, bytes]":
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    return elapsed, proc.stdout


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--remotes", type=int, default=1000, help="remote nodes in the generated CIB (default 1000)")
    ap.add_argument("--cib", help="benchmark this CIB file instead of a generated one")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each side (default 7, plus one warm-up)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 unless model <= {TARGET} x crm_mon")
    args = ap.parse_args(argv)

    crm_mon = shutil.which("crm_mon") or "/usr/sbin/crm_mon"
    if not os.access(crm_mon, os.X_OK):
        print("crm_mon is not installed: nothing to compare with", file=sys.stderr)
        return 2

    tmp = tempfile.TemporaryDirectory(prefix="remotectl-bench-")
    if args.cib:
        cib = Path(tmp.name) / "cib.xml"
        shutil.copyfile(args.cib, cib)  # crm_mon gets a copy: CIB_file tools may write
    else:
        import gen_cib as gen  # beside this script, so on sys.path when it runs

        cib = Path(tmp.name) / f"cib-{args.remotes}-remotes.xml"
        cib.write_text(gen.build(gen.big(args.remotes)))
    size = cib.stat().st_size

    model_argv = [sys.executable, "-m", "remotectl", "--cib", str(cib), "nodes", "--json"]
    mon_env = {k: v for k, v in os.environ.items() if not k.startswith("CIB_")}
    mon_env["CIB_file"] = str(cib)
    mon_argv = [crm_mon, "--output-as=xml", "-1"]

    # warm-up (page cache, pyc files), and the agreement check
    _, model_out = _time(model_argv)
    _, mon_out = _time(mon_argv, mon_env)
    sys.path.insert(0, str(ROOT))
    from remotectl.pacemaker.nodes import nodes_from_cib, nodes_from_crm_mon

    listed_model = {n.name: n.state_key() for n in nodes_from_cib(cib.read_bytes())}
    listed_mon = {n.name: n.state_key() for n in nodes_from_crm_mon(mon_out, cib.read_bytes())}
    agree = listed_model == listed_mon

    model_times: List[float] = []
    mon_times: List[float] = []
    for _ in range(args.runs):
        model_times.append(_time(model_argv)[0])
        mon_times.append(_time(mon_argv, mon_env)[0])

    m_model, m_mon = statistics.median(model_times), statistics.median(mon_times)
    ratio = m_model / m_mon
    print(f"CIB: {cib.name if not args.cib else args.cib} ({size / 1024 / 1024:.2f} MiB, "
          f"{len(listed_model)} nodes)")
    print(f"remotectl --cib CIB nodes --json         : median {m_model * 1000:7.1f} ms "
          f"(min {min(model_times) * 1000:.1f}, max {max(model_times) * 1000:.1f}, {args.runs} runs)")
    print(f"crm_mon CIB_file=... crm_mon --output-as=xml -1: median {m_mon * 1000:7.1f} ms "
          f"(min {min(mon_times) * 1000:.1f}, max {max(mon_times) * 1000:.1f}, {args.runs} runs)")
    print(f"ratio remotectl/crm_mon: {ratio:.2f}x (target <= {TARGET}x): {'OK' if ratio <= TARGET else 'MISSED'}")
    print(f"node states agree with crm_mon: {'yes' if agree else 'NO'}")
    tmp.cleanup()
    if args.check and (ratio > TARGET or not agree):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
