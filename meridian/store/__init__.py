"""Meridian's database: tasks, transitions, placements, regions, sweeps and scaling.

Use `Store(url)` (or `Store.from_settings(settings)`), call `migrate()` once at
start-up, and hand it to API handlers and sync activities alike.

The records, errors and `spec_hash` import without SQLAlchemy, so workflow code may
use `Transition` and friends; `Store` (and with it SQLAlchemy) loads on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meridian.store.canonical import spec_hash
from meridian.store.errors import StoreError, TaskConflictError, TaskNotFoundError
from meridian.store.records import (
    ActiveTaskRef,
    CreateOutcome,
    NetworkPathRecord,
    OrphanRecord,
    PlacementRecord,
    RegionEventRecord,
    RegionHealth,
    RegionStateRecord,
    ScalingDecisionRecord,
    ScalingMode,
    SweepKind,
    SweepRunRecord,
    TaskEventRecord,
    TaskPage,
    TaskRecord,
    Transition,
    WaterLevelRecord,
)

if TYPE_CHECKING:
    from meridian.store.store import Store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from meridian.store.store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ActiveTaskRef",
    "CreateOutcome",
    "NetworkPathRecord",
    "OrphanRecord",
    "PlacementRecord",
    "RegionEventRecord",
    "RegionHealth",
    "RegionStateRecord",
    "ScalingDecisionRecord",
    "ScalingMode",
    "Store",
    "StoreError",
    "SweepKind",
    "SweepRunRecord",
    "TaskConflictError",
    "TaskEventRecord",
    "TaskNotFoundError",
    "TaskPage",
    "TaskRecord",
    "Transition",
    "WaterLevelRecord",
    "spec_hash",
]
