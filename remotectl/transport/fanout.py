"""Bounded concurrent fan-out: one outcome per item, in input order, never stopping half-way, except on Ctrl-C.

The workers are daemon threads: after a Ctrl-C the caller reports what it knows and exits at once, instead of
waiting for connections stuck in a handshake or a remote command (a thread pool's exit would join them).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Generic, List, Optional, Sequence, TypeVar

from remotectl.reports import RemotectlError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 16


@dataclass
class Outcome(Generic[T, R]):
    item: T
    value: Optional[R] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


class FanOutInterrupted(KeyboardInterrupt):
    """Ctrl-C while items were still running. `outcomes` is in input order, None where an item had not finished
    (it may still be running in its daemon thread, or never have started)."""

    def __init__(self, outcomes: List[Optional[Outcome]]) -> None:
        super().__init__()
        self.outcomes = outcomes


def _run_one(fn: Callable, item) -> Outcome:
    try:
        return Outcome(item, value=fn(item))
    except RemotectlError as exc:
        return Outcome(item, error=exc.message)
    except Exception as exc:  # a bug on one host must not hide the others' results
        return Outcome(item, error=f"internal error: {type(exc).__name__}: {exc}")


def fan_out(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = DEFAULT_WORKERS,
    on_done: Optional[Callable[[Outcome], None]] = None,
) -> List[Outcome]:
    """Call fn on every item concurrently. Every failure, expected or not, becomes that item's outcome,
    so one bad host never aborts the others half-way. Ctrl-C raises FanOutInterrupted (a KeyboardInterrupt) at
    once, with the outcomes so far; items not started by then are never started."""
    if not items:
        return []
    outcomes: List[Optional[Outcome]] = [None] * len(items)
    todo: "queue.Queue[int]" = queue.Queue()
    for index in range(len(items)):
        todo.put(index)
    done: "queue.Queue[int]" = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            outcomes[index] = _run_one(fn, items[index])
            done.put(index)

    for _ in range(max(1, min(workers, len(items)))):
        threading.Thread(target=work, daemon=True, name="remotectl-fan-out").start()
    try:
        for _ in range(len(items)):
            index = done.get()
            if on_done is not None:
                on_done(outcomes[index])
    except KeyboardInterrupt:  # (a second Ctrl-C ends the process at once: remotectl.cli.main's handler)
        stop.set()
        raise FanOutInterrupted(list(outcomes)) from None
    return [o for o in outcomes if o is not None]
