"""Placement time per decision over the 15-region fleet, with placement_bench's inputs.

Same set-up as `bench/placement_bench.py` (randomised fleets and requests, warm-up,
best-of-repeats) through its own functions; the baseline in the same run is its naive
nearest-healthy-region policy.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.placement_bench import (
    FLEET,
    nearest_healthy,
    random_fleet,
    random_request,
    time_per_call,
)
from bench.stats import summary
from meridian.placement import place
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.settings import PlacementWeights


def measure_placement(decisions: int, repeats: int = 3, seed: int = 7) -> dict[str, Any]:
    rnd = random.Random(seed)
    catalog = Catalog.default()
    weights = PlacementWeights()
    data_keys = sorted(r.key for r in catalog)
    names = [r.name for r in load_regions(FLEET).regions]
    fleets = [random_fleet(rnd, catalog, data_keys) for _ in range(50)]
    requests = [random_request(rnd, data_keys, names) for _ in range(200)]

    def full(i: int) -> object:
        return place(requests[i % 200], fleets[i % 50], weights, catalog)

    def baseline(i: int) -> object:
        return nearest_healthy(requests[i % 200], fleets[i % 50], catalog)

    for i in range(1_000):
        full(i)
        baseline(i)
    baseline_us = time_per_call(baseline, decisions, repeats)
    place_us = time_per_call(full, decisions, repeats)
    # CPU time too: on a shared, oversubscribed machine the wall clock also counts the
    # time other processes held the core; process time is what a decision costs.
    cpu_started = time.process_time()
    for i in range(decisions):
        full(i)
    cpu_us = (time.process_time() - cpu_started) / decisions * 1e6
    singles = []
    for i in range(1_000):
        start = time.perf_counter()
        full(i)
        singles.append(time.perf_counter() - start)
    return {
        "regions": len(names),
        "decisions": decisions,
        "us_per_decision": round(place_us, 1),
        "cpu_us_per_decision": round(cpu_us, 1),
        "single_call_us": summary(singles, 1e6),
        "baseline_nearest_healthy_us": round(baseline_us, 1),
        "ratio_to_baseline": round(place_us / baseline_us, 1),
    }
