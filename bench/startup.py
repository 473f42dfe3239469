#!/usr/bin/env python3
"""Start-up time of remotectl against `python -c "import click"`, measured in one run on this machine.

    .venv/bin/python bench/startup.py [--runs 31] [--check] [--markdown]

Every case runs as a fresh process, round-robin (so drift in machine load hits all cases alike), after warm-up
runs; the figures are the median wall-clock time and the median CPU time (user + system, less sensitive to
other load on the machine). The target is judged on wall-clock time. Ratios are against `python -c "import click"` with the same
interpreter, which is the floor for any click program. Cases:

* `remotectl --help`, `remotectl COMMAND --help` (the console script, as users run it);
* completion requests as the shell makes them (_REMOTECTL_COMPLETE=bash_complete): a command name, and node
  names from a warm completion cache (a private temporary XDG_CACHE_HOME);
* `pcs --version` and `crm --version` for comparison, when installed.

With --check the exit status is 1 when a remotectl case is slower than --target times the baseline (1.3).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _remotectl_script(python: str) -> str:
    candidate = Path(python).parent / "remotectl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("remotectl")
    if found:
        return found
    raise SystemExit("bench/startup.py: no remotectl console script next to the interpreter or on PATH")


def _node_command():
    """A command path whose argument completes node names (complete_node_names), if one is registered."""
    import click

    from remotectl.cli import cli
    from remotectl.cli.completion import complete_node_names

    def walk(command, ctx, path):
        for param in command.params:
            if getattr(param, "_custom_shell_complete", None) is complete_node_names:
                return path
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    found = walk(sub, click.Context(sub, info_name=name, parent=ctx), path + [name])
                    if found:
                        return found
        return None

    root = click.Context(cli, info_name="remotectl")
    standby = cli.get_command(root, "standby")
    if standby is not None:  # the example: `remotectl standby <TAB>`
        found = walk(standby, click.Context(standby, info_name="standby", parent=root), ["standby"])
        if found:
            return found
    return walk(cli, root, [])


def _command_for_help():
    import click

    from remotectl.cli import cli

    names = cli.list_commands(click.Context(cli))
    for name in ("standby", "constraint", "nodes"):
        if name in names:
            return name
    return names[0]


def cases(python: str, cache_home: str, bytecode_cache: bool = True):
    script = _remotectl_script(python)
    base_env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=cache_home, REMOTECTL_COMPLETION_TIMEOUT="0")
    for name in ("_REMOTECTL_COMPLETE", "COMP_WORDS", "COMP_CWORD", "REMOTECTL_CIB", "REMOTECTL_CLUSTER"):
        base_env.pop(name, None)
    if bytecode_cache:
        # As installed by pip (which compiles .pyc files): cached bytecode for every module, ours and click's,
        # kept in a private directory so the source tree stays clean.
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = os.path.join(cache_home, "pycache")
    yield "baseline", 'python -c "import click"', [python, "-c", "import click"], base_env
    yield "info", "python -c pass", [python, "-c", "pass"], base_env
    yield "remotectl", "remotectl --help", [script, "--help"], base_env
    command = _command_for_help()
    yield "remotectl", f"remotectl {command} --help", [script, command, "--help"], base_env
    complete = dict(base_env, _REMOTECTL_COMPLETE="bash_complete", COMP_WORDS="remotectl s", COMP_CWORD="1")
    yield "remotectl", "completion: remotectl s<TAB>", [script], complete
    path = _node_command()
    if path:
        from remotectl.actions import completion_cache
        from remotectl.transport import cache

        os.environ["XDG_CACHE_HOME"] = cache_home
        target = "bench-cluster.example"
        cache.write_json(
            completion_cache.cache_file_name(target),
            {
                "format": completion_cache.FORMAT,
                "target": target,
                "nodes": [f"node{i}" for i in range(1, 33)],
                "resources": [f"rsc{i}" for i in range(1, 65)],
                "fetched_at": time.time() + 24 * 3600,  # never stale during the run
                "attempted_at": time.time() + 24 * 3600,
            },
        )
        words = " ".join(["remotectl", "--cluster", target] + path + ["''"])
        warm = dict(base_env, _REMOTECTL_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD="-1")
        yield "remotectl", f"completion: remotectl {' '.join(path)} <TAB> (warm cache)", [script], warm
    for tool in ("pcs", "crm"):
        found = shutil.which(tool)
        if found:
            yield "other", f"{tool} --version", [found, "--version"], base_env


def run_once(argv, env):
    """(wall seconds, CPU seconds user+system) of one run of ``argv``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"bench/startup.py: {argv} failed with {proc.returncode}: {stderr.decode()[:500]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31, help="measured runs per case (default 31)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs per case first (default 3)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the venv remotectl is in")
    parser.add_argument("--target", type=float, default=1.3, help="allowed ratio to the baseline (default 1.3)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a remotectl case misses --target")
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are (default: a private bytecode cache, as "
        "a pip install has)",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="remotectl-bench-") as cache_home:
        todo = list(cases(args.python, cache_home, not args.as_is))
        times = {label: [] for _, label, _, _ in todo}
        cpu = {label: [] for _, label, _, _ in todo}
        for _ in range(args.warmup):
            for _, label, argv, env in todo:
                run_once(argv, env)
        for _ in range(args.runs):
            for _, label, argv, env in todo:
                wall, used = run_once(argv, env)
                times[label].append(wall)
                cpu[label].append(used)

    medians = {label: statistics.median(values) for label, values in times.items()}
    cpu_medians = {label: statistics.median(values) for label, values in cpu.items()}
    baseline = medians['python -c "import click"']
    cpu_baseline = cpu_medians['python -c "import click"']
    missed = []
    rows = []
    for kind, label, _, _ in todo:
        ratio = medians[label] / baseline
        verdict = ""
        if kind == "remotectl":
            verdict = "ok" if ratio <= args.target else f"over {args.target:g}x"
            if ratio > args.target:
                missed.append(label)
        rows.append(
            (
                label,
                f"{medians[label] * 1000:.1f}",
                f"{ratio:.2f}x",
                f"{cpu_medians[label] * 1000:.1f}",
                f"{cpu_medians[label] / cpu_baseline:.2f}x",
                verdict,
            )
        )

    python_version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"], stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    cache_note = "environment as is" if args.as_is else "bytecode cached"
    title = f"Start-up, median of {args.runs} runs (Python {python_version}, {os.cpu_count()} CPUs, {cache_note})"
    if args.markdown:
        print(f"{title}:\n")
        print(f"| command | wall ms | wall vs `import click` | CPU ms | CPU vs `import click` | target <= {args.target:g}x |")
        print("|---|---:|---:|---:|---:|---|")
        for row in rows:
            print(f"| `{row[0]}` | " + " | ".join(row[1:]) + " |")
    else:
        print(title)
        width = max(len(row[0]) for row in rows)
        print(f"  {'':<{width}}  {'wall':>8}  {'ratio':>6}  {'CPU':>8}  {'ratio':>6}")
        for label, ms, ratio, cpu_ms, cpu_ratio, verdict in rows:
            print(f"  {label:<{width}}  {ms:>5} ms  {ratio:>6}  {cpu_ms:>5} ms  {cpu_ratio:>6}  {verdict}")
    if missed:
        print(f"missed the {args.target:g}x target: {', '.join(missed)}", file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
