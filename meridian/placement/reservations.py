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
rises), each task holds one pod slot (counted as a live pod: a region whose known slots
are then all taken is filtered out), and the largest free node holds at most what the
region has free in total after them. That is exact for tasks of one size; with mixed
sizes it can overstate the largest free node (the snapshot does not say how the rest is
spread), and a pod that then cannot schedule is caught as unschedulable and moved, as
before. On serverless capacity the billed sizes count as pods seen on the virtual node,
so the quota's headroom shrinks (and no pool's pod slot is held).

The reservations steer tasks, they never make one wait: when nothing can take a task
once they are counted but the probe's own figures would place it, it is placed there all
the same (its pod queues in the Kubernetes scheduler, as before), and the reason says so.

The ledger is per process: central workers running side by side each count their own.
"""

from __future__ import annotations

import threading
from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from meridian.placement.filters import DEFAULT_WATER_CEILING
from meridian.placement.memo import PlacementMemo
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
            # One pod per task (unknown slots stay unknown: allocatable 0 is not changed).
            pods_live=snap.pods_live + held.nodes_tasks,
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


class _RegionTally:
    """One region's live reservations, oldest first, and their running sums: a decision
    reads the sums instead of adding up every entry, and expiry cuts a prefix (both of
    its conditions, too old and seen by the region's probe, are "at or before a time")."""

    __slots__ = ("entries", "sums")

    def __init__(self) -> None:
        self.entries: list[Reservation] = []
        # nodes tasks, CPU, memory; serverless tasks, CPU, memory (ReservedRoom's order).
        self.sums = [0, 0, 0, 0, 0, 0]

    def add(self, r: Reservation) -> None:
        insort(self.entries, r, key=_AT)
        self._count(r, 1)

    def remove(self, r: Reservation) -> None:
        index = next(i for i, e in enumerate(self.entries) if e is r)
        del self.entries[index]
        self._count(r, -1)

    def drop_until(self, limit: datetime) -> list[Reservation]:
        """Remove and return the reservations made at or before `limit`."""
        cut = bisect_right(self.entries, limit, key=_AT)
        if not cut:
            return []
        gone = self.entries[:cut]
        del self.entries[:cut]
        for r in gone:
            self._count(r, -1)
        return gone

    def _count(self, r: Reservation, sign: int) -> None:
        base = 3 if r.serverless else 0
        sums = self.sums
        sums[base] += sign
        sums[base + 1] += sign * r.cpu_millis
        sums[base + 2] += sign * r.memory_bytes

    def room(self) -> ReservedRoom:
        n_tasks, n_cpu, n_mem, s_tasks, s_cpu, s_mem = self.sums
        return ReservedRoom(
            nodes_tasks=n_tasks,
            nodes_cpu_millis=n_cpu,
            nodes_memory_bytes=n_mem,
            serverless_tasks=s_tasks,
            serverless_cpu_millis=s_cpu,
            serverless_memory_bytes=s_mem,
        )


_AT = attrgetter("at")


class Reservations:
    """The central worker's ledger of recent placements (one per process, shared by its
    activity threads). `place` reads, decides and records under one lock: two tasks
    placed at once must not both take the last free CPU.

    Besides the reservations it keeps, per region, their running sums and the last
    snapshot it reduced by them: a snapshot set is shared by the decisions of about a
    second, each of which changes one region's sums, so the other regions' reduced
    snapshots (and what `memo` derived from them) carry over to the next decision."""

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
        self._settle = timedelta(seconds=settle_seconds)
        self._max_age = timedelta(seconds=max_age_seconds)
        self._lock = threading.Lock()
        self._by_task: dict[str, Reservation] = {}
        self._regions: dict[str, _RegionTally] = {}
        # Region -> (snapshot given, its sums, that snapshot less them).
        self._reduced: dict[str, tuple[RegionSnapshot, tuple[int, ...], RegionSnapshot]] = {}
        self.memo = PlacementMemo()

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
            earlier = self._by_task.pop(request.task_id, None)
            if earlier is not None:
                self._regions[earlier.region].remove(earlier)
            reserved = self._less_reserved(snapshots)
            memo = self.memo
            decision = place(
                request,
                reserved,
                weights,
                catalog,
                water_ceiling=water_ceiling,
                burst=burst,
                memo=memo,
            )
            if decision.chosen is None and any(s.reserved for s in reserved):
                decision = self._queue(
                    decision,
                    request,
                    snapshots,
                    reserved,
                    weights,
                    catalog,
                    burst,
                    water_ceiling,
                    memo,
                )
            reservation = reservation_for(request, decision, at)
            if reservation is not None:
                self._by_task[request.task_id] = reservation
                tally = self._regions.get(reservation.region)
                if tally is None:
                    tally = self._regions[reservation.region] = _RegionTally()
                tally.add(reservation)
            return decision

    def _less_reserved(self, snapshots: Sequence[RegionSnapshot]) -> list[RegionSnapshot]:
        """What `with_reservations` gives for the live reservations: after `_expire`
        every one left for a region in `snapshots` is unseen by its probe."""
        out = []
        for snap in snapshots:
            tally = self._regions.get(snap.name)
            if tally is None or not tally.entries:
                out.append(snap)
                continue
            sums = tuple(tally.sums)
            last = self._reduced.get(snap.name)
            if last is not None and last[0] is snap and last[1] == sums:
                out.append(last[2])
                continue
            reduced = _less(snap, tally.room())
            self._reduced[snap.name] = (snap, sums, reduced)
            out.append(reduced)
        return out

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
        memo: PlacementMemo | None = None,
    ) -> PlacementDecision:
        """Nothing can take the task once the reservations are counted. Where the probe's
        own figures would place it, send it there all the same: its pod queues for room
        in the Kubernetes scheduler and binds the moment a pod ends or a node boots
        (the pool grows for it, and the unschedulable deadline still moves it), where a
        task left unplaced would only be placed again on its backoff. The reservations
        only steer tasks to another region or capacity; they never make one wait."""
        probed = place(
            request,
            snapshots,
            weights,
            catalog,
            water_ceiling=water_ceiling,
            burst=burst,
            memo=memo,
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
        """Drop what is too old or seen: made at or before `now - max_age`, or at or
        before the region's probe time less `settle_seconds` (`unseen`, exactly)."""
        if not self._by_task:
            return
        observed = {s.name: s.observed_at for s in snapshots}
        oldest = now - self._max_age
        for region, tally in self._regions.items():
            if not tally.entries:
                continue
            limit = oldest
            probed = observed.get(region)
            if probed is not None and probed - self._settle > limit:
                limit = probed - self._settle
            for r in tally.drop_until(limit):
                del self._by_task[r.task_id]
