"""Seeded inputs for the placement golden test: fleets shaped like production's snapshots
(serverless rooms, pools' facts, probe times) and task inputs shaped like place_task's,
varied enough to reach every filter, bursting, reservations and their queueing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meridian.placement import RegionSnapshot
from meridian.placement.types import ServerlessRoom
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.load import RegionLoad, ServerlessUsage
from meridian.regions.models import RegionHealth
from meridian.regions.network import NetworkPath
from meridian.regions.providers import Provider
from meridian.regions.view import pool_facts
from meridian.tasks.contracts import PlaceTaskInput
from meridian.tasks.spec import (
    Capacity,
    DataSource,
    JobSpec,
    PlacementConstraints,
    Resources,
    TaskKind,
    TaskSpec,
)

FLEET = Path(__file__).resolve().parents[2] / "infra" / "regions" / "fleet-15.yaml"
GIB = 1 << 30
EPOCH = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
CPUS = ["250m", "500m", "1", "2", "4", "8", "16"]
MEMORIES = ["512Mi", "1Gi", "4Gi", "16Gi", "48Gi"]


def data_keys(catalog: Catalog) -> list[str]:
    return sorted(r.key for r in catalog)


def region_names() -> list[str]:
    return [r.name for r in load_regions(FLEET).regions]


def fleet(rnd: random.Random, keys: list[str], observed_at: datetime) -> list[RegionSnapshot]:
    out = []
    for region in load_regions(FLEET).regions:
        nodes = rnd.choice([0, 1, 2, 3, 6, 12])
        ready = nodes if rnd.random() > 0.1 else max(0, nodes - 1)
        cpu, mem = nodes * 16_000, nodes * 64 * GIB
        used = rnd.choice([0.1, 0.5, 0.8, 0.9, 0.97, rnd.random()])
        state = rnd.choices(["up", "degraded", "down"], weights=[80, 12, 8])[0]
        network = {
            key: NetworkPath(
                target=key,
                rtt_ms=rnd.uniform(1, 250),
                loss=rnd.uniform(0, 0.03),
                samples=rnd.randint(1, 20),
                measured=rnd.random() > 0.2,
            )
            for key in rnd.sample(keys, 6)
        }
        serverless = None
        if region.serverless is not None and rnd.random() > 0.15:
            usage = rnd.choice(
                [
                    None,
                    ServerlessUsage(nodes=0),
                    ServerlessUsage(nodes=1, ready=False),
                    ServerlessUsage(nodes=1, ready=True, waiting_pods=rnd.choice([0, 0, 2])),
                    ServerlessUsage(
                        nodes=1,
                        ready=True,
                        pods=rnd.randint(0, 40),
                        cpu_millis=rnd.randint(0, 200) * 1000,
                        memory_bytes=rnd.randint(0, 400) * GIB,
                    ),
                ]
            )
            serverless = ServerlessRoom(config=region.serverless, usage=usage)
        advised = rnd.random() < 0.15
        out.append(
            RegionSnapshot(
                name=region.name,
                provider=region.provider,
                location=region.location,
                healthy=state != "down",
                health_reason=rnd.choice([None, "probe timed out", "API 503"]),
                state=RegionHealth(state),
                worker_polling=rnd.random() > 0.05,
                nodes_ready=ready,
                nodes_total=nodes,
                cpu_allocatable_millis=cpu,
                cpu_requested_millis=int(cpu * used),
                memory_allocatable_bytes=mem,
                memory_requested_bytes=int(mem * used * rnd.uniform(0.5, 1)),
                largest_free_cpu_millis=int(16_000 * (1 - used) * rnd.random()) if nodes else 0,
                largest_free_memory_bytes=int(64 * GIB * (1 - used) * rnd.random()) if nodes else 0,
                pending_pods=rnd.choice([0, 0, 0, 1, 4, 10]),
                api_error_rate=rnd.choice([0.0, 0.0, 0.0, 0.05, 0.5]),
                draining=rnd.random() < 0.04,
                network=network,
                observed_at=observed_at if rnd.random() > 0.05 else None,
                serverless=serverless,
                pools=pool_facts(region, RegionLoad(nodes_total=nodes)),
                burst_advised=advised,
                burst_advice=rnd.choice([None, "pool at its ceiling in 2 min"])
                if advised
                else None,
            )
        )
    return out


def task_input(
    rnd: random.Random, keys: list[str], names: list[str], task_id: str
) -> PlaceTaskInput:
    provider, _, region = rnd.choice(keys).partition(":")
    constraints: dict[str, object] = {
        "capacity": rnd.choices(
            [Capacity.AUTO, Capacity.NODES, Capacity.SERVERLESS], weights=[60, 25, 15]
        )[0]
    }
    roll = rnd.random()
    if roll < 0.08:
        constraints["region"] = rnd.choice(names)
    elif roll < 0.25:
        constraints["preferences"] = [rnd.sample(names, 2), ["gcp", rnd.choice(names)]]
    elif roll < 0.35:
        constraints["providers"] = [Provider.AWS, Provider.GCP]
    elif roll < 0.42:
        constraints["regions"] = rnd.sample(names, 4)
    excluded = {
        name: rnd.choice(["", "node lost", "image pull failed"])
        for name in rnd.sample(names, rnd.choice([0, 0, 0, 1, 2]))
    }
    spec = TaskSpec(
        name="golden",
        business_unit="ads",
        kind=TaskKind.RESIDENT if rnd.random() < 0.1 else TaskKind.BATCH,
        data_source=DataSource(provider=Provider(provider), region=region),
        job=JobSpec(
            image="busybox",
            resources=Resources(cpu=rnd.choice(CPUS), memory=rnd.choice(MEMORIES)),
        ),
        placement=PlacementConstraints.model_validate(constraints),
    )
    return PlaceTaskInput(task_id=task_id, spec=spec, attempt=1, seq=1, excluded_regions=excluded)


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)
