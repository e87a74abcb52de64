"""Grow or burst: the scaling policy's choice for tasks waiting in a region that declares
serverless capacity (pure: no clock, no I/O). One table, one row per branch."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.regions.load import ServerlessUsage
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
from meridian.scaling.models import BurstInput
from meridian.serverless.models import ServerlessConfig
from meridian.settings import ScalingSettings
from tests.scaling.helpers import node, pool, request

REGION = "aws-us-east-1"
SETTINGS = ScalingSettings(
    tick_seconds=10,
    high_water=0.8,
    low_water=0.4,
    scale_up_cooldown_seconds=60,
    scale_down_window_seconds=600,
    scale_down_cooldown_seconds=300,
)
FARGATE = ServerlessConfig.model_validate({"kind": "fargate"})
READY = ServerlessUsage(nodes=1, ready=True, pods=10, cpu_millis=10_000)
# Fargate bills 2 vCPU / 4 GiB (+256 MiB of its own) as 2 vCPU / 5 GiB.
TASK_COST = 2 * 0.04048 + 5 * 0.004445


def auto_task(name: str) -> Any:
    return request(name, 2, 4).model_copy(update={"burstable": True})


def run(
    *,
    max_nodes: int = 10,
    boot: float | None = 300.0,
    price: float | None = 0.4,
    serverless: bool = True,
    usage: ServerlessUsage | None = READY,
    tasks: list[Any] | None = None,
    pods: list[Any] | None = None,
    mode: str = "auto",
    used: float = 0.95,
    state: ScalingState | None = None,
) -> PolicyResult:
    """Two 8-CPU nodes, nearly full (2 CPU tasks do not fit), a pool of up to `max_nodes`
    nodes booting in `boot` seconds at `price` an hour, and two waiting `auto` tasks."""
    burst = (
        BurstInput(config=FARGATE, usage=usage, max_wait_for_nodes_seconds=60)
        if serverless
        else None
    )
    return decide(
        PolicyInput.model_validate(
            {
                "observation": RegionObservation(
                    region=REGION,
                    at=1000.0,
                    pools=[pool(desired=2, max=max_nodes, boot_seconds=boot, price_per_hour=price)],
                    nodes=[node("a", used), node("b", used)],
                ),
                "demand": PendingDemand(
                    waiting_tasks=[auto_task("task/t1"), auto_task("task/t2")]
                    if tasks is None
                    else tasks,
                    pending_pods=pods or [],
                ),
                "mode": mode,
                "state": state or ScalingState(),
                "settings": SETTINGS,
                "burst": burst,
            }
        )
    )


def actions(result: PolicyResult) -> list[str]:
    return [d.kind.value for d in result.decisions]


@pytest.mark.parametrize(
    "case, given, expected, why",
    [
        ("ceiling reached", {"max_nodes": 2}, ["burst"], "every pool is at its ceiling"),
        (
            "boot longer than worth waiting",
            {"boot": 300.0},
            ["burst"],
            "a new general node takes 300s to boot, longer than the 60s a task waits",
        ),
        (
            "cheap and fast nodes",
            {"boot": 30.0},
            ["scale_up"],
            "not bursting: a new general node boots in 30s, within the 60s",
        ),
        ("boot time not stated", {"boot": None}, ["scale_up"], "boot time is not stated"),
        ("no serverless declared", {"serverless": False}, ["scale_up"], "2 waiting task(s)"),
        (
            "serverless quota exhausted",
            {"usage": ServerlessUsage(nodes=1, ready=True, waiting_pods=3)},
            ["scale_up"],
            "not bursting: serverless (fargate) quota exhausted: 3 burst pod(s) waiting",
        ),
        (
            "quota exhausted at the ceiling: wait",
            {"max_nodes": 2, "usage": ServerlessUsage(nodes=1, ready=True, waiting_pods=3)},
            ["none"],
            "every pool is at max",
        ),
        (
            "serverless quota short",
            {"usage": ServerlessUsage(nodes=1, ready=True, pods=999)},
            ["scale_up"],
            "quota short: 2 pod(s), 4 CPU, 10Gi needed",
        ),
        (
            "virtual node NotReady",
            {"usage": ServerlessUsage(nodes=1, ready=False)},
            ["scale_up"],
            "virtual node NotReady",
        ),
        (
            "nodes tasks never burst",
            {"max_nodes": 2, "tasks": [request("task/n1", 2, 4)]},
            ["none"],
            "every pool is at max",
        ),
    ],
)
def test_grow_or_burst(case: str, given: dict[str, Any], expected: list[str], why: str) -> None:
    result = run(**given)
    assert actions(result) == expected, (case, result.decisions)
    decision = result.decisions[0]
    assert why in decision.reason, (case, decision.reason)
    bursting = expected == ["burst"]
    assert (result.state.burst_since is not None) is bursting
    if bursting:
        assert decision.target == REGION and decision.cause is Cause.PENDING_DEMAND
        assert decision.applies
        assert result.state.burst_reason is not None and why in result.state.burst_reason


def test_a_burst_records_every_number_it_was_weighed_with() -> None:
    (decision,) = run(boot=300.0, price=0.4).decisions
    comparison = decision.comparison
    assert comparison is not None and comparison.choice == "burst"
    assert (comparison.waiting_tasks, comparison.burstable_tasks, comparison.pending_pods) == (
        2,
        2,
        0,
    )
    assert comparison.max_wait_for_nodes_seconds == 60
    grow = comparison.grow
    # Both 2-CPU tasks fit one new 8-CPU node.
    assert (grow.pool, grow.nodes_needed, grow.boot_seconds) == ("general", 1, 300.0)
    assert (grow.price_per_hour, grow.cost_per_hour, grow.ceiling_reached) == (0.4, 0.4, False)
    burst = comparison.burst
    assert burst is not None
    assert (burst.kind, burst.tasks, burst.cold_start_seconds) == ("fargate", 2, 60.0)
    assert (burst.headroom_pods, burst.headroom_cpu_millis) == (990, 990_000)
    assert (burst.billed_cpu_millis, burst.billed_memory_bytes) == (4000, 10 * 1024**3)
    assert burst.cost_per_hour == pytest.approx(2 * TASK_COST)
    assert burst.currency == "USD" and burst.unavailable is None
    assert (
        "waiting demand 2 task(s) (2 may burst), 0 pending pod(s); grow general: 1 node(s), "
        "boot 300s, $0.4000/h; burst fargate: headroom 990 pods, 990 CPU" in decision.reason
    )
    assert f"at ${2 * TASK_COST:.4f}/h" in decision.reason


def test_growing_records_the_burst_it_turned_down() -> None:
    (decision,) = run(boot=30.0).decisions
    assert decision.kind is DecisionKind.SCALE_UP
    assert decision.comparison is not None and decision.comparison.choice == "grow"
    assert decision.comparison.burst is not None
    assert decision.desired_after == 3


def test_advise_records_the_burst_and_it_applies_to_nothing() -> None:
    result = run(max_nodes=2, mode="advise")
    (decision,) = result.decisions
    assert decision.kind is DecisionKind.BURST and decision.mode.value == "advise"
    assert not decision.applies
    # The state is that of `auto` (the central activity publishes nothing in advise).
    assert result.state.burst_since == 1000.0
    off = run(max_nodes=2, mode="off", state=result.state)
    assert off.decisions == [] and off.state.burst_since is None


def test_pending_pods_still_grow_the_pool_while_the_tasks_burst() -> None:
    result = run(boot=300.0, pods=[request("ns/web-1", 4, 4)])
    assert actions(result) == ["burst", "scale_up"]
    grow = result.decisions[1]
    assert "1 pending pod(s) and 0 waiting task(s) need 1 node(s)" in grow.reason


def test_the_advisory_stands_while_nodes_are_full_and_lapses_once_they_have_room() -> None:
    standing = run(max_nodes=2).state
    # No demand left (the tasks burst), nodes still full: it stands, nothing recorded.
    full = run(max_nodes=2, tasks=[], state=standing)
    assert full.decisions == [] and full.state.burst_since == 1000.0
    # Below the high mark, but no node could take a 2-CPU task (1.76 CPU free each): the
    # water level alone does not make room, so it still stands.
    below = run(max_nodes=2, tasks=[], used=0.78, state=standing)
    assert below.water_level < SETTINGS.high_water
    assert below.decisions == [] and below.state.burst_since == 1000.0
    # A node with room for such a task again: it lapses, once, and says so.
    roomy = run(max_nodes=2, tasks=[], used=0.5, state=standing)
    (decision,) = roomy.decisions
    assert decision.kind is DecisionKind.NONE and decision.cause is Cause.ROOM
    assert "the pools have room again: a has 4 CPU and 24Gi free" in decision.reason
    assert "tasks running on serverless pods stay there" in decision.reason
    assert roomy.state.burst_since is None and roomy.state.burst_reason is None
    # Growing winning a later comparison also ends it.
    grows = run(boot=30.0, state=standing)
    assert actions(grows) == ["none", "scale_up"]
    assert "burst advisory lapses (growing wins: a new general node boots in 30s" in (
        grows.decisions[0].reason
    )
