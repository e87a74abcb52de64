"""place(): a pure, deterministic function from (request, snapshots) to a decision.

No I/O, no clock, no randomness. Result models are built with `trusted` (no
validation) because every value is produced here from validated inputs, and
validation would be most of the cost of a decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from operator import attrgetter

from meridian.placement import components
from meridian.placement.burst import BURSTABLE, Burst, burst_choice
from meridian.placement.explain import chosen_reason, fingerprint, unplaceable_reason
from meridian.placement.filters import DEFAULT_WATER_CEILING, Rules, rejection
from meridian.placement.memo import PlacementMemo
from meridian.placement.types import (
    CandidateScore,
    FilterCode,
    FilteredRegion,
    PlacementDecision,
    PlacementRequest,
    RegionSnapshot,
    trusted,
)
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.catalog import Catalog
from meridian.settings import BurstSettings, PlacementWeights
from meridian.tasks.spec import Capacity

_DEFAULT_BURST = BurstSettings()


def place(
    request: PlacementRequest,
    snapshots: Iterable[RegionSnapshot],
    weights: PlacementWeights,
    catalog: Catalog,
    *,
    water_ceiling: float = DEFAULT_WATER_CEILING,
    burst: BurstSettings = _DEFAULT_BURST,
    memo: PlacementMemo | None = None,
) -> PlacementDecision:
    """Rank every region for `request`; choose the best one that passes the hard filters.

    Candidates rank by (preference tier, -score, name); the name breaks exact ties so
    the same inputs always give the same answer, in whatever order they arrive.
    Raises ValueError when two snapshots share a name.

    `memo` keeps what is derived from each snapshot alone for the caller's next
    decisions (the ledger passes its own); without one, a fresh one serves this call.
    """
    if memo is None:
        memo = PlacementMemo()
    ordered = sorted(snapshots, key=attrgetter("name"))
    by_name = {s.name: s for s in ordered}
    if len(by_name) != len(ordered):
        raise ValueError("snapshots must have unique region names")
    rules = _rules(request, water_ceiling)
    tiers = [frozenset(tier) for tier in request.constraints.preferences]
    ds = request.data_source
    # Provider is a StrEnum: comparing and hashing the member itself skips the costly
    # Enum `.value` descriptor in the per-region loop.
    ds_provider, ds_region, ds_key = ds.provider, ds.region, ds.key
    w_loc, w_net, w_load = weights.locality, weights.network, weights.load

    facts = [memo.facts(s) for s in ordered]
    candidates: list[CandidateScore] = []
    filtered: list[FilteredRegion] = []
    for snap, fact in zip(ordered, facts, strict=True):
        water = fact.water
        rejected = rejection(snap, water, rules)
        chosen_burst: Burst | None = None
        if _may_burst(request.capacity, rejected, snap):
            outcome = burst_choice(
                snap,
                request.capacity,
                rules.need_cpu_millis,
                rules.need_memory_bytes,
                rejected,
                burst,
                memo,
            )
            if isinstance(outcome, Burst):
                chosen_burst, rejected = outcome, None
            elif rejected is not None:
                rejected = (rejected[0], f"{rejected[1]}; {outcome}")
            else:
                rejected = (_serverless_code(snap), outcome)
        if rejected is not None:
            code, why = rejected
            filtered.append(
                trusted(FilteredRegion, {"region": snap.name, "code": code, "reason": why})
            )
            continue
        km = catalog.distance_km(snap.provider, snap.location, ds_provider, ds_region)
        loc, loc_text = components.locality(snap, ds_provider, ds_region, ds_key, km)
        net, net_text = components.network(snap, ds_key, km)
        ld, ld_text = components.load(snap, water, rules.need_cpu_millis, rules.need_memory_bytes)
        tier = _tier(snap, tiers)
        details = {
            "locality": loc_text,
            "network": net_text,
            "load": ld_text,
            "tier": _tier_text(tier, len(tiers)),
        }
        cost = 0.0
        if chosen_burst is not None:
            cost = burst.cost_weight * chosen_burst.cost_term
            details["capacity"] = chosen_burst.explanation
        candidates.append(
            trusted(
                CandidateScore,
                {
                    "region": snap.name,
                    "total": w_loc * loc + w_net * net + w_load * ld - cost,
                    "locality": loc,
                    "network": net,
                    "load": ld,
                    "tier": tier,
                    "cost": cost,
                    "details": details,
                    "burst": chosen_burst.plan if chosen_burst is not None else None,
                },
            )
        )
    candidates.sort(key=lambda c: (c.tier, -c.total, c.region))

    if candidates:
        chosen: str | None = candidates[0].region
        reason = chosen_reason(candidates, len(tiers), rules.pinned)
    else:
        chosen = None
        reason = unplaceable_reason(filtered, by_name, rules)
    return trusted(
        PlacementDecision,
        {
            "task_id": request.task_id,
            "chosen": chosen,
            "reason": reason,
            "candidates": candidates,
            "filtered": filtered,
            "weights": weights,
            "decided_at": None,
            "snapshot_fingerprint": fingerprint(request, ordered, facts, weights, water_ceiling),
        },
    )


def _may_burst(
    capacity: Capacity, rejected: tuple[FilterCode, str] | None, snap: RegionSnapshot
) -> bool:
    """Serverless tasks always look at serverless room once the region passes the
    filters that hold whatever the capacity (constraints, health); auto tasks only when
    the nodes are full and the region declares serverless capacity."""
    if capacity is Capacity.SERVERLESS:
        return rejected is None or rejected[0] in BURSTABLE
    if capacity is Capacity.AUTO and snap.serverless is not None:
        return rejected is not None and rejected[0] in BURSTABLE
    return False


def _serverless_code(snap: RegionSnapshot) -> FilterCode:
    return FilterCode.CONSTRAINT if snap.serverless is None else FilterCode.CAPACITY


def _rules(request: PlacementRequest, water_ceiling: float) -> Rules:
    c = request.constraints
    cpu, memory = _parse_resources(request.resources.cpu, request.resources.memory)
    return Rules(
        need_cpu_millis=cpu,
        need_memory_bytes=memory,
        pinned=c.region,
        providers=frozenset(p.value for p in c.providers),
        regions=frozenset(c.regions),
        excluded=frozenset(request.excluded_regions),
        exclusion_reasons=request.exclusion_reasons,
        water_ceiling=water_ceiling,
    )


def request_millis_bytes(request: PlacementRequest) -> tuple[int, int]:
    """The request's (CPU millis, memory bytes), parsed as placement parses them."""
    return _parse_resources(request.resources.cpu, request.resources.memory)


@lru_cache(maxsize=1024)
def _parse_resources(cpu: str, memory: str) -> tuple[int, int]:
    # Quantity parsing goes through Decimal and costs more than the rest of a decision;
    # tasks reuse a handful of request sizes, so a small cache removes it.
    return parse_cpu_millis(cpu), parse_memory_bytes(memory)


def _tier(snap: RegionSnapshot, tiers: list[frozenset[str]]) -> int:
    """Index of the first tier naming the region or its provider; len(tiers) if none."""
    for index, tier in enumerate(tiers):
        if snap.name in tier or snap.provider in tier:
            return index
    return len(tiers)


def _tier_text(tier: int, tier_count: int) -> str:
    if tier_count == 0:
        return "no preference tiers"
    if tier == tier_count:
        return "in no preference tier (overflow)"
    return f"preference tier {tier + 1} of {tier_count}"
