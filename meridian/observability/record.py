"""What the engine's events mean as metrics: one function per kind of event, called by
the activity that sees it, so the activities each gain one line.

Observing never fails the caller: a metric is not worth a retried activity.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import wraps
from typing import ParamSpec, Protocol

from meridian.observability import metrics as m
from meridian.placement.types import PlacementDecision
from meridian.regions.contracts import ProbeOutcome
from meridian.regions.models import RECORDED_HEALTH, RegionHealth
from meridian.scaling.models import Decision
from meridian.sweeps.contracts import RecordSweepInput
from meridian.tasks.spec import TaskStatus

log = logging.getLogger(__name__)

P = ParamSpec("P")


def never_fails(fn: Callable[P, None]) -> Callable[P, None]:
    @wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - metrics are best effort, the work is not
            log.exception("observing %s failed", fn.__name__)

    return guarded


# -- tasks ----------------------------------------------------------------------------------

# The workflow (workflows/task.py) records these reasons when a task leaves a region that
# failed it; what follows names the failure.
_MOVING = "moving: "
_CREATE_FAILED = "could not create Job in "
# The unit's namespace could not be made ready for the Job: part of creating it.
_NAMESPACE_FAILED = "could not prepare namespace in "


def failover_reason(status: TaskStatus, reason: str | None) -> str | None:
    """The failover reason (a fixed set) a recorded status event starts, or None."""
    if status is not TaskStatus.SCHEDULING or not reason:
        return None
    if reason.startswith((_CREATE_FAILED, _NAMESPACE_FAILED)):
        return "create_failed"
    if not reason.startswith(_MOVING):
        return None
    why = reason.removeprefix(_MOVING)
    if why.startswith("region ") and " down" in why:
        return "region_down"
    if "unschedulable" in why:
        return "unschedulable"
    if "resident channel" in why:
        return "resident_failing"
    if "disappeared" in why or "pod gone" in why:
        return "job_lost"
    return "infrastructure"


class StatusEvent(Protocol):
    """The parts of a recorded status event (TaskEventRecord) the failover clock needs."""

    @property
    def seq(self) -> int: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...


def failover_started(
    events: Iterable[StatusEvent], running_seq: int
) -> tuple[datetime, str] | None:
    """When the move that the RUNNING event `running_seq` completes was detected, and
    why: the first failover event since the task last ran. None when it did not move."""
    detected: tuple[datetime, str] | None = None
    for event in sorted(events, key=lambda e: e.seq):
        if event.seq >= running_seq:
            break
        if event.status is TaskStatus.RUNNING:
            detected = None
            continue
        reason = failover_reason(event.status, event.reason)
        if reason is not None and detected is None:
            detected = (event.at, reason)
    return detected


class BusinessUnits:
    """Task id -> business unit, for labelling transitions: an LRU of recent tasks, so a
    task's unit is read once (and not at all when placement has seen its spec)."""

    def __init__(self, lookup: Callable[[str], str | None], *, size: int = 10_000) -> None:
        self._lookup = lookup
        self._size = size
        self._units: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, task_id: str, unit: str) -> None:
        with self._lock:
            self._units[task_id] = unit
            self._units.move_to_end(task_id)
            while len(self._units) > self._size:
                self._units.popitem(last=False)

    def get(self, task_id: str) -> str:
        with self._lock:
            unit = self._units.get(task_id)
        if unit is None:
            unit = self._lookup(task_id) or m.NONE
            self.remember(task_id, unit)
        return unit


@never_fails
def task_transition(
    *,
    status: TaskStatus,
    region: str | None,
    business_unit: str,
    reason: str | None,
) -> None:
    m.TASK_TRANSITIONS.labels(status.value, m.label(region), business_unit).inc()
    moved = failover_reason(status, reason)
    if moved is not None:
        m.FAILOVERS.labels(moved).inc()


@never_fails
def failover_completed(
    events: Sequence[StatusEvent], running_seq: int, running_at: datetime
) -> None:
    started = failover_started(events, running_seq)
    if started is not None:
        at, reason = started
        m.FAILOVER_DURATION.labels(reason).observe(max(0.0, (running_at - at).total_seconds()))


@never_fails
def placement(decision: PlacementDecision, seconds: float) -> None:
    m.PLACEMENT_DECISIONS.labels(m.label(decision.chosen)).inc()
    for filtered in decision.filtered:
        m.PLACEMENT_FILTERED.labels(filtered.region, filtered.code.value).inc()
    m.PLACEMENT_DURATION.observe(seconds)


def active_task_counts(
    rows: Iterable[tuple[str, str, int]],
) -> Mapping[tuple[str, ...], float]:
    """(status, business unit, count) rows as the gauge's samples, both active statuses
    shown for every unit seen, so a unit's RUNNING reads 0 rather than vanishing."""
    counts: Counter[tuple[str, ...]] = Counter()
    units: set[str] = set()
    for status, unit, count in rows:
        counts[(status, unit)] += count
        units.add(unit)
    for unit in units:
        for status in (TaskStatus.SCHEDULING, TaskStatus.RUNNING):
            counts[(status.value, unit)] += 0
    return {key: float(value) for key, value in counts.items()}


# -- regions ---------------------------------------------------------------------------------


@never_fails
def region_assessed(probe: ProbeOutcome, state: RegionHealth) -> None:
    for each in RECORDED_HEALTH:
        m.REGION_HEALTH.labels(probe.region, each.value).set(1.0 if each is state else 0.0)
    load = probe.snapshot
    if probe.reachable and (load.cpu_allocatable_millis or load.memory_allocatable_bytes):
        m.REGION_WATER_LEVEL.labels(probe.region).set(load.water_level)


@never_fails
def scaling_decision(region: str, decision: Decision) -> None:
    m.SCALING_DECISIONS.labels(region, decision.kind.value, decision.cause.value).inc()


@never_fails
def scaling_failed(region: str, decision: Decision) -> None:
    m.SCALING_FAILURES.labels(region, decision.kind.value).inc()


# -- sweeps ------------------------------------------------------------------------------------

# Counted with the sweep's record, not drift: what it looked at.
_NOT_DRIFT = frozenset({"jobs_seen"})


@never_fails
def sweep(inp: RecordSweepInput, found: Mapping[str, int], fixed: Mapping[str, int]) -> None:
    kind = inp.kind
    failed = any(region.error for region in inp.regions)
    m.SWEEP_RUNS.labels(kind, "error" if failed else "ok").inc()
    seconds = (inp.finished_at - inp.started_at).total_seconds()
    m.SWEEP_DURATION.labels(kind).observe(max(0.0, seconds))
    drift = 0
    for what, count in found.items():
        if what in _NOT_DRIFT:
            continue
        m.SWEEP_DRIFT_FOUND.labels(kind, what).inc(count)
        drift += count
    for what, count in fixed.items():
        m.SWEEP_DRIFT_FIXED.labels(kind, what).inc(count)
    m.SWEEP_LAST_DRIFT.labels(kind).set(drift)


@never_fails
def resume_failed() -> None:
    m.RESUME_FAILURES.inc()


# -- unit worker -------------------------------------------------------------------------------


@never_fails
def watch_restart(region: str, reason: str) -> None:
    """reason: closed, gone or error (see meridian_job_watch_restarts_total)."""
    m.WATCH_RESTARTS.labels(region, reason).inc()
