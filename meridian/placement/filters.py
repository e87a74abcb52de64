"""Hard filters: a region that fails one is not a candidate, whatever its score."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meridian.placement.format import cpu_text, memory_text, percent
from meridian.placement.types import FilterCode, RegionSnapshot
from meridian.regions.models import RegionHealth

DEFAULT_WATER_CEILING = 0.95


@dataclass(frozen=True, slots=True)
class Rules:
    """The request's hard constraints, resolved once per decision."""

    need_cpu_millis: int
    need_memory_bytes: int
    pinned: str | None
    providers: frozenset[str]
    regions: frozenset[str]
    excluded: frozenset[str]
    exclusion_reasons: Mapping[str, str]
    water_ceiling: float = DEFAULT_WATER_CEILING


def rejection(snap: RegionSnapshot, water: float, rules: Rules) -> tuple[FilterCode, str] | None:
    """The first filter `snap` fails, as (code, reason); None when it is a candidate.

    Order matters only for which reason is shown: the submitter's own constraints come
    before transient health, which comes before capacity, so that the reason shown is
    the one that would still hold after the region recovers.
    """
    name = snap.name
    if name in rules.excluded:
        why = rules.exclusion_reasons.get(name)
        return FilterCode.EXCLUDED, (
            f"excluded after an earlier failed attempt: {why}"
            if why
            else "excluded after an earlier failed attempt"
        )
    if rules.pinned is not None and name != rules.pinned:
        return FilterCode.CONSTRAINT, f"not the pinned region {rules.pinned}"
    if rules.providers and snap.provider not in rules.providers:
        allowed = ", ".join(sorted(rules.providers))
        return FilterCode.CONSTRAINT, f"provider {snap.provider.value} not allowed ({allowed})"
    if rules.regions and name not in rules.regions:
        return FilterCode.CONSTRAINT, "not in the task's allowed regions"
    if not snap.healthy or snap.state == RegionHealth.DOWN:
        return FilterCode.DOWN, f"region down: {snap.health_reason or 'unhealthy'}"
    if not snap.worker_polling:
        return FilterCode.NOT_POLLING, f"unit worker not polling its task queue region.{name}"
    if snap.draining:
        return FilterCode.DRAINING, "region is draining"
    if water >= rules.water_ceiling:
        why = f"water level {percent(water)} at or above ceiling {percent(rules.water_ceiling)}"
        if snap.reserved is not None and snap.reserved.nodes_tasks:
            why += f" ({snap.reserved.nodes_text()})"
        return FilterCode.SATURATED, why
    if snap.nodes_ready == 0:
        return FilterCode.NO_NODES, f"no Ready nodes (0 of {snap.nodes_total})"
    return _capacity_rejection(snap, rules)


def no_pod_slot(snap: RegionSnapshot) -> bool:
    """Every known pod slot of the region's schedulable nodes is taken (by live pods, and
    by placements since the probe when `snap` has them counted). Unknown slots
    (`pods_allocatable` 0: a node that does not report them, an older snapshot) never
    reject."""
    # `snap.pods_free` < 1, without its calls: this runs per region per decision.
    allocatable = snap.pods_allocatable
    return allocatable > 0 and snap.pods_live >= allocatable


def slots_text(snap: RegionSnapshot) -> str:
    return f"{snap.pods_live} of {snap.pods_allocatable} pods"


def _capacity_rejection(snap: RegionSnapshot, rules: Rules) -> tuple[FilterCode, str] | None:
    if no_pod_slot(snap):
        # First and alone: with no slot, no node's free CPU or memory is of use.
        why = f"no pod slot free: {slots_text(snap)}"
        held = snap.reserved
        if held is not None and held.nodes_tasks:
            why += f" ({held.nodes_text()})"
        return FilterCode.CAPACITY, why
    # The two maxima may sit on different nodes, so passing here is necessary, not
    # sufficient; a Job that still cannot schedule is caught as unschedulable and moved.
    short: list[str] = []
    if snap.largest_free_cpu_millis < rules.need_cpu_millis:
        short.append(
            f"needs {cpu_text(rules.need_cpu_millis)} CPU, "
            f"largest free node has {cpu_text(snap.largest_free_cpu_millis)}"
        )
    if snap.largest_free_memory_bytes < rules.need_memory_bytes:
        short.append(
            f"needs {memory_text(rules.need_memory_bytes)} memory, "
            f"largest free node has {memory_text(snap.largest_free_memory_bytes)}"
        )
    if short:
        held = snap.reserved
        if held is not None and held.nodes_tasks:
            # The free room shown is the probe's less these: say so, or it reads wrong.
            short.append(held.nodes_text())
        return FilterCode.CAPACITY, "; ".join(short)
    return None
