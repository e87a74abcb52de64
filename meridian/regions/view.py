"""The central service's view of every region: what placement scores against.

Built from the region states the region monitor records (load from each region's
Kubernetes API, health, worker polling) and the smoothed network paths. Cached for a
moment: at tens of placements a second, re-reading the database for each is waste.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from meridian.placement.types import PoolFacts, RegionSnapshot, ServerlessRoom
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.catalog import Catalog
from meridian.regions.config import RegionConfig, RegionsFile
from meridian.regions.details import RegionDetails
from meridian.regions.load import RegionLoad
from meridian.regions.models import RegionHealth
from meridian.regions.network import NetworkPath
from meridian.settings import BurstSettings, PlacementWeights
from meridian.store import Store

CACHE_SECONDS = 1.0


class RegionView:
    def __init__(
        self,
        store: Store,
        regions: RegionsFile,
        weights: PlacementWeights,
        catalog: Catalog,
        burst: BurstSettings | None = None,
    ):
        self.store = store
        self.regions = regions
        self.weights = weights
        self.catalog = catalog
        self.burst = burst or BurstSettings()
        self._lock = threading.Lock()
        self._cached: tuple[float, list[RegionSnapshot]] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def snapshots(self) -> list[RegionSnapshot]:
        now = time.monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
        built = self._build()
        with self._lock:
            self._cached = (now, built)
        return built

    def _build(self) -> list[RegionSnapshot]:
        states = self.store.get_region_states()
        paths: dict[str, dict[str, NetworkPath]] = {}
        for row in self.store.list_network_paths():
            paths.setdefault(row.from_region, {})[row.target] = NetworkPath(
                target=row.target,
                rtt_ms=row.rtt_ms,
                loss=row.loss,
                measured=True,
                samples=row.samples,
                updated_at=row.measured_at,
            )
        snapshots = []
        for region in self.regions.regions:
            if region.role == "central" and not region.node_pools:
                continue
            record = states.get(region.name)
            snapshots.append(
                snapshot_from(
                    region.name,
                    region.provider.value,
                    region.location,
                    record.state if record is not None else RegionHealth.UNKNOWN,
                    record.reason if record is not None else "no health report yet",
                    record.details if record is not None else RegionDetails(),
                    paths.get(region.name, {}),
                    region=region,
                )
            )
        return snapshots


def snapshot_from(
    name: str,
    provider: str,
    location: str,
    state: RegionHealth,
    reason: str | None,
    details: RegionDetails,
    network: dict[str, NetworkPath],
    region: RegionConfig | None = None,
) -> RegionSnapshot:
    """What placement scores: a region that is neither up nor degraded (down, or not
    reported yet) is unhealthy and reads as down. With the region's config, its
    serverless capacity and pools' facts come along (what bursting is weighed with)."""
    healthy = state.usable
    load = details.load or RegionLoad()
    serverless = None
    if region is not None and region.serverless is not None:
        serverless = ServerlessRoom(config=region.serverless, usage=load.serverless)
    return RegionSnapshot(
        name=name,
        provider=provider,
        location=location,
        healthy=healthy,
        health_reason=None if healthy else (reason or state.value),
        state=state if healthy else RegionHealth.DOWN,
        # Not probed yet: only health says anything about the worker.
        worker_polling=details.worker_polling if details.worker_polling is not None else healthy,
        nodes_ready=load.nodes_ready,
        nodes_total=load.nodes_total,
        cpu_allocatable_millis=load.cpu_allocatable_millis,
        cpu_requested_millis=load.cpu_requested_millis,
        memory_allocatable_bytes=load.memory_allocatable_bytes,
        memory_requested_bytes=load.memory_requested_bytes,
        largest_free_cpu_millis=load.largest_free_cpu_millis,
        largest_free_memory_bytes=load.largest_free_memory_bytes,
        pods_allocatable=load.pods_allocatable,
        pods_live=load.pods_live,
        pending_pods=load.pending_pods,
        api_error_rate=details.api_error_rate,
        draining=details.draining,
        network=network,
        observed_at=_utc(details.load_probed_at),
        serverless=serverless,
        pools=pool_facts(region, load) if region is not None else PoolFacts(),
        burst_advised=details.burst_advised,
        burst_advice=details.burst_reason,
    )


def _utc(value: datetime | None) -> datetime | None:
    # Compared with placement's clock (aware UTC): a naive time read back is UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def pool_facts(region: RegionConfig, load: RegionLoad) -> PoolFacts:
    """The pools as the regions file states them; at their ceiling when the probe counts
    as many nodes as the pools' maxima allow."""
    pools = region.node_pools
    if not pools:
        return PoolFacts(at_ceiling=True)
    ceiling = sum(p.max for p in pools)
    growable = [p for p in pools if p.max > 0]
    boots = [p.boot_seconds for p in growable if p.boot_seconds is not None]
    priced = [p for p in pools if p.price_per_hour is not None]
    cheapest = min(priced, key=lambda p: p.price_per_hour or 0.0) if priced else None
    return PoolFacts(
        at_ceiling=load.nodes_total >= ceiling,
        boot_seconds=min(boots) if boots else None,
        price_per_hour=cheapest.price_per_hour if cheapest else None,
        node_cpu_millis=parse_cpu_millis(cheapest.cpu) if cheapest else 0,
        node_memory_bytes=parse_memory_bytes(cheapest.memory) if cheapest else 0,
    )
