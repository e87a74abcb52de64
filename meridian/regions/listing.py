"""One listing of a region's nodes and live pods per tick, shared by the unit worker's
health probe and its scaling observation.

Both need the same two lists (what the region has, what asks for room), and listing
every pod of a large cluster is the most expensive read either makes. The probe always
lists afresh: its job is to measure the API (does it answer, how fast, with how many
errors), so it must ask. The scaling observation takes the latest listing when it is
younger than `ttl_seconds` and lists only otherwise; with the monitor probing every ~2 s
and the control loop ticking every ~10 s, a tick's observation reads the listing its
region's last probe made, and each region is listed once per probe, not twice.

With a `PodCache` (the unit worker's default) a probe lists only the nodes, still a
fresh call that measures the API, and takes the pods from the cache, kept by a watch;
while the cache is not synced (starting, or cut off from the API) it lists both as
before. A region whose API does not answer the node list is unreachable either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meridian.kube.gateway import JobGateway
    from meridian.regions.pod_cache import PodCache

log = logging.getLogger(__name__)

# Under the health interval's default (2 s) plus a probe's time: a listing this old is
# at most one probe behind.
DEFAULT_TTL_SECONDS = 3.0


@dataclass(frozen=True)
class Listing:
    """A region's nodes and live pods (not Succeeded, not Failed), raw Kubernetes JSON
    (pods from the pod cache carry only the fields `slim_pod` keeps)."""

    region: str
    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    # time.monotonic() when the lists came back.
    at: float


class RegionListings:
    """Per unit worker: the latest listing of each region it serves. Thread-safe (sync
    activities run on a thread pool)."""

    def __init__(
        self,
        gateway: JobGateway,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        pod_cache: PodCache | None = None,
    ):
        self.gateway = gateway
        self.pod_cache = pod_cache
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, Listing] = {}
        # Lists actually requested from an API (what sharing saves shows here).
        self.fetches = 0
        # Of those, pods taken from the cache, and pods listed because it was not synced.
        self.cached = 0
        self.uncached = 0

    def fetch(self, region: str, *, within: float | None = None) -> Listing:
        """List the region now (the probe's call) and keep the result for `recent`.

        `within` bounds the API calls (seconds, retries included); KubeError when they
        fail or run out of time.
        """
        cache = self.pod_cache
        cached = cache is not None and cache.synced(region)
        if cache is not None and cached:
            nodes = self.gateway.list_nodes(region, within=within)
            pods = cache.pods(region)
        else:
            if cache is not None:
                log.debug("pod cache of %s not synced: listing its pods", region)
            nodes, listed = self.gateway.nodes_and_live_pods(region, within=within)
            pods = list(listed.get("items") or [])
        listing = Listing(
            region=region, nodes=list(nodes.get("items") or []), pods=pods, at=self._clock()
        )
        with self._lock:
            self.fetches += 1
            if cache is not None:
                if cached:
                    self.cached += 1
                else:
                    self.uncached += 1
            latest = self._latest.get(region)
            if latest is None or latest.at <= listing.at:
                self._latest[region] = listing
        return listing

    def recent(self, region: str, *, within: float | None = None) -> Listing:
        """The region's latest listing when younger than the TTL, else a fresh one."""
        with self._lock:
            latest = self._latest.get(region)
        if latest is not None and self._clock() - latest.at < self.ttl_seconds:
            return latest
        return self.fetch(region, within=within)
