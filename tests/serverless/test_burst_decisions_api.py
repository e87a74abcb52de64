"""A burst decision of the region control loop, end to end without Temporal: the central
activity decides it (real policy, real store), counts it, publishes the advisory, and
the API shows the decision with its numbers, the advisory on the region, and a task's
placement naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.scaling import ScalingCentralActivities
from meridian.observability import metrics as m
from meridian.regions.details import RegionDetails
from meridian.regions.load import RegionLoad, ServerlessUsage
from meridian.regions.models import RegionHealth
from meridian.scaling import (
    NodeObservation,
    PoolObservation,
    RegionObservation,
    ScalingMode,
    ScalingState,
)
from meridian.scaling.contracts import DecideScalingInput, ObserveRegionResult
from meridian.scaling.loop import ScalingConfig, WaitingDemand
from meridian.settings import BurstSettings, Settings
from meridian.tasks.spec import TaskSpec, TaskStatus
from tests.api.stage import staged
from tests.integration.harness import task_body
from tests.observability.support import sample

AWS = "aws-us-east-1"  # dev.yaml: fargate; pool general of 8-CPU nodes, $0.384/h, boot 90 s
T0 = datetime(2030, 1, 1, tzinfo=UTC)
GIB = 1 << 30
READY = ServerlessUsage(nodes=1, ready=True)
COUNTER = "meridian_scaling_decisions_total"
BURST_SERIES = {"region": AWS, "action": "burst", "cause": "pending-demand"}


def full_node(name: str) -> NodeObservation:
    return NodeObservation(
        name=name,
        pool="general",
        ready=True,
        cpu_allocatable=8000,
        mem_allocatable=32 * GIB,
        cpu_requested=7800,
        mem_requested=30 * GIB,
    )


def observed(max_nodes: int) -> ObserveRegionResult:
    # The provider says the pool may have `max_nodes`; three are there, all full.
    pool = PoolObservation(name="general", min=1, desired=3, max=max_nodes, current=3, ready=3)
    observation = RegionObservation(
        region=AWS, at=0.0, pools=[pool], nodes=[full_node(f"n{i}") for i in range(3)]
    )
    return ObserveRegionResult(observation=observation, serverless=READY)


async def test_a_burst_decision_is_counted_published_and_shown_with_its_numbers(
    tmp_path: Path,
) -> None:
    async with staged(tmp_path) as stage:
        store = stage.store
        # The region as the monitor last saw it: up, nodes full, its virtual node Ready.
        store.record_region_state(
            AWS,
            RegionHealth.UP,
            "ok",
            T0,
            RegionDetails(
                worker_polling=True,
                load=RegionLoad(
                    nodes_total=3,
                    nodes_ready=3,
                    cpu_allocatable_millis=24000,
                    cpu_requested_millis=23400,
                    memory_allocatable_bytes=96 * GIB,
                    memory_requested_bytes=90 * GIB,
                    serverless=READY,
                ),
            ),
        )
        # A task placement turned away from the region for room.
        spec = TaskSpec.model_validate(task_body(placement={"region": AWS}))
        store.create_task("waits", spec, status=TaskStatus.SCHEDULING)
        filtered = [{"region": AWS, "code": "capacity", "reason": "needs 500m CPU"}]
        store.record_placement("waits", 1, 0, {"chosen": None, "filtered": filtered}, T0)

        regions = stage.service.regions
        config = ScalingConfig(
            Settings().scaling, regions, burst=BurstSettings(max_wait_for_nodes_seconds=120)
        )
        acts = ScalingCentralActivities(store, config, WaitingDemand(store))

        # In `advise` the burst is recorded, not applied, and placement does not see it.
        store.set_scaling_mode(AWS, ScalingMode.ADVISE)
        advised = acts.decide_scaling(
            DecideScalingInput(region=AWS, at=T0, observed=observed(3), state=ScalingState())
        )
        assert [(d.kind.value, d.applies) for d in advised.decisions] == [("burst", False)]
        (item,) = (await stage.http.get(f"/v1/regions/{AWS}/scaling")).json()["items"]
        assert (item["kind"], item["applied"], item["numbers"]["mode"]) == (
            "burst",
            False,
            "advise",
        )
        # No advisory on the region: placement reads nothing new.
        region = (await stage.http.get(f"/v1/regions/{AWS}")).json()
        assert region["burst_advised"] is False

        store.set_scaling_mode(AWS, ScalingMode.AUTO)
        before = sample(m.CENTRAL, COUNTER, **BURST_SERIES)
        # A later tick (a decision's id is its region, time, action and target).
        at = T0 + timedelta(seconds=10)
        # The regions file allows 8 nodes, boot 90 s (within the 120 s wait): placement
        # alone would wait for nodes. The provider's bound is 3: no node is coming.
        result = acts.decide_scaling(
            DecideScalingInput(region=AWS, at=at, observed=observed(3), state=ScalingState())
        )
        assert [d.kind.value for d in result.decisions] == ["burst"]
        after = sample(m.CENTRAL, COUNTER, **BURST_SERIES)
        assert after == before + 1

        answer = (await stage.http.get(f"/v1/regions/{AWS}/scaling")).json()
        item = answer["items"][0]  # newest first
        assert (item["kind"], item["target"], item["applied"]) == ("burst", AWS, True)
        assert item["reason"].startswith("burst 1 waiting task(s): every pool is at its ceiling")
        comparison = item["numbers"]["comparison"]
        assert comparison["choice"] == "burst"
        assert (comparison["waiting_tasks"], comparison["burstable_tasks"]) == (1, 1)
        assert comparison["grow"]["ceiling_reached"] is True
        burst = comparison["burst"]
        assert (burst["kind"], burst["tasks"], burst["currency"]) == ("fargate", 1, "USD")
        assert burst["headroom_pods"] == 200 and burst["cold_start_seconds"] == 8
        # 500m / 256 Mi (+256 MiB of Fargate's own) is billed as 0.5 vCPU / 1 GiB.
        assert (burst["billed_cpu_millis"], burst["billed_memory_bytes"]) == (500, GIB)
        assert burst["cost_per_hour"] == round(0.5 * 0.04048 + 1 * 0.004445, 6)

        region = (await stage.http.get(f"/v1/regions/{AWS}")).json()
        assert region["burst_advised"] is True
        assert region["burst_reason"] == "every pool is at its ceiling"

        # A task placed while the advisory stands bursts, and its placement says why.
        dry = await stage.http.post(
            "/v1/placement:dry-run", json=task_body(placement={"region": AWS})
        )
        table = dry.json()
        assert table["chosen"] == AWS, table
        assert (
            "the region control loop advises bursting: every pool is at its ceiling"
            in table["reason"]
        )

        # The provider lets the pool grow again (boot within the wait): growing wins, the
        # advisory lapses with a decision saying so, and the region shows it no more.
        grown = acts.decide_scaling(
            DecideScalingInput(
                region=AWS, at=at + timedelta(seconds=10), observed=observed(8), state=result.state
            )
        )
        assert [d.kind.value for d in grown.decisions] == ["none", "scale_up"]
        region = (await stage.http.get(f"/v1/regions/{AWS}")).json()
        assert region["burst_advised"] is False and region["burst_reason"] is None
        kinds = [
            i["kind"] for i in (await stage.http.get(f"/v1/regions/{AWS}/scaling")).json()["items"]
        ]
        assert sorted(kinds) == ["burst", "burst", "none", "scale_up"]
