"""Water level and bin packing: how full the region is and how many nodes demand needs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from meridian.regions.load import water_level
from meridian.scaling.models import NodeObservation, Request


@dataclass(frozen=True)
class Capacity:
    cpu: int
    mem: int

    def fits(self, request: Request) -> bool:
        return request.cpu <= self.cpu and request.mem <= self.mem

    def minus(self, request: Request) -> Capacity:
        return Capacity(self.cpu - request.cpu, self.mem - request.mem)


def schedulable(node: NodeObservation) -> bool:
    """Counts toward the water level: Ready, no pressure, not cordoned (as
    `meridian.regions.load.node_is_schedulable` says of a raw node)."""
    return node.healthy and not node.unschedulable


@dataclass(frozen=True)
class Load:
    cpu_requested: int
    mem_requested: int
    cpu_allocatable: int
    mem_allocatable: int

    @property
    def level(self) -> float:
        return water_level(
            self.cpu_requested, self.mem_requested, self.cpu_allocatable, self.mem_allocatable
        )


def load_of(nodes: Iterable[NodeObservation]) -> Load:
    counted = [n for n in nodes if schedulable(n)]
    return Load(
        cpu_requested=sum(n.cpu_requested for n in counted),
        mem_requested=sum(n.mem_requested for n in counted),
        cpu_allocatable=sum(n.cpu_allocatable for n in counted),
        mem_allocatable=sum(n.mem_allocatable for n in counted),
    )


def nodes_for_target(load: Load, target: float, extra: Capacity, node: Capacity) -> int:
    """New nodes of size `node` that bring the water level down to `target`, counting
    `extra` capacity already on its way."""
    needed = 0
    for requested, allocatable, size in (
        (load.cpu_requested, load.cpu_allocatable + extra.cpu, node.cpu),
        (load.mem_requested, load.mem_allocatable + extra.mem, node.mem),
    ):
        if size <= 0:
            continue
        shortfall = requested / target - allocatable
        needed = max(needed, math.ceil(shortfall / size - 1e-9))
    return max(0, needed)


@dataclass(frozen=True)
class Packing:
    new_nodes: int
    # Requests larger than an empty node: no amount of this pool's nodes helps them.
    unplaceable: list[str]
    # Free space left in every bin, the opened ones included (for a second pass).
    bins: list[Capacity]


def pack(requests: Iterable[Request], free: list[Capacity], node: Capacity) -> Packing:
    """First-fit decreasing into `free` bins, opening new `node`-sized bins as needed.
    Deterministic: requests sorted by size, then id."""
    bins = list(free)
    opened = 0
    unplaceable: list[str] = []
    for request in sorted(requests, key=lambda r: (-_share(r, node), r.id)):
        if not node.fits(request):
            unplaceable.append(request.id)
            continue
        for index, space in enumerate(bins):
            if space.fits(request):
                bins[index] = space.minus(request)
                break
        else:
            bins.append(node.minus(request))
            opened += 1
    return Packing(new_nodes=opened, unplaceable=sorted(unplaceable), bins=bins)


def _share(request: Request, node: Capacity) -> float:
    return max(
        request.cpu / node.cpu if node.cpu else 0.0,
        request.mem / node.mem if node.mem else 0.0,
    )
