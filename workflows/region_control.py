"""RegionControlWorkflow: one per region (id `meridian-region-control-<region>`), keeping
the region's water level in band.

Each tick: observe the region through its unit worker (nodes, pods, pools), decide with
the pure scaling policy in a local activity (which reads the mode, persists decisions
and the water level, and tells placement whether the region is near its ceiling), then
carry out the decisions in `auto` mode — cordon, drain, uncordon, resize pools, move
tasks off nodes about to go (a burst is carried out by the decide activity itself: it
publishes the region's burst advisory). The policy's memory (cooldowns, streaks, nodes it cordoned)
travels through continue-as-new, so the history stays short and nothing is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import options

with workflow.unsafe.imports_passed_through():
    from activities.scaling import ScalingCentralActivities, ScalingUnitActivities
    from meridian.scaling import Decision, DecisionKind, ScalingState
    from meridian.scaling.contracts import (
        REGION_CONTROL_WORKFLOW,
        DecideScalingInput,
        DecideScalingResult,
        DrainNodeInput,
        DrainNodeResult,
        MoveTasksInput,
        NodeActionInput,
        NodeActionResult,
        ObserveRegionInput,
        RecordOutcomeInput,
        RegionControlInput,
        RegionControlStatus,
        RemoveNodesInput,
        ScalePoolInput,
    )

# One attempt of a node or pool action; retries (options.region) get as long again.
# They are idempotent (absolute sizes, cordon flags, named nodes), so retrying is safe;
# throttling providers set next_retry_delay themselves.
ACTION_SECONDS = 60.0

InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")
# A ScalingUnitActivities method, taken by reference.
UnitAction = Callable[[ScalingUnitActivities, InputT], ResultT]


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
            observed = await workflow.execute_activity_method(
                ScalingUnitActivities.observe_region_nodes,
                ObserveRegionInput(region=region),
                # Bounds the wait for a unit worker that stopped polling, too: a tick
                # whose observation fails within it is skipped (the next one observes
                # again), and the region monitor is the one that judges the region.
                **options.region(region, within=inp.observe_timeout_seconds),
            )
        except ActivityError as err:
            self.status.last_error = f"observe failed: {err.cause or err}"[:300]
            workflow.logger.warning("region %s: %s", region, self.status.last_error)
            return None
        now = workflow.now()
        decided = await workflow.execute_local_activity_method(
            ScalingCentralActivities.decide_scaling,
            DecideScalingInput(region=region, at=now, observed=observed, state=state, quiet=quiet),
            **options.local(each=30),
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
                await self._cordon(region, decision.target)
            elif decision.kind == DecisionKind.UNCORDON:
                await self._uncordon(region, decision.target)
            elif decision.kind == DecisionKind.DRAIN:
                # Cordon again (a no-op when done) so a re-drain never evicts pods onto
                # a node that someone uncordoned meanwhile.
                await self._cordon(region, decision.target)
                await self._move(region, decision)
                await self._drain(region, decision.target)
            elif decision.kind == DecisionKind.MOVE_TASKS:
                await self._move(region, decision)
            elif decision.kind == DecisionKind.SCALE_UP:
                await self._scale(region, decision)
            elif decision.kind == DecisionKind.SCALE_DOWN:
                await self._scale_down(region, decision)
            # BURST needs nothing here: decide_scaling already published the region's
            # burst advisory, which is all a burst does (meridian/scaling/burst.py).
        except ActivityError as err:
            message = str(err.cause or err)
            workflow.logger.warning(
                "region %s: %s %s failed: %s", region, decision.kind, decision.target, message
            )
            await workflow.execute_local_activity_method(
                ScalingCentralActivities.record_scaling_outcome,
                RecordOutcomeInput(
                    region=region, at=workflow.now(), decision=decision, error=message
                ),
                **options.local(each=30),
            )

    async def _unit(self, action: UnitAction[InputT, ResultT], region: str, arg: InputT) -> ResultT:
        """A node or pool action on the region's unit worker."""
        return await workflow.execute_activity_method(
            action, arg, **options.region(region, within=2 * ACTION_SECONDS, each=ACTION_SECONDS)
        )

    async def _cordon(self, region: str, node: str) -> NodeActionResult:
        return await self._unit(
            ScalingUnitActivities.cordon_node, region, NodeActionInput(region=region, node=node)
        )

    async def _uncordon(self, region: str, node: str) -> NodeActionResult:
        return await self._unit(
            ScalingUnitActivities.uncordon_node, region, NodeActionInput(region=region, node=node)
        )

    async def _drain(self, region: str, node: str) -> DrainNodeResult:
        return await self._unit(
            ScalingUnitActivities.drain_node, region, DrainNodeInput(region=region, node=node)
        )

    async def _move(self, region: str, decision: Decision) -> None:
        if not decision.task_ids:
            return
        prefix = decision.move_reason or "scale-down"
        await workflow.execute_local_activity_method(
            ScalingCentralActivities.move_tasks,
            MoveTasksInput(
                region=region,
                node=decision.target,
                task_ids=decision.task_ids,
                reason=f"{prefix}: {decision.reason}",
            ),
            **options.local(each=60),
        )

    async def _scale(self, region: str, decision: Decision) -> None:
        if decision.pool is None or decision.desired_after is None:
            return
        await self._unit(
            ScalingUnitActivities.scale_pool,
            region,
            ScalePoolInput(region=region, pool=decision.pool, desired=decision.desired_after),
        )

    async def _scale_down(self, region: str, decision: Decision) -> None:
        if not decision.nodes:
            await self._scale(region, decision)
            return
        removable: list[str] = []
        for node in decision.nodes:
            # Cordon, then look again: a task may have landed after the observation,
            # and a node with a running Meridian task is never removed.
            await self._cordon(region, node)
            drained = await self._drain(region, node)
            if drained.skipped_tasks:
                await self._uncordon(region, node)
                workflow.logger.info("region %s: keep %s, a task landed on it", region, node)
                continue
            removable.append(node)
        if removable and decision.pool is not None:
            await self._unit(
                ScalingUnitActivities.remove_nodes,
                region,
                RemoveNodesInput(region=region, pool=decision.pool, nodes=removable),
            )

    @workflow.query(name="status")
    def current_status(self) -> RegionControlStatus:
        return self.status
