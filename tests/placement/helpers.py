"""Builders for placement tests: snapshots of the regions files, free or loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meridian.placement import PlacementRequest, RegionSnapshot
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.config import RegionsFile, load_regions
from meridian.regions.network import NetworkPath
from meridian.regions.providers import Provider
from meridian.tasks.spec import DataSource, PlacementConstraints, Resources

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "infra" / "regions" / "dev.yaml"
FLEET = REPO / "infra" / "regions" / "fleet-15.yaml"


def snapshots_of(path: Path, used: float = 0.25) -> list[RegionSnapshot]:
    """Every region of a regions file, all nodes Ready, `used` of each node requested,
    with the file's simulated network paths as measured paths."""
    regions: RegionsFile = load_regions(path)
    out = []
    for region in regions.regions:
        nodes = sum(p.count for p in region.node_pools)
        cpu = sum(p.count * parse_cpu_millis(p.cpu) for p in region.node_pools)
        mem = sum(p.count * parse_memory_bytes(p.memory) for p in region.node_pools)
        node_cpu = max(parse_cpu_millis(p.cpu) for p in region.node_pools)
        node_mem = max(parse_memory_bytes(p.memory) for p in region.node_pools)
        network = {
            n.to: NetworkPath(target=n.to, rtt_ms=n.rtt_ms, loss=n.loss, samples=5)
            for n in regions.network
            if n.from_region == region.name
        }
        out.append(
            RegionSnapshot(
                name=region.name,
                provider=region.provider,
                location=region.location,
                nodes_ready=nodes,
                nodes_total=nodes,
                cpu_allocatable_millis=cpu,
                cpu_requested_millis=int(cpu * used),
                memory_allocatable_bytes=mem,
                memory_requested_bytes=int(mem * used),
                largest_free_cpu_millis=int(node_cpu * (1 - used)),
                largest_free_memory_bytes=int(node_mem * (1 - used)),
                network=network,
            )
        )
    return out


def request(
    data: str = "aws:us-east-1",
    cpu: str = "1",
    memory: str = "1Gi",
    **constraints: Any,
) -> PlacementRequest:
    excluded = constraints.pop("excluded", [])
    reasons = constraints.pop("reasons", {})
    provider, _, region = data.partition(":")
    return PlacementRequest(
        task_id="t-1",
        data_source=DataSource(provider=Provider(provider), region=region),
        resources=Resources(cpu=cpu, memory=memory),
        constraints=PlacementConstraints(**constraints),
        excluded_regions=excluded,
        exclusion_reasons=reasons,
    )


def replace(snaps: list[RegionSnapshot], name: str, **changes: Any) -> list[RegionSnapshot]:
    return [s.model_copy(update=changes) if s.name == name else s for s in snaps]
