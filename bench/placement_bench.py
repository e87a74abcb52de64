"""How long one placement decision takes over the 15-region fleet.

    .venv/bin/python bench/placement_bench.py [--decisions 20000] [--seed 7]

Snapshots are randomised per decision set (load, health, worker polling, draining,
measured paths) and requests draw their data source from the whole catalog, so the
figure covers filters, scoring, explanations and the fingerprint. The baseline, timed
in the same run on the same inputs, is the naive policy placement replaces: the nearest
healthy region by great-circle distance. The ratio is the price of the full decision.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meridian.placement import PlacementRequest, RegionSnapshot, place  # noqa: E402
from meridian.placement.types import ServerlessRoom  # noqa: E402
from meridian.regions.catalog import Catalog, great_circle_km  # noqa: E402
from meridian.regions.config import RegionConfig, load_regions  # noqa: E402
from meridian.regions.load import RegionLoad, ServerlessUsage  # noqa: E402
from meridian.regions.network import NetworkPath  # noqa: E402
from meridian.regions.providers import Provider  # noqa: E402
from meridian.regions.view import pool_facts  # noqa: E402
from meridian.settings import PlacementWeights  # noqa: E402
from meridian.tasks.contracts import PlaceTaskInput  # noqa: E402
from meridian.tasks.spec import (  # noqa: E402
    DataSource,
    JobSpec,
    PlacementConstraints,
    Resources,
    TaskSpec,
)

FLEET = Path(__file__).resolve().parent.parent / "infra" / "regions" / "fleet-15.yaml"
GI = 1 << 30


def random_fleet(
    rnd: random.Random, catalog: Catalog, data_keys: list[str]
) -> list[RegionSnapshot]:
    out = []
    for region in load_regions(FLEET).regions:
        nodes = rnd.randint(2, 20)
        cpu, mem = nodes * 16_000, nodes * 64 * GI
        used = rnd.random()
        state = rnd.choices(["up", "degraded", "down"], weights=[90, 7, 3])[0]
        network = {
            key: NetworkPath(
                target=key, rtt_ms=rnd.uniform(1, 250), loss=rnd.uniform(0, 0.02), samples=10
            )
            for key in rnd.sample(data_keys, 5)
        }
        out.append(
            RegionSnapshot(
                name=region.name,
                provider=region.provider,
                location=region.location,
                healthy=state != "down",
                state=state,
                worker_polling=rnd.random() > 0.03,
                nodes_ready=nodes,
                nodes_total=nodes,
                cpu_allocatable_millis=cpu,
                cpu_requested_millis=int(cpu * used),
                memory_allocatable_bytes=mem,
                memory_requested_bytes=int(mem * used * rnd.uniform(0.5, 1)),
                largest_free_cpu_millis=int(16_000 * rnd.random()),
                largest_free_memory_bytes=int(64 * GI * rnd.random()),
                pending_pods=rnd.choice([0, 0, 0, 2, 10]),
                draining=rnd.random() < 0.02,
                network=network,
            )
        )
    return out


def random_request(rnd: random.Random, data_keys: list[str], names: list[str]) -> PlacementRequest:
    provider, _, region = rnd.choice(data_keys).partition(":")
    constraints = PlacementConstraints()
    roll = rnd.random()
    if roll < 0.1:
        constraints = PlacementConstraints(region=rnd.choice(names))
    elif roll < 0.3:
        constraints = PlacementConstraints(preferences=[rnd.sample(names, 2), rnd.sample(names, 3)])
    elif roll < 0.4:
        constraints = PlacementConstraints(providers=[Provider.AWS, Provider.GCP])
    return PlacementRequest(
        task_id="bench",
        data_source=DataSource(provider=Provider(provider), region=region),
        resources=Resources(
            cpu=rnd.choice(["500m", "1", "2", "4"]), memory=rnd.choice(["1Gi", "4Gi"])
        ),
        constraints=constraints,
        excluded_regions=rnd.sample(names, rnd.choice([0, 0, 0, 1])),
    )


def as_probed(
    rnd: random.Random,
    fleet: list[RegionSnapshot],
    observed_at: datetime,
    configs: dict[str, RegionConfig],
) -> list[RegionSnapshot]:
    """`fleet` as RegionView hands it to place_task: with each region's declared
    serverless room (Ready, partly used) and pools' facts, probed at `observed_at`.
    `configs` are the regions file's, loaded once as RegionView holds them."""
    out = []
    for snap in fleet:
        config = configs[snap.name]
        serverless = None
        if config.serverless is not None:
            usage = ServerlessUsage(
                nodes=1, ready=True, pods=rnd.randint(0, 20), cpu_millis=rnd.randint(0, 40) * 1000
            )
            serverless = ServerlessRoom(config=config.serverless, usage=usage)
        pools = pool_facts(config, RegionLoad(nodes_total=snap.nodes_total))
        out.append(
            snap.model_copy(
                update={"observed_at": observed_at, "serverless": serverless, "pools": pools}
            )
        )
    return out


def task_input(request: PlacementRequest, task_id: str) -> PlaceTaskInput:
    """What TaskWorkflow hands place_task for the task `request` describes."""
    spec = TaskSpec(
        name="bench",
        business_unit="bench",
        data_source=request.data_source,
        job=JobSpec(image="busybox", resources=request.resources),
        placement=request.constraints,
    )
    excluded = {name: "bench: an earlier attempt failed" for name in request.excluded_regions}
    return PlaceTaskInput(task_id=task_id, spec=spec, attempt=1, seq=1, excluded_regions=excluded)


def nearest_healthy(
    request: PlacementRequest, snaps: list[RegionSnapshot], catalog: Catalog
) -> str | None:
    """The baseline: nearest healthy region, distance computed afresh each time."""
    origin = catalog.locate(request.data_source.provider, request.data_source.region)
    best: tuple[float, str] | None = None
    for snap in snaps:
        here = catalog.locate(snap.provider, snap.location)
        if not snap.healthy or origin is None or here is None:
            continue
        candidate = (great_circle_km(origin, here), snap.name)
        if best is None or candidate < best:
            best = candidate
    return best[1] if best else None


def time_per_call(fn: Callable[[int], object], n: int, repeats: int) -> float:
    """Best-of-`repeats` mean microseconds per call (the minimum resists scheduler noise)."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - start) / n * 1e6)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rnd = random.Random(args.seed)
    catalog = Catalog.default()
    weights = PlacementWeights()
    data_keys = sorted(r.key for r in catalog)
    names = [r.name for r in load_regions(FLEET).regions]
    # 50 snapshot sets x 200 requests: realistic reuse (a snapshot is cached for a
    # moment and many tasks are placed against it) and a warm distance cache.
    fleets = [random_fleet(rnd, catalog, data_keys) for _ in range(50)]
    requests = [random_request(rnd, data_keys, names) for _ in range(200)]

    def full(i: int) -> object:
        return place(requests[i % 200], fleets[i % 50], weights, catalog)

    def baseline(i: int) -> object:
        return nearest_healthy(requests[i % 200], fleets[i % 50], catalog)

    for i in range(2_000):  # warm caches and the interpreter's specialisations
        full(i)
        baseline(i)
    placed = sum(full(i).chosen is not None for i in range(1_000))  # type: ignore[attr-defined]
    baseline_us = time_per_call(baseline, args.decisions, args.repeats)
    place_us = time_per_call(full, args.decisions, args.repeats)
    samples = []
    for i in range(2_000):
        start = time.perf_counter()
        full(i)
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    print(f"regions per decision      : {len(names)}")
    print(f"decisions timed           : {args.decisions} x {args.repeats} (best run)")
    print(f"placed / unplaceable      : {placed / 10:.1f}% / {100 - placed / 10:.1f}%")
    print(f"place()                   : {place_us:.1f} us/decision")
    print(
        f"  p50 / p99 (single calls): {statistics.median(samples):.1f} / "
        f"{samples[int(len(samples) * 0.99)]:.1f} us"
    )
    print(f"baseline nearest-healthy  : {baseline_us:.1f} us/decision")
    print(f"ratio place / baseline    : {place_us / baseline_us:.1f}x")


if __name__ == "__main__":
    main()
