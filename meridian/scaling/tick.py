"""One evaluation of the policy: the input, a working copy of the state, and helpers the
health and resize rules share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meridian.scaling.models import (
    Cause,
    Decision,
    DecisionKind,
    NodeObservation,
    PolicyInput,
    PoolObservation,
    ScalingState,
)
from meridian.scaling.water import Capacity, Load, load_of


@dataclass
class Tick:
    inp: PolicyInput
    state: ScalingState
    decisions: list[Decision] = field(default_factory=list)

    @property
    def at(self) -> float:
        return self.inp.observation.at

    @property
    def load(self) -> Load:
        return load_of(self.inp.observation.nodes)

    @property
    def water(self) -> float:
        return self.load.level

    @property
    def target(self) -> float:
        settings = self.inp.settings
        tuned = self.inp.tuning.target_water
        return tuned if tuned is not None else (settings.low_water + settings.high_water) / 2

    def pool(self, name: str) -> PoolObservation | None:
        for pool in self.inp.observation.pools:
            if pool.name == name:
                return pool
        return None

    def nodes_of(self, pool: str) -> list[NodeObservation]:
        return [n for n in self.inp.observation.nodes if n.pool == pool]

    def node_size(self, pool: PoolObservation) -> Capacity | None:
        if pool.node_cpu and pool.node_mem:
            return Capacity(pool.node_cpu, pool.node_mem)
        sizes = [(n.cpu_allocatable, n.mem_allocatable) for n in self.nodes_of(pool.name)]
        sizes = [s for s in sizes if s[0] and s[1]]
        if not sizes:
            return None
        cpu, mem = max(sizes)
        return Capacity(cpu, mem)

    def upcoming(self, pool: PoolObservation) -> int:
        """Nodes the pool's target already asks for that are not serving yet: not
        registered, or registered but still booting (never Ready so far)."""
        ever_ready = set(self.state.ever_ready)
        serving = [n for n in self.nodes_of(pool.name) if n.ready or n.name in ever_ready]
        return max(0, pool.desired - len(serving))

    def add(
        self, kind: DecisionKind, target: str, cause: Cause, reason: str, **numbers: Any
    ) -> Decision:
        settings = self.inp.settings
        decision = Decision(
            kind=kind,
            target=target,
            cause=cause,
            reason=reason,
            at=self.at,
            mode=self.inp.mode,
            water_level=round(self.water, 4),
            high_water=settings.high_water,
            low_water=settings.low_water,
            demand_cpu=self.inp.demand.cpu,
            demand_mem=self.inp.demand.mem,
            **numbers,
        )
        self.decisions.append(decision)
        return decision
