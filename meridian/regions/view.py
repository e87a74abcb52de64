"""The central service's view of every region: what placement scores against.

Built from the region states the region monitor records (load from each region's
Kubernetes API, health, worker polling) and the smoothed network paths. Cached for a
moment: at tens of placements a second, re-reading the database for each is waste.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from meridian.placement.types import RegionSnapshot
from meridian.regions.catalog import Catalog
from meridian.regions.config import RegionsFile
from meridian.regions.network import NetworkPath
from meridian.settings import PlacementWeights
from meridian.store import Store

CACHE_SECONDS = 1.0


class RegionView:
    def __init__(
        self, store: Store, regions: RegionsFile, weights: PlacementWeights, catalog: Catalog
    ):
        self.store = store
        self.regions = regions
        self.weights = weights
        self.catalog = catalog
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
            state = states.get(region.name)
            details: dict[str, Any] = dict(state.details or {}) if state is not None else {}
            load: dict[str, Any] = dict(details.get("load") or {})
            snapshots.append(
                snapshot_from(
                    region.name,
                    region.provider.value,
                    region.location,
                    state.state if state is not None else "unknown",
                    state.reason if state is not None else "no health report yet",
                    details,
                    load,
                    paths.get(region.name, {}),
                )
            )
        return snapshots


def snapshot_from(
    name: str,
    provider: str,
    location: str,
    state: str,
    reason: str | None,
    details: dict[str, Any],
    load: dict[str, Any],
    network: dict[str, NetworkPath],
) -> RegionSnapshot:
    healthy = state in ("up", "degraded")
    return RegionSnapshot(
        name=name,
        provider=provider,
        location=location,
        healthy=healthy,
        health_reason=None if healthy else (reason or state),
        state="down" if not healthy else state,
        worker_polling=bool(details.get("worker_polling", healthy)),
        nodes_ready=int(load.get("nodes_ready") or 0),
        nodes_total=int(load.get("nodes_total") or 0),
        cpu_allocatable_millis=int(load.get("cpu_allocatable_millis") or 0),
        cpu_requested_millis=int(load.get("cpu_requested_millis") or 0),
        memory_allocatable_bytes=int(load.get("memory_allocatable_bytes") or 0),
        memory_requested_bytes=int(load.get("memory_requested_bytes") or 0),
        largest_free_cpu_millis=int(load.get("largest_free_cpu_millis") or 0),
        largest_free_memory_bytes=int(load.get("largest_free_memory_bytes") or 0),
        pending_pods=int(load.get("pending_pods") or 0),
        api_error_rate=float(details.get("api_error_rate") or 0.0),
        draining=bool(details.get("draining", False)),
        network=network,
    )
