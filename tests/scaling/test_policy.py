"""Scenario tests of the scaling policy (pure: no clock, no I/O)."""

from __future__ import annotations

from typing import Any

from meridian.scaling import (
    Cause,
    DecisionKind,
    PendingDemand,
    PolicyInput,
    PolicyResult,
    RegionObservation,
    ScalingState,
    decide,
)
from meridian.settings import ScalingSettings
from tests.scaling.helpers import node, pool, request

SETTINGS = ScalingSettings(
    tick_seconds=10,
    high_water=0.8,
    low_water=0.4,
    scale_up_cooldown_seconds=60,
    scale_down_window_seconds=600,
    scale_down_cooldown_seconds=300,
)


def run(
    at: float,
    nodes: list[Any],
    pools: list[Any],
    state: ScalingState | None = None,
    demand: PendingDemand | None = None,
    mode: str = "auto",
) -> PolicyResult:
    return decide(
        PolicyInput.model_validate(
            {
                "observation": RegionObservation(
                    region="aws-us-east-1", at=at, pools=pools, nodes=nodes
                ),
                "demand": demand or PendingDemand(),
                "mode": mode,
                "state": state or ScalingState(),
                "settings": SETTINGS,
            }
        )
    )


def kinds(result: PolicyResult) -> list[tuple[str, str]]:
    return [(d.kind.value, d.target) for d in result.decisions]


def test_water_level_counts_only_ready_schedulable_nodes() -> None:
    nodes = [
        node("a", 0.5),
        node("b", 0.9, ready=False),
        node("c", 0.9, unschedulable=True),
        node("d", 0.9, conditions=["DiskPressure"]),
    ]
    result = run(0, nodes, [pool(desired=4)], mode="off")
    assert result.water_level == 0.5
    assert result.decisions == []


def test_pending_demand_grows_by_the_nodes_it_needs_then_holds_for_cooldown() -> None:
    nodes = [node(f"n{i}", 0.7) for i in range(3)]
    demand = PendingDemand(pending_pods=[request(f"p{i}", 6) for i in range(3)])
    first = run(100, nodes, [pool(desired=3, max=5)], demand=demand)
    [up] = first.decisions
    assert (up.kind, up.cause, up.desired_before, up.desired_after) == (
        DecisionKind.SCALE_UP,
        Cause.PENDING_DEMAND,
        3,
        5,
    )  # 3 nodes needed, capped at max 5
    assert "capped at max 5" in up.reason
    assert up.demand_cpu == 18000 and up.water_level == 0.7
    # The pool is now at 5 desired with 3 Ready: 2 nodes on their way take 2 pods, the
    # third still needs a node, but the cooldown holds it back.
    second = run(110, nodes, [pool(desired=5, max=6)], state=first.state, demand=demand)
    assert [(d.kind, d.cause) for d in second.decisions] == [(DecisionKind.NONE, Cause.HOLD)]
    third = run(160, nodes, [pool(desired=5, max=6)], state=second.state, demand=demand)
    assert [(d.kind, d.desired_after) for d in third.decisions] == [(DecisionKind.SCALE_UP, 6)]


def test_demand_covered_by_nodes_on_their_way_does_not_grow_again() -> None:
    nodes = [node("n0", 0.9), node("n1", 0.9)]
    demand = PendingDemand(pending_pods=[request("p", 4)])
    result = run(0, nodes, [pool(desired=3)], demand=demand)
    [hold] = result.decisions
    assert hold.kind == DecisionKind.NONE and "on its way" in hold.reason


def test_waiting_tasks_use_free_space_before_new_nodes() -> None:
    nodes = [node("n0", 0.25), node("n1", 0.25)]
    fits = PendingDemand(waiting_tasks=[request("t1", 5), request("t2", 5)])
    assert run(0, nodes, [pool(desired=2)], demand=fits).decisions == []
    more = PendingDemand(waiting_tasks=[request(f"t{i}", 5) for i in range(4)])
    [up] = run(0, nodes, [pool(desired=2)], demand=more).decisions
    assert (up.kind, up.desired_after) == (DecisionKind.SCALE_UP, 4)


def test_high_water_must_persist_one_tick() -> None:
    nodes = [node(f"n{i}", 0.95) for i in range(4)]
    first = run(0, nodes, [pool(desired=4)])
    assert first.decisions == []
    second = run(10, nodes, [pool(desired=4)], state=first.state)
    [up] = second.decisions
    # 4 nodes at 95 % CPU -> 3.8 nodes' worth; at the 60 % target that needs 7 nodes.
    assert (up.kind, up.cause, up.desired_after) == (DecisionKind.SCALE_UP, Cause.HIGH_WATER, 7)
    dip = run(20, [node(f"n{i}", 0.5) for i in range(4)], [pool(desired=4)], state=first.state)
    assert dip.state.above_high_since is None


def test_low_water_for_the_window_removes_emptiest_task_free_nodes_not_below_min() -> None:
    nodes = [node("a", 0.05), node("b", 0.3, tasks=["t1"]), node("c", 0.1), node("d", 0.2)]
    pools = [pool(desired=4, min=2)]
    state = run(0, nodes, pools).state
    assert run(590, nodes, pools, state=state).decisions == []
    result = run(600, nodes, pools, state=state)
    [down] = result.decisions
    assert (down.kind, down.nodes, down.desired_after) == (DecisionKind.SCALE_DOWN, ["a", "c"], 2)
    assert "b" not in down.nodes


def test_busy_nodes_are_emptied_before_removal() -> None:
    nodes = [
        node("a", 0.1, tasks=["t1"]),
        node("b", 0.2, tasks=["t2"]),
        node("c", 0.2, tasks=["t3"]),
    ]
    pools = [pool(desired=3, min=1)]
    state = run(0, nodes, pools).state
    step = run(600, nodes, pools, state=state)
    assert kinds(step) == [("cordon", "a"), ("move_tasks", "a")]
    move = step.decisions[1]
    assert move.task_ids == ["t1"] and move.move_reason == "scale-down"
    # Still busy: nothing is removed; the task moved on the next tick.
    busy = [node("a", 0.1, tasks=["t1"], unschedulable=True), nodes[1], nodes[2]]
    waiting = run(610, busy, pools, state=step.state)
    assert waiting.decisions == []
    empty = [
        node("a", 0.0, unschedulable=True),
        node("b", 0.25, tasks=["t2"]),
        node("c", 0.25, tasks=["t3", "t1"]),
    ]
    done = run(620, empty, pools, state=waiting.state)
    [down] = done.decisions
    assert (down.kind, down.nodes, down.desired_after) == (DecisionKind.SCALE_DOWN, ["a"], 2)


def test_pending_removal_is_cancelled_when_demand_returns() -> None:
    nodes = [node("a", 0.1, tasks=["t1"]), node("b", 0.2, tasks=["t2"])]
    pools = [pool(desired=2, min=1)]
    state = run(0, nodes, pools).state
    step = run(600, nodes, pools, state=state)
    assert kinds(step)[0] == ("cordon", "a")
    demand = PendingDemand(pending_pods=[request("p", 7)])
    busy = [node("a", 0.1, tasks=["t1"], unschedulable=True), nodes[1]]
    cancel = run(610, busy, [pool(desired=2, max=4)], state=step.state, demand=demand)
    assert ("uncordon", "a") in kinds(cancel)
    assert cancel.state.cordoned == {}


def test_sick_node_is_cordoned_drained_and_uncordoned_after_recovery() -> None:
    pools = [pool(desired=2)]
    state = run(0, [node("a", 0.3), node("b", 0.3)], pools).state
    sick = run(10, [node("a", 0.3, ready=False, tasks=["t1"]), node("b", 0.3)], pools, state=state)
    assert kinds(sick) == [("cordon", "a"), ("drain", "a")]
    assert sick.decisions[1].task_ids == ["t1"]
    cordoned = node("a", 0.0, unschedulable=True)
    assert run(20, [cordoned, node("b", 0.3)], pools, state=sick.state).decisions == []
    healed = sick.state
    for at in (20, 30, 40, 50):
        result = run(at, [cordoned, node("b", 0.3)], pools, state=healed)
        healed = result.state
    assert kinds(result) == [("uncordon", "a")]


def test_pressure_counts_as_sick_and_foreign_cordons_are_left_alone() -> None:
    pools = [pool(desired=2)]
    result = run(
        0,
        [node("a", 0.3, conditions=["MemoryPressure"]), node("b", 0.3, unschedulable=True)],
        pools,
    )
    assert kinds(result) == [("cordon", "a"), ("drain", "a")]
    later = result.state
    for at in (10, 20, 30, 40):
        later = run(
            at,
            [node("a", 0.3, unschedulable=True), node("b", 0.3, unschedulable=True)],
            pools,
            state=later,
        ).state
    assert "b" not in later.cordoned


def test_node_never_ready_is_given_up_after_fifteen_minutes() -> None:
    pools = [pool(desired=3, min=1)]
    nodes = [node("a", 0.3), node("b", 0.3), node("new", ready=False, created_at=0)]
    assert run(899, nodes, pools).decisions == []
    [give_up] = run(900, nodes, pools).decisions
    assert (give_up.kind, give_up.cause, give_up.nodes, give_up.desired_after) == (
        DecisionKind.SCALE_DOWN,
        Cause.GIVE_UP,
        ["new"],
        2,
    )
    [at_min] = run(900, nodes, [pool(desired=3, min=3)]).decisions
    assert at_min.kind == DecisionKind.NONE


def test_autoscaler_owned_pool_is_never_resized() -> None:
    nodes = [node(f"n{i}", 0.95) for i in range(2)]
    demand = PendingDemand(pending_pods=[request("p", 6)])
    result = run(0, nodes, [pool(desired=2, autoscaler_enabled=True)], demand=demand)
    assert [d.kind for d in result.decisions] == [DecisionKind.NONE]
    assert "autoscaler" in result.decisions[0].reason


def test_advise_decides_like_auto_and_off_decides_nothing() -> None:
    nodes = [node("a", 0.3, ready=False, tasks=["t"]), node("b", 0.3)]
    state = run(0, [node("a", 0.3), node("b", 0.3)], [pool(desired=2)]).state
    auto = run(10, nodes, [pool(desired=2)], state=state)
    advise = run(10, nodes, [pool(desired=2)], state=state, mode="advise")
    assert kinds(auto) == kinds(advise)
    assert all(d.applies for d in auto.decisions)
    assert not any(d.applies for d in advise.decisions)
    assert run(10, nodes, [pool(desired=2)], state=state, mode="off").decisions == []


def test_decide_is_deterministic_and_does_not_mutate_its_input() -> None:
    nodes = [node("b", 0.05), node("a", 0.05), node("c", 0.05)]
    state = run(0, nodes, [pool(desired=3)]).state
    before = state.model_copy(deep=True)
    first = run(700, nodes, [pool(desired=3)], state=state)
    second = run(700, list(reversed(nodes)), [pool(desired=3)], state=state)
    assert state == before
    assert first.model_dump() == second.model_dump()
