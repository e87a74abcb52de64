"""RegionMonitorWorkflow on the real dev server, with its activities faked: a unit
worker's suspect report makes it probe at once instead of at the next tick."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from meridian.queues import region_health_queue
from meridian.regions.contracts import (
    REGION_MONITOR_WORKFLOW,
    SIGNAL_REGION_SUSPECT,
    AssessRegionsInput,
    AssessRegionsResult,
    ProbeOutcome,
    RegionMonitorInput,
    RegionProbeInput,
    RegionProbeResult,
    RegionSuspect,
    SignalRegionTasksInput,
    SignalRegionTasksResult,
    TriggerSweepInput,
)
from workers.central import SANDBOX
from workflows.regions import RegionMonitorWorkflow

REGIONS = ["aws-x", "gcp-y"]


class FakeFleet:
    def __init__(self) -> None:
        self.reachable = dict.fromkeys(REGIONS, True)
        self.rounds: list[datetime] = []

    @activity.defn(name="probe_region")
    async def probe_region(self, inp: RegionProbeInput) -> RegionProbeResult:
        ok = self.reachable[inp.region]
        return RegionProbeResult(region=inp.region, reachable=ok, error=None if ok else "refused")

    @activity.defn(name="assess_regions")
    async def assess_regions(self, inp: AssessRegionsInput) -> AssessRegionsResult:
        self.rounds.append(inp.at)
        return AssessRegionsResult(
            states={p.region: "up" if p.reachable else "degraded" for p in inp.probes}
        )

    @activity.defn(name="signal_region_tasks")
    async def signal_region_tasks(self, inp: SignalRegionTasksInput) -> SignalRegionTasksResult:
        return SignalRegionTasksResult(signalled=0)

    @activity.defn(name="trigger_job_sweep")
    async def trigger_job_sweep(self, inp: TriggerSweepInput) -> bool:
        return True


async def _wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def _start_monitor(
    stack: AsyncExitStack,
    client: Client,
    fleet: FakeFleet,
    inp: RegionMonitorInput,
    *,
    probed: list[str],
) -> WorkflowHandle[Any, Any]:
    """The monitor on a queue of its own; `fleet` answers probes for the `probed` regions."""
    queue = f"monitor-{uuid.uuid4().hex[:8]}"
    await stack.enter_async_context(
        Worker(
            client,
            task_queue=queue,
            workflows=[RegionMonitorWorkflow],
            activities=[fleet.assess_regions, fleet.signal_region_tasks, fleet.trigger_job_sweep],
            workflow_runner=SANDBOX,
        )
    )
    for region in probed:
        await stack.enter_async_context(
            Worker(client, task_queue=region_health_queue(region), activities=[fleet.probe_region])
        )
    return await client.start_workflow(
        REGION_MONITOR_WORKFLOW, inp, id=f"monitor-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


async def test_suspect_report_triggers_a_probe_round_at_once(dev_env: WorkflowEnvironment) -> None:
    fleet = FakeFleet()
    async with AsyncExitStack() as stack:
        handle = await _start_monitor(
            stack,
            dev_env.client,
            fleet,
            # A tick far longer than the test: any second round comes from the report.
            RegionMonitorInput(regions=REGIONS, interval_seconds=600, probe_timeout_seconds=5),
            probed=REGIONS,
        )
        try:
            assert await _wait_for(lambda: len(fleet.rounds) == 1, timeout=20)
            await asyncio.sleep(0.5)
            assert len(fleet.rounds) == 1  # waiting out its interval

            fleet.reachable["aws-x"] = False
            await handle.signal(
                SIGNAL_REGION_SUSPECT, RegionSuspect(region="aws-x", reason="watch refused")
            )
            assert await _wait_for(lambda: len(fleet.rounds) == 2, timeout=20), fleet.rounds
            states = await handle.query("states")
            assert states == {"aws-x": "degraded", "gcp-y": "up"}
        finally:
            await handle.terminate("test over")


class HungFleet(FakeFleet):
    """aws-x's worker takes the probe and never answers; gcp-y has no worker at all."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[ProbeOutcome] = []

    @activity.defn(name="probe_region")
    async def probe_region(self, inp: RegionProbeInput) -> RegionProbeResult:
        await asyncio.sleep(30)
        raise AssertionError("the probe's own deadline ends it first")

    @activity.defn(name="assess_regions")
    async def assess_regions(self, inp: AssessRegionsInput) -> AssessRegionsResult:
        self.outcomes.extend(inp.probes)
        return await super().assess_regions(inp)


async def test_a_hung_probe_is_the_api_and_an_untaken_one_the_worker(
    dev_env: WorkflowEnvironment,
) -> None:
    fleet = HungFleet()
    async with AsyncExitStack() as stack:
        handle = await _start_monitor(
            stack,
            dev_env.client,
            fleet,
            RegionMonitorInput(
                regions=REGIONS,
                interval_seconds=600,
                probe_timeout_seconds=1,
                probe_api_timeout_seconds=2,
            ),
            probed=["aws-x"],
        )
        try:
            assert await _wait_for(lambda: len(fleet.outcomes) == 2, timeout=30)
        finally:
            await handle.terminate("test over")
    by_region = {o.region: o for o in fleet.outcomes}
    hung, absent = by_region["aws-x"], by_region["gcp-y"]
    assert not hung.reachable and hung.worker_answered
    assert hung.error == "probe did not finish within 2s"
    assert not absent.reachable and not absent.worker_answered
    assert absent.error is not None and absent.error.startswith("unit worker did not answer")
