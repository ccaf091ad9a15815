"""Timing samples and their summaries. Medians and percentiles, never single runs."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Samples:
    """Durations in milliseconds."""

    values: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.values)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.values)
        if len(ordered) == 1:
            return ordered[0]
        # Nearest rank: an observed value, never an interpolation beyond the data.
        rank = max(1, round(p / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)


def time_calls(fn: Callable[[], object], *, iterations: int, warmup: int = 3) -> Samples:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        values.append((time.perf_counter() - start) * 1000)
    return Samples(values)


def time_alternating(fns: list[Callable[[], object]], *, iterations: int, warmup: int = 3) -> list[Samples]:
    """Time several calls in turn, so that background noise falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    values: list[list[float]] = [[] for _ in fns]
    for _ in range(iterations):
        for fn, into in zip(fns, values, strict=True):
            start = time.perf_counter()
            fn()
            into.append((time.perf_counter() - start) * 1000)
    return [Samples(v) for v in values]
