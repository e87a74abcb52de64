"""The three score components, each in [0, 1] with a one-line reason.

Each is a function of one region and the request only, never of the other regions:
a region's score then means the same thing in every decision, and improving a region
(more free capacity, a better path) can only raise its own score.
"""

from __future__ import annotations

import math

from meridian.placement.types import RegionSnapshot
from meridian.regions.models import RegionHealth
from meridian.regions.network import estimate_rtt_ms, rtt_loss_quality

# Locality decays with the square root of distance, reaching 0 at ~20,000 km (half the
# Earth's circumference, the farthest two points can be). The square root front-loads
# the cost: leaving the metro or crossing an ocean matters far more than the next
# 1,000 km, which a linear decay would barely notice.
LOCALITY_ZERO_KM = 20_000.0
# Staying inside the data's provider keeps transfer on its backbone and avoids the
# egress bill, so a same-provider region gets a higher ceiling than another provider's
# region at the same distance. The data's own region always scores 1.
SAME_PROVIDER_CEILING = 0.9
OTHER_PROVIDER_CEILING = 0.75

# Load: mostly how full the region is, partly whether the task fits comfortably on the
# best node (a task that takes a whole node blocks the next one).
WATER_SHARE = 0.6
HEADROOM_SHARE = 0.4
# Pending pods per Ready node that halve the load score: a queue means the scheduler is
# already behind, whatever the requests say.
PENDING_PER_NODE_HALF = 2.0
DEGRADED_FACTOR = 0.75


def distance_decay(km: float) -> float:
    decay = 1.0 - math.sqrt(km / LOCALITY_ZERO_KM) if km > 0.0 else 1.0
    return decay if decay > 0.0 else 0.0


# The functions below run once per region per decision; they use conditionals and
# format specs instead of min()/max()/helper calls, which cost as much as the arithmetic.


def locality(
    snap: RegionSnapshot, ds_provider: str, ds_region: str, ds_key: str, km: float | None
) -> tuple[float, str]:
    if snap.provider == ds_provider:
        if snap.location == ds_region:
            return 1.0, f"data is in this region ({ds_key})"
        if km is None:
            return 0.0, f"same provider as the data ({ds_key}); distance unknown"
        return (
            SAME_PROVIDER_CEILING * distance_decay(km),
            f"same provider, {km:.0f} km from the data ({ds_key})",
        )
    if km is None:
        return 0.0, f"other provider; distance to the data ({ds_key}) unknown"
    return (
        OTHER_PROVIDER_CEILING * distance_decay(km),
        f"other provider, {km:.0f} km from the data ({ds_key})",
    )


def network(snap: RegionSnapshot, ds_key: str, km: float | None) -> tuple[float, str]:
    path = snap.network.get(ds_key)
    if path is not None and path.measured:
        return (
            rtt_loss_quality(path.rtt_ms, path.loss),
            f"measured RTT {path.rtt_ms:.1f} ms, loss {path.loss:.1%} ({path.samples} samples)",
        )
    if km is None:
        return 0.0, "not measured, and the distance is unknown"
    rtt = estimate_rtt_ms(km)
    return rtt_loss_quality(rtt, 0.0), f"estimated from {km:.0f} km: RTT ~{rtt:.0f} ms"


def load(
    snap: RegionSnapshot, water: float, need_cpu_millis: int, need_memory_bytes: int
) -> tuple[float, str]:
    if water > 1.0:
        water = 1.0
    elif water < 0.0:
        water = 0.0
    # Headroom: the share of the best node left free after the task. The filters ensure
    # the task fits (free >= need), so only an unfiltered call can go below 0.
    free_cpu, free_mem = snap.largest_free_cpu_millis, snap.largest_free_memory_bytes
    headroom = 1.0 - need_cpu_millis / free_cpu if free_cpu > 0 else 0.0
    mem_headroom = 1.0 - need_memory_bytes / free_mem if free_mem > 0 else 0.0
    if mem_headroom < headroom:
        headroom = mem_headroom
    if headroom < 0.0:
        headroom = 0.0
    score = WATER_SHARE * (1.0 - water) + HEADROOM_SHARE * headroom
    text = f"water level {water:.0%}, best node keeps {headroom:.0%} free after it"
    held = snap.reserved
    if held is not None and held.nodes_tasks:
        text += f", {held.nodes_text()}"
    if snap.pending_pods:
        per_node = snap.pending_pods / (snap.nodes_ready or 1)
        score /= 1.0 + per_node / PENDING_PER_NODE_HALF
        text += f", {snap.pending_pods} pods pending"
    if snap.api_error_rate:
        score *= 1.0 - snap.api_error_rate
        text += f", API errors {snap.api_error_rate:.0%}"
    if snap.state == RegionHealth.DEGRADED:
        score *= DEGRADED_FACTOR
        text += f", degraded: {snap.health_reason or 'no reason given'}"
    return score, text
