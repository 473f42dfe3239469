"""Bounded concurrent fan-out: one outcome per item, in input order, never stopping half-way."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
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


def fan_out(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = DEFAULT_WORKERS,
    on_done: Optional[Callable[[Outcome], None]] = None,
) -> List[Outcome]:
    """Call fn on every item concurrently. Every failure, expected or not, becomes that item's outcome,
    so one bad host never aborts the others half-way."""
    outcomes: List[Optional[Outcome]] = [None] * len(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
        for future in as_completed(futures):
            index = futures[future]
            item = items[index]
            try:
                outcome = Outcome(item, value=future.result())
            except RemotectlError as exc:
                outcome = Outcome(item, error=exc.message)
            except Exception as exc:  # a bug on one host must not hide the others' results
                outcome = Outcome(item, error=f"internal error: {type(exc).__name__}: {exc}")
            outcomes[index] = outcome
            if on_done is not None:
                on_done(outcome)
    return [o for o in outcomes if o is not None]
