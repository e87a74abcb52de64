"""RegionControlWorkflow: one per region (id `meridian-region-control-<region>`), keeping
the region's water level in band.

Each tick: observe the region through its unit worker (nodes, pods, pools), decide with
the pure scaling policy in a local activity (which reads the mode, persists decisions
and the water level, and tells placement whether the region is near its ceiling), then
carry out the decisions in `auto` mode — cordon, drain, uncordon, resize pools, move
tasks off nodes about to go. The policy's memory (cooldowns, streaks, nodes it cordoned)
travels through continue-as-new, so the history stays short and nothing is forgotten.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from meridian.queues import region_task_queue
    from meridian.scaling import Decision, DecisionKind, ScalingState
    from meridian.scaling.contracts import (
        REGION_CONTROL_WORKFLOW,
        DecideScalingInput,
        DecideScalingResult,
        DrainNodeInput,
        DrainNodeResult,
        MoveTasksInput,
        MoveTasksResult,
        NodeActionInput,
        NodeActionResult,
        ObserveRegionInput,
        ObserveRegionResult,
        PoolActionResult,
        RecordOutcomeInput,
        RecordOutcomeResult,
        RegionControlInput,
        RegionControlStatus,
        RemoveNodesInput,
        ScalePoolInput,
    )

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=10,
)
# One observation per tick: a failed one is simply skipped (the next tick observes
# again), and the region monitor is the one that judges the region's health.
OBSERVE_RETRY = RetryPolicy(maximum_attempts=1)
# Node and pool changes are idempotent (absolute sizes, cordon flags, named nodes), so
# retrying them is safe; throttling providers set next_retry_delay themselves.
ACTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=15),
    maximum_attempts=4,
)
ACTION_TIMEOUT = timedelta(seconds=60)

ResultT = TypeVar("ResultT", bound=BaseModel)


@workflow.defn(name=REGION_CONTROL_WORKFLOW)
class RegionControlWorkflow:
    def __init__(self) -> None:
        self.status = RegionControlStatus(region="")

    @workflow.run
    async def run(self, inp: RegionControlInput) -> None:
        self.status = RegionControlStatus(region=inp.region)
        state, quiet, tick = inp.state, list(inp.quiet), inp.tick_seconds
        for _ in range(inp.ticks_before_rollover):
            decided = await self._tick(inp, state, quiet)
            if decided is not None:
                state, quiet, tick = decided.state, decided.quiet, decided.tick_seconds
            await workflow.sleep(timedelta(seconds=tick))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            inp.model_copy(update={"state": state, "quiet": quiet, "tick_seconds": tick})
        )

    async def _tick(
        self, inp: RegionControlInput, state: ScalingState, quiet: list[str]
    ) -> DecideScalingResult | None:
        region = inp.region
        self.status.ticks += 1
        try:
            observed: ObserveRegionResult = await workflow.execute_activity(
                "observe_region_nodes",
                ObserveRegionInput(region=region),
                result_type=ObserveRegionResult,
                task_queue=region_task_queue(region),
                # Bounds the wait for a unit worker that stopped polling, too.
                schedule_to_close_timeout=timedelta(seconds=inp.observe_timeout_seconds),
                retry_policy=OBSERVE_RETRY,
            )
        except ActivityError as err:
            self.status.last_error = f"observe failed: {err.cause or err}"[:300]
            workflow.logger.warning("region %s: %s", region, self.status.last_error)
            return None
        now = workflow.now()
        decided: DecideScalingResult = await workflow.execute_local_activity(
            "decide_scaling",
            DecideScalingInput(region=region, at=now, observed=observed, state=state, quiet=quiet),
            result_type=DecideScalingResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        )
        self.status.mode = decided.mode
        self.status.water_level = decided.water_level
        self.status.last_tick_at = now
        self.status.last_error = None
        for decision in decided.decisions:
            if decision.applies:
                await self._carry_out(region, decision)
        return decided

    # -- carrying out decisions ------------------------------------------------------------

    async def _carry_out(self, region: str, decision: Decision) -> None:
        self.status.actions += 1
        try:
            if decision.kind == DecisionKind.CORDON:
                await self._node_action("cordon_node", region, decision.target)
            elif decision.kind == DecisionKind.UNCORDON:
                await self._node_action("uncordon_node", region, decision.target)
            elif decision.kind == DecisionKind.DRAIN:
                # Cordon again (a no-op when done) so a re-drain never evicts pods onto
                # a node that someone uncordoned meanwhile.
                await self._node_action("cordon_node", region, decision.target)
                await self._move(region, decision)
                await self._drain(region, decision.target)
            elif decision.kind == DecisionKind.MOVE_TASKS:
                await self._move(region, decision)
            elif decision.kind == DecisionKind.SCALE_UP:
                await self._scale(region, decision)
            elif decision.kind == DecisionKind.SCALE_DOWN:
                await self._scale_down(region, decision)
        except ActivityError as err:
            message = str(err.cause or err)
            workflow.logger.warning(
                "region %s: %s %s failed: %s", region, decision.kind, decision.target, message
            )
            await workflow.execute_local_activity(
                "record_scaling_outcome",
                RecordOutcomeInput(
                    region=region, at=workflow.now(), decision=decision, error=message
                ),
                result_type=RecordOutcomeResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LOCAL_RETRY,
            )

    async def _unit(
        self, name: str, region: str, arg: BaseModel, result_type: type[ResultT]
    ) -> ResultT:
        result: ResultT = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            task_queue=region_task_queue(region),
            schedule_to_close_timeout=ACTION_TIMEOUT * 2,
            start_to_close_timeout=ACTION_TIMEOUT,
            retry_policy=ACTION_RETRY,
        )
        return result

    async def _node_action(self, name: str, region: str, node: str) -> None:
        await self._unit(name, region, NodeActionInput(region=region, node=node), NodeActionResult)

    async def _drain(self, region: str, node: str) -> DrainNodeResult:
        return await self._unit(
            "drain_node", region, DrainNodeInput(region=region, node=node), DrainNodeResult
        )

    async def _move(self, region: str, decision: Decision) -> None:
        if not decision.task_ids:
            return
        prefix = decision.move_reason or "scale-down"
        await workflow.execute_local_activity(
            "move_tasks",
            MoveTasksInput(
                region=region,
                node=decision.target,
                task_ids=decision.task_ids,
                reason=f"{prefix}: {decision.reason}",
            ),
            result_type=MoveTasksResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=LOCAL_RETRY,
        )

    async def _scale(self, region: str, decision: Decision) -> None:
        if decision.pool is None or decision.desired_after is None:
            return
        await self._unit(
            "scale_pool",
            region,
            ScalePoolInput(region=region, pool=decision.pool, desired=decision.desired_after),
            PoolActionResult,
        )

    async def _scale_down(self, region: str, decision: Decision) -> None:
        if not decision.nodes:
            await self._scale(region, decision)
            return
        removable: list[str] = []
        for node in decision.nodes:
            # Cordon, then look again: a task may have landed after the observation,
            # and a node with a running Meridian task is never removed.
            await self._node_action("cordon_node", region, node)
            drained = await self._drain(region, node)
            if drained.skipped_tasks:
                await self._node_action("uncordon_node", region, node)
                workflow.logger.info("region %s: keep %s, a task landed on it", region, node)
                continue
            removable.append(node)
        if removable and decision.pool is not None:
            await self._unit(
                "remove_nodes",
                region,
                RemoveNodesInput(region=region, pool=decision.pool, nodes=removable),
                PoolActionResult,
            )

    @workflow.query(name="status")
    def current_status(self) -> RegionControlStatus:
        return self.status
