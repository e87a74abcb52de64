"""What placement derives from one snapshot (or one serverless config and task size)
alone, kept for the next decisions that read the same objects.

A snapshot set is shared by the decisions of about a second (RegionView's cache), and
the ledger hands unchanged regions' reduced snapshots from one decision to the next, so
most regions of a decision are objects an earlier decision already read. The memo is
owned by its caller (the ledger, under its lock; it is not thread-safe) and keyed by
object identity, holding each object so that an id cannot be reused while it is kept.
It is bounded: once full it starts again empty, which costs one recomputation per entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from meridian.placement.burst import config_limits, plan_or_reason
from meridian.placement.explain import region_fingerprint
from meridian.placement.types import RegionSnapshot
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.plan import BurstPlan

MAX_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    water: float
    # The region's share of the decision's fingerprint, less its path to the data.
    fingerprint_text: tuple[str, ...]
    fingerprint_ints: bytes


def snapshot_facts(snap: RegionSnapshot) -> SnapshotFacts:
    water = snap.water_level
    text, ints = region_fingerprint(snap, water)
    return SnapshotFacts(water, text, struct.pack(f"<{len(ints)}q", *ints))


class PlacementMemo:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._facts: dict[int, tuple[RegionSnapshot, SnapshotFacts]] = {}
        self._plans: dict[tuple[int, int, int], tuple[ServerlessConfig, BurstPlan | str]] = {}
        self._limits: dict[int, tuple[ServerlessConfig, tuple[int, int]]] = {}

    def facts(self, snap: RegionSnapshot) -> SnapshotFacts:
        kept = self._facts.get(id(snap))
        if kept is not None and kept[0] is snap:
            return kept[1]
        if len(self._facts) >= self.max_entries:
            self._facts.clear()
        facts = snapshot_facts(snap)
        self._facts[id(snap)] = (snap, facts)
        return facts

    def plan(self, config: ServerlessConfig, cpu_millis: int, memory_bytes: int) -> BurstPlan | str:
        """`plan_or_reason`, shared: a plan is the same for every task of the size (the
        plans handed out are shared objects, and nothing changes a plan once made)."""
        key = (id(config), cpu_millis, memory_bytes)
        kept = self._plans.get(key)
        if kept is not None and kept[0] is config:
            return kept[1]
        if len(self._plans) >= self.max_entries:
            self._plans.clear()
        planned = plan_or_reason(config, cpu_millis, memory_bytes)
        self._plans[key] = (config, planned)
        return planned

    def limits(self, config: ServerlessConfig) -> tuple[int, int]:
        kept = self._limits.get(id(config))
        if kept is not None and kept[0] is config:
            return kept[1]
        if len(self._limits) >= self.max_entries:
            self._limits.clear()
        limits = config_limits(config)
        self._limits[id(config)] = (config, limits)
        return limits
