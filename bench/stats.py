"""Percentiles and summaries shared by every part of the bench."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float], unit_scale: float = 1.0) -> dict[str, float | int | None]:
    """p50, p99, max and count, scaled (e.g. 1000 for seconds → ms), rounded."""

    def scaled(v: float | None) -> float | None:
        return None if v is None else round(v * unit_scale, 1)

    return {
        "p50": scaled(percentile(values, 50)),
        "p99": scaled(percentile(values, 99)),
        "max": scaled(max(values) if values else None),
        "n": len(values),
    }
