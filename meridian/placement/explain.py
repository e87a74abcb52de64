"""Sentences that answer "why this region" and "why still pending", and the fingerprint
that tells the engine whether re-placing could give a different answer."""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from meridian.placement.filters import Rules, no_pod_slot, slots_text
from meridian.placement.format import cpu_text, memory_text
from meridian.placement.types import (
    CandidateScore,
    FilterCode,
    FilteredRegion,
    PlacementRequest,
    RegionSnapshot,
)
from meridian.settings import PlacementWeights

if TYPE_CHECKING:
    from meridian.placement.memo import SnapshotFacts

_CODE_PHRASES: dict[FilterCode, str] = {
    FilterCode.EXCLUDED: "excluded after failed attempts",
    FilterCode.CONSTRAINT: "not allowed by the task's constraints",
    FilterCode.DOWN: "down",
    FilterCode.NOT_POLLING: "unit worker not polling",
    FilterCode.DRAINING: "draining",
    FilterCode.SATURATED: "above the water-level ceiling",
    FilterCode.NO_NODES: "without Ready nodes",
    FilterCode.CAPACITY: "without a node large enough",
}


def chosen_reason(ranked: Sequence[CandidateScore], tier_count: int, pinned: str | None) -> str:
    best = ranked[0]
    what = "pinned region" if pinned else "chose"
    head = f"{what} {best.region} (score {best.total:.3f})"
    if tier_count:
        if best.tier == 0:
            head += ", first preference tier"
        elif best.tier < tier_count:
            earlier = "tier 1 has" if best.tier == 1 else f"tiers 1-{best.tier} have"
            head += f", preference tier {best.tier + 1} because {earlier} no eligible region"
        else:
            head += ", overflow: no preference tier has an eligible region"
    d = best.details
    text = f"{head}: {d['locality']}; network {d['network']}; {d['load']}"
    if "capacity" in d:
        text += f"; {d['capacity']}"
    if len(ranked) > 1:
        runner = ranked[1]
        text += f"; runner-up {runner.region} ({runner.total:.3f})"
    return text


def unplaceable_reason(
    filtered: Sequence[FilteredRegion],
    by_name: dict[str, RegionSnapshot],
    rules: Rules,
) -> str:
    if rules.pinned is not None:
        pinned = next((f for f in filtered if f.region == rules.pinned), None)
        why = pinned.reason if pinned else "no such region in the snapshot"
        return f"pinned region {rules.pinned} unavailable: {why}"
    if not filtered:
        return "no regions in the snapshot"
    short = [by_name[f.region] for f in filtered if f.code is FilterCode.CAPACITY]
    others = _summary(f.code for f in filtered if f.code is not FilterCode.CAPACITY)
    if short:
        # A region with no pod slot is short of slots, whatever its free CPU and memory.
        roomy = [s for s in short if not no_pod_slot(s)]
        full = [s for s in short if no_pod_slot(s)]
        parts = [_capacity_sentence(roomy, rules)] if roomy else []
        if full:
            parts.append(_slots_sentence(full, alone=not roomy))
        text = "; ".join(parts) + _reserved_note(short)
        return f"{text}; other regions: {others}" if others else text
    return f"no eligible region: {others}"


def _capacity_sentence(short: list[RegionSnapshot], rules: Rules) -> str:
    cpu, mem = rules.need_cpu_millis, rules.need_memory_bytes
    # max() over name-sorted input keeps the first of equals: deterministic.
    top_cpu = max(short, key=lambda s: s.largest_free_cpu_millis)
    top_mem = max(short, key=lambda s: s.largest_free_memory_bytes)
    if top_cpu.largest_free_cpu_millis < cpu:
        return (
            f"no healthy region with {cpu_text(cpu)} CPU free; largest free: "
            f"{top_cpu.name} with {cpu_text(top_cpu.largest_free_cpu_millis)}"
        )
    if top_mem.largest_free_memory_bytes < mem:
        return (
            f"no healthy region with {memory_text(mem)} memory free; largest free: "
            f"{top_mem.name} with {memory_text(top_mem.largest_free_memory_bytes)}"
        )
    return (
        f"no healthy region with {cpu_text(cpu)} CPU and {memory_text(mem)} memory free "
        f"together; most CPU: {top_cpu.name} ({cpu_text(top_cpu.largest_free_cpu_millis)} CPU, "
        f"{memory_text(top_cpu.largest_free_memory_bytes)}), most memory: {top_mem.name} "
        f"({cpu_text(top_mem.largest_free_cpu_millis)} CPU, "
        f"{memory_text(top_mem.largest_free_memory_bytes)})"
    )


def _slots_sentence(full: list[RegionSnapshot], alone: bool) -> str:
    listed = ", ".join(f"{s.name} ({slots_text(s)})" for s in full)
    if alone:
        return f"no healthy region with a pod slot free: {listed}"
    return f"no pod slot free in {listed}"


def _reserved_note(short: list[RegionSnapshot]) -> str:
    """The free room named above is the probes' less placement's own recent decisions."""
    held = [(s.name, s.reserved) for s in short if s.reserved and s.reserved.nodes_tasks]
    if not held:
        return ""
    return "".join(f"; {name}: {room.nodes_text()}" for name, room in held)


def _summary(codes: Iterable[FilterCode]) -> str:
    counts = Counter(codes)
    # Fixed order (the filter order), not count order, so the sentence is stable.
    return ", ".join(f"{counts[c]} {_CODE_PHRASES[c]}" for c in FilterCode if counts[c])


# One C-level call per region instead of a dozen attribute loads.
_FINGERPRINT_TEXT = attrgetter("name", "provider", "location", "state")
_FINGERPRINT_INTS = attrgetter(
    "healthy",
    "worker_polling",
    "draining",
    "nodes_ready",
    "largest_free_cpu_millis",
    "largest_free_memory_bytes",
    "pending_pods",
)


def _serverless_ints(snap: RegionSnapshot) -> tuple[int, ...]:
    room = snap.serverless
    if room is None:
        return (-1,)
    usage = room.usage
    if usage is None:
        return (-2,)
    # Serverless room changes the answer only through these (and the pools' ceiling).
    return (
        usage.ready,
        usage.waiting_pods,
        usage.pods,
        usage.cpu_millis,
        usage.memory_bytes,
        snap.pools.at_ceiling,
        snap.burst_advised,
    )


# Marks the slots' entry in a region's numbers (no other entry there is negative but
# the serverless markers -1 and -2).
_SLOTS_KNOWN = -3


def region_fingerprint(snap: RegionSnapshot, water: float) -> tuple[tuple[str, ...], list[int]]:
    """One region's share of `fingerprint` that does not depend on the request: its
    text, and its numbers before its path to the data."""
    ints = list(_FINGERPRINT_INTS(snap))
    ints.append(int(min(water, 10.0) * 100))
    ints.append(int(snap.api_error_rate * 1000))
    ints += _serverless_ints(snap)
    if snap.pods_allocatable:
        # Slots change the answer only through whether one is free (`no_pod_slot`); an
        # unknown count adds nothing, so decisions recorded before slots were counted
        # keep their fingerprint.
        ints += (_SLOTS_KNOWN, int(not no_pod_slot(snap)))
    return _FINGERPRINT_TEXT(snap), ints


_NO_PATH = struct.pack("<3q", -1, -1, -1)
_PATH = struct.Struct("<3q")


def fingerprint(
    request: PlacementRequest,
    ordered: Sequence[RegionSnapshot],
    facts: Sequence[SnapshotFacts],
    weights: PlacementWeights,
    water_ceiling: float,
) -> str:
    """A stable hash (same inputs, any process) of everything that can change the decision.

    Continuous inputs are quantised (water level to 1 %, RTT to 1 ms, loss and error
    rate to 0.1 %) so that metric noise alone does not wake an unplaceable task; the
    task id is left out because it cannot change where the task goes. Numbers are
    packed as int64 rather than repr()'d; each region's numbers up to its path to the
    data come packed already (`region_fingerprint`, kept per snapshot by the memo),
    and the bytes hashed are the same as packing all the numbers at once.
    """
    ds_key = request.data_source.key
    c = request.constraints
    text = [ds_key, request.resources.cpu, request.resources.memory, request.capacity]
    if c.region or c.providers or c.regions or c.preferences or request.excluded_regions:
        text.append(repr((c.region, sorted(c.providers), sorted(c.regions), c.preferences)))
        text.append(repr(sorted(request.excluded_regions)))
    chunks: list[bytes] = []
    for snap, fact in zip(ordered, facts, strict=True):
        text += fact.fingerprint_text
        chunks.append(fact.fingerprint_ints)
        path = snap.network.get(ds_key)
        if path is None:
            chunks.append(_NO_PATH)
        else:
            chunks.append(
                _PATH.pack(int(min(path.rtt_ms, 1e9)), int(path.loss * 1000), path.measured)
            )
    digest = hashlib.blake2b("\x1f".join(text).encode(), digest_size=12)
    digest.update(
        struct.pack("<4d", weights.locality, weights.network, weights.load, water_ceiling)
    )
    digest.update(b"".join(chunks))
    return digest.hexdigest()
