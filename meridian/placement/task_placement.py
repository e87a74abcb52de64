"""One task's placement as the `place_task` activity makes it, minus its I/O.

The activity stores the decision and records metrics around this; the bench times this
same function, so that its "real path" figure is what production pays per decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from meridian.placement.reservations import Reservations
from meridian.placement.types import PlacementDecision, PlacementRequest, RegionSnapshot
from meridian.regions.catalog import Catalog
from meridian.settings import BurstSettings, PlacementWeights
from meridian.tasks.contracts import PlaceTaskInput, PlaceTaskResult


@dataclass(frozen=True, slots=True)
class TaskPlacement:
    decision: PlacementDecision
    result: PlaceTaskResult


def place_for_task(
    inp: PlaceTaskInput,
    snapshots: Sequence[RegionSnapshot],
    reservations: Reservations,
    weights: PlacementWeights,
    catalog: Catalog,
    *,
    at: datetime,
    burst: BurstSettings,
) -> TaskPlacement:
    """Decide where the task goes (counting the ledger's reservations, recording its
    own) and build what the workflow receives: region, reason, summary, fingerprint."""
    request = PlacementRequest.for_task(
        inp.task_id,
        inp.spec,
        excluded_regions=sorted(inp.excluded_regions),
        exclusion_reasons=dict(inp.excluded_regions),
    )
    decision = reservations.place(request, snapshots, weights, catalog, at=at, burst=burst)
    return TaskPlacement(decision=decision, result=task_result(decision))


def task_result(decision: PlacementDecision) -> PlaceTaskResult:
    chosen = next((c for c in decision.candidates if c.region == decision.chosen), None)
    summary: dict[str, object] = {"region": decision.chosen, "reason": decision.reason}
    if chosen is not None and chosen.burst is not None:
        summary["capacity"] = {
            "kind": chosen.burst.kind.value,
            "billed_cpu": chosen.burst.billed.cpu,
            "billed_memory": chosen.burst.billed.memory,
            "cost_per_hour": round(chosen.burst.cost_per_hour, 6),
            "currency": chosen.burst.currency,
        }
    if chosen is not None:
        summary["score"] = round(chosen.total, 4)
        summary["breakdown"] = {
            "locality": round(chosen.locality, 4),
            "network": round(chosen.network, 4),
            "load": round(chosen.load, 4),
        }
    return PlaceTaskResult(
        region=decision.chosen,
        reason=decision.reason,
        summary=summary,
        fingerprint=decision.snapshot_fingerprint,
        burst=chosen.burst if chosen is not None else None,
    )
