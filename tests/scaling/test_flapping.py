"""Property: whatever the load does, the policy keeps its promises.

A tiny in-test world applies the decisions (auto mode) the way the executor would:
scale_up adds Ready nodes, scale_down removes the named nodes, cordon/uncordon flip
schedulability, move_tasks takes the tasks off the node before the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.scaling import (
    Cause,
    Decision,
    DecisionKind,
    NodeObservation,
    PendingDemand,
    PolicyInput,
    PoolObservation,
    RegionObservation,
    ScalingState,
    decide,
)
from meridian.settings import ScalingSettings
from tests.scaling.helpers import CPU, MEM, request

SETTINGS = ScalingSettings()
MIN, MAX = 2, 8


@dataclass
class World:
    nodes: dict[str, set[str]] = field(default_factory=dict)  # name -> task ids
    cordoned: set[str] = field(default_factory=set)
    desired: int = 4
    serial: int = 0
    task_serial: int = 0

    def __post_init__(self) -> None:
        for _ in range(self.desired):
            self.add_node()

    def add_node(self) -> None:
        self.nodes[f"n{self.serial:03d}"] = set()
        self.serial += 1

    def observe(self, at: float, level: float, busy: list[bool]) -> RegionObservation:
        nodes = []
        for index, (name, tasks) in enumerate(sorted(self.nodes.items())):
            if busy[index % len(busy)] and not tasks and name not in self.cordoned:
                self.task_serial += 1
                tasks.add(f"t{self.task_serial}")
            nodes.append(
                NodeObservation(
                    name=name,
                    pool="general",
                    ready=True,
                    unschedulable=name in self.cordoned,
                    cpu_allocatable=CPU,
                    mem_allocatable=MEM,
                    cpu_requested=int(CPU * level),
                    mem_requested=int(MEM * level / 2),
                    task_ids=sorted(tasks),
                )
            )
        pool = PoolObservation(
            name="general",
            min=MIN,
            desired=self.desired,
            max=MAX,
            current=len(self.nodes),
            ready=len(self.nodes),
            node_cpu=CPU,
            node_mem=MEM,
        )
        return RegionObservation(region="r", at=at, pools=[pool], nodes=nodes)

    def apply(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if d.kind == DecisionKind.SCALE_UP:
                assert d.desired_after is not None
                while self.desired < d.desired_after:
                    self.desired += 1
                    self.add_node()
            elif d.kind == DecisionKind.SCALE_DOWN:
                for name in d.nodes:
                    del self.nodes[name]
                    self.cordoned.discard(name)
                self.desired -= len(d.nodes)
            elif d.kind == DecisionKind.CORDON:
                self.cordoned.add(d.target)
            elif d.kind == DecisionKind.UNCORDON:
                self.cordoned.discard(d.target)
            elif d.kind in (DecisionKind.MOVE_TASKS, DecisionKind.DRAIN):
                self.nodes[d.target].clear()


def cooldown(kind: DecisionKind) -> float:
    if kind == DecisionKind.SCALE_UP:
        return SETTINGS.scale_up_cooldown_seconds
    return SETTINGS.scale_down_cooldown_seconds


# Segments of steady load, so that runs long enough for the scale-down window occur.
segments = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.05, 0.2, 0.35, 0.5, 0.7, 0.85, 0.95, 1.0]),
        st.integers(0, 3),  # pending pods of 6 CPU that do not fit
        st.integers(1, 90),  # ticks the segment lasts
    ),
    min_size=1,
    max_size=8,
)


def check_run(sequence: list[tuple[float, int]], busy: list[bool]) -> list[Decision]:
    world, state = World(), ScalingState()
    actions: list[Decision] = []
    for index, (level, pending) in enumerate(sequence):
        at = 1000.0 + index * SETTINGS.tick_seconds
        observation = world.observe(at, level, busy)
        tasks_on = {n.name: n.task_ids for n in observation.nodes}
        demand = PendingDemand(pending_pods=[request(f"p{i}", 6) for i in range(pending)])
        result = decide(
            PolicyInput(
                observation=observation, demand=demand, mode="auto", state=state, settings=SETTINGS
            )
        )
        scale = [d for d in result.decisions if d.is_scale_action and d.cause != Cause.GIVE_UP]
        assert len(scale) <= 1, "one scale action per tick"
        for d in scale:
            assert d.desired_after is not None
            assert MIN <= d.desired_after <= MAX
            if actions:
                gap = d.at - actions[-1].at
                assert gap >= cooldown(d.kind), (actions[-1], d)
            actions.append(d)
        for d in result.decisions:
            if d.kind == DecisionKind.SCALE_DOWN:
                assert all(not tasks_on[name] for name in d.nodes), "removed a busy node"
        world.apply(result.decisions)
        state = result.state
        assert MIN <= world.desired <= MAX
    return actions


@settings(max_examples=150, deadline=None)
@given(plan=segments, busy=st.lists(st.booleans(), min_size=1, max_size=5))
def test_random_load_keeps_bounds_cooldowns_and_busy_nodes(
    plan: list[tuple[float, int, int]], busy: list[bool]
) -> None:
    sequence = [(level, pending) for level, pending, ticks in plan for _ in range(ticks)]
    check_run(sequence, busy)


@settings(max_examples=50, deadline=None)
@given(
    low=st.sampled_from([0.0, 0.1, 0.3]),
    high=st.sampled_from([0.85, 0.95, 1.0]),
    period=st.integers(1, 6),
    busy=st.lists(st.booleans(), min_size=1, max_size=3),
)
def test_flapping_load_scales_at_most_once_per_cooldown(
    low: float, high: float, period: int, busy: list[bool]
) -> None:
    ticks = 60  # ten minutes
    sequence = [((high if (i // period) % 2 == 0 else low), 0) for i in range(ticks)]
    actions = check_run(sequence, busy)
    window = ticks * SETTINGS.tick_seconds
    assert len(actions) <= window / SETTINGS.scale_up_cooldown_seconds + 1
    # Load never stays below the low mark for the scale-down window, so nothing shrinks.
    assert all(a.kind == DecisionKind.SCALE_UP for a in actions)
