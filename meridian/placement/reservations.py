"""Placement counts what it has just given away until a probe has seen it.

A region's snapshot is as old as its last load probe (about one health interval). Every
task placed between two probes would otherwise see the same free room: a wave of tasks
all go to nodes that hold a few of them, and the rest wait Pending for the pool to grow
or for the unschedulable deadline, instead of bursting or going elsewhere.

So each decision leaves a reservation (region, nodes or serverless, the requests or the
billed size, when) and the next decisions read the snapshots less the reservations made
after the probe behind each snapshot. A reservation ends when a probe that started at
least `settle_seconds` after it has answered (the task's pod exists by then and that
probe counted it), when the same task is placed again (a retried activity, a re-placed
task: one reservation per task), or after `max_age_seconds` (a task stopped before its
Job was created, a region whose probes stopped answering).

How the room shrinks, simply: on nodes, the requests count as requested (the water level
rises) and the largest free node holds at most what the region has free in total after
them. That is exact for tasks of one size; with mixed sizes it can overstate the largest
free node (the snapshot does not say how the rest is spread), and a pod that then cannot
schedule is caught as unschedulable and moved, as before. On serverless capacity the
billed sizes count as pods seen on the virtual node, so the quota's headroom shrinks.

The reservations steer tasks, they never make one wait: when nothing can take a task
once they are counted but the probe's own figures would place it, it is placed there all
the same (its pod queues in the Kubernetes scheduler, as before), and the reason says so.

The ledger is per process: central workers running side by side each count their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from meridian.placement.filters import DEFAULT_WATER_CEILING
from meridian.placement.scoring import place, request_millis_bytes
from meridian.placement.types import (
    PlacementDecision,
    PlacementRequest,
    RegionSnapshot,
    ReservedRoom,
)
from meridian.regions.catalog import Catalog
from meridian.settings import BurstSettings, FailoverSettings, PlacementWeights

# From placement to a pod the probe can count: the Job is created through the region's
# unit worker, then its controller creates the pod and the scheduler binds it. A probe
# that started sooner after the placement may have listed the region before the pod.
SETTLE_SECONDS = 3.0
# The least a reservation is kept when no probe has seen it.
MIN_MAX_AGE_SECONDS = 30.0


def max_age_for(failover: FailoverSettings) -> float:
    """Long enough for a few probe rounds (each up to the interval plus the probe's own
    deadline) to have had their chance to count the pod."""
    round_seconds = failover.health_interval_seconds + failover.probe_api_timeout_seconds
    return max(MIN_MAX_AGE_SECONDS, SETTLE_SECONDS + 3 * round_seconds)


@dataclass(frozen=True, slots=True)
class Reservation:
    task_id: str
    region: str
    serverless: bool
    cpu_millis: int
    memory_bytes: int
    at: datetime


def reservation_for(
    request: PlacementRequest, decision: PlacementDecision, at: datetime
) -> Reservation | None:
    """What the decision takes from its region; None when it placed nothing."""
    chosen = next((c for c in decision.candidates if c.region == decision.chosen), None)
    if chosen is None:
        return None
    if chosen.burst is not None:
        cpu, memory = chosen.burst.billed.cpu_millis, chosen.burst.billed.memory_bytes
    else:
        cpu, memory = request_millis_bytes(request)
    return Reservation(
        task_id=request.task_id,
        region=chosen.region,
        serverless=chosen.burst is not None,
        cpu_millis=cpu,
        memory_bytes=memory,
        at=at,
    )


def unseen(reservation: Reservation, snap: RegionSnapshot | None, settle_seconds: float) -> bool:
    """Whether the probe behind `snap` may have missed the reservation's pod."""
    if snap is None or snap.observed_at is None:
        return True
    return snap.observed_at < reservation.at + timedelta(seconds=settle_seconds)


def with_reservations(
    snapshots: Sequence[RegionSnapshot],
    reservations: Iterable[Reservation],
    settle_seconds: float = SETTLE_SECONDS,
) -> list[RegionSnapshot]:
    """The snapshots less the reservations their probes have not seen. Pure; the
    snapshots given are not changed (they may be a cache shared by other callers)."""
    by_name = {s.name: s for s in snapshots}
    room: dict[str, ReservedRoom] = {}
    for r in reservations:
        snap = by_name.get(r.region)
        if snap is None or not unseen(r, snap, settle_seconds):
            continue
        held = room.setdefault(r.region, ReservedRoom())
        if r.serverless:
            held.serverless_tasks += 1
            held.serverless_cpu_millis += r.cpu_millis
            held.serverless_memory_bytes += r.memory_bytes
        else:
            held.nodes_tasks += 1
            held.nodes_cpu_millis += r.cpu_millis
            held.nodes_memory_bytes += r.memory_bytes
    return [_less(s, room[s.name]) if s.name in room else s for s in snapshots]


def _less(snap: RegionSnapshot, held: ReservedRoom) -> RegionSnapshot:
    changes: dict[str, object] = {"reserved": held}
    if held.nodes_tasks:
        cpu_requested = snap.cpu_requested_millis + held.nodes_cpu_millis
        memory_requested = snap.memory_requested_bytes + held.nodes_memory_bytes
        cpu_free = max(0, snap.cpu_allocatable_millis - cpu_requested)
        memory_free = max(0, snap.memory_allocatable_bytes - memory_requested)
        changes.update(
            cpu_requested_millis=cpu_requested,
            memory_requested_bytes=memory_requested,
            largest_free_cpu_millis=min(snap.largest_free_cpu_millis, cpu_free),
            largest_free_memory_bytes=min(snap.largest_free_memory_bytes, memory_free),
        )
    room = snap.serverless
    if held.serverless_tasks and room is not None and room.usage is not None:
        usage = room.usage.model_copy(
            update={
                "pods": room.usage.pods + held.serverless_tasks,
                "cpu_millis": room.usage.cpu_millis + held.serverless_cpu_millis,
                "memory_bytes": room.usage.memory_bytes + held.serverless_memory_bytes,
            }
        )
        changes["serverless"] = room.model_copy(update={"usage": usage})
    return snap.model_copy(update=changes)


class Reservations:
    """The central worker's ledger of recent placements (one per process, shared by its
    activity threads). `place` reads, decides and records under one lock: two tasks
    placed at once must not both take the last free CPU."""

    def __init__(
        self,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        max_age_seconds: float = MIN_MAX_AGE_SECONDS,
    ):
        if settle_seconds < 0:
            raise ValueError(f"settle_seconds must be >= 0, got {settle_seconds}")
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        self.settle_seconds = settle_seconds
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._by_task: dict[str, Reservation] = {}

    def place(
        self,
        request: PlacementRequest,
        snapshots: Sequence[RegionSnapshot],
        weights: PlacementWeights,
        catalog: Catalog,
        *,
        at: datetime,
        burst: BurstSettings,
        water_ceiling: float = DEFAULT_WATER_CEILING,
    ) -> PlacementDecision:
        """`place` over the snapshots less the live reservations; records the decision's
        own reservation (replacing the task's earlier one) for the next decisions."""
        with self._lock:
            self._expire(snapshots, at)
            # The task's own earlier reservation is for an attempt being replaced.
            self._by_task.pop(request.task_id, None)
            reserved = with_reservations(snapshots, self._by_task.values(), self.settle_seconds)
            decision = place(
                request, reserved, weights, catalog, water_ceiling=water_ceiling, burst=burst
            )
            if decision.chosen is None and any(s.reserved for s in reserved):
                decision = self._queue(
                    decision, request, snapshots, reserved, weights, catalog, burst, water_ceiling
                )
            reservation = reservation_for(request, decision, at)
            if reservation is not None:
                self._by_task[request.task_id] = reservation
            return decision

    @staticmethod
    def _queue(
        waiting: PlacementDecision,
        request: PlacementRequest,
        snapshots: Sequence[RegionSnapshot],
        reserved: Sequence[RegionSnapshot],
        weights: PlacementWeights,
        catalog: Catalog,
        burst: BurstSettings,
        water_ceiling: float,
    ) -> PlacementDecision:
        """Nothing can take the task once the reservations are counted. Where the probe's
        own figures would place it, send it there all the same: its pod queues for room
        in the Kubernetes scheduler and binds the moment a pod ends or a node boots
        (the pool grows for it, and the unschedulable deadline still moves it), where a
        task left unplaced would only be placed again on its backoff. The reservations
        only steer tasks to another region or capacity; they never make one wait."""
        probed = place(
            request, snapshots, weights, catalog, water_ceiling=water_ceiling, burst=burst
        )
        if probed.chosen is None:
            return waiting
        best = probed.candidates[0]
        held = next((s.reserved for s in reserved if s.name == best.region), None)
        if held is None:
            return probed
        taken = held.nodes_text() if best.burst is None else held.serverless_text()
        return probed.model_copy(
            update={
                "reason": f"{probed.reason}; the pod may queue for room: {taken}, and no "
                "region or capacity has room left for the task"
            }
        )

    def held(self) -> list[Reservation]:
        with self._lock:
            return list(self._by_task.values())

    def _expire(self, snapshots: Sequence[RegionSnapshot], now: datetime) -> None:
        by_name = {s.name: s for s in snapshots}
        oldest = now - timedelta(seconds=self.max_age_seconds)
        self._by_task = {
            task: r
            for task, r in self._by_task.items()
            if r.at > oldest and unseen(r, by_name.get(r.region), self.settle_seconds)
        }
