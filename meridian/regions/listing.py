"""One listing of a region's nodes and live pods per tick, shared by the unit worker's
health probe and its scaling observation.

Both need the same two lists (what the region has, what asks for room), and listing
every pod of a large cluster is the most expensive read either makes. The probe always
lists afresh: its job is to measure the API (does it answer, how fast, with how many
errors), so it must ask. The scaling observation takes the latest listing when it is
younger than `ttl_seconds` and lists only otherwise; with the monitor probing every ~2 s
and the control loop ticking every ~10 s, a tick's observation reads the listing its
region's last probe made, and each region is listed once per probe, not twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meridian.kube.gateway import JobGateway

# Under the health interval's default (2 s) plus a probe's time: a listing this old is
# at most one probe behind.
DEFAULT_TTL_SECONDS = 3.0


@dataclass(frozen=True)
class Listing:
    """A region's nodes and live pods (not Succeeded, not Failed), raw Kubernetes JSON."""

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
    ):
        self.gateway = gateway
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, Listing] = {}
        # Lists actually requested from an API (what sharing saves shows here).
        self.fetches = 0

    def fetch(self, region: str, *, within: float | None = None) -> Listing:
        """List the region now (the probe's call) and keep the result for `recent`.

        `within` bounds the API calls (seconds, retries included); KubeError when they
        fail or run out of time.
        """
        nodes, pods = self.gateway.nodes_and_live_pods(region, within=within)
        listing = Listing(
            region=region,
            nodes=list(nodes.get("items") or []),
            pods=list(pods.get("items") or []),
            at=self._clock(),
        )
        with self._lock:
            self.fetches += 1
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
