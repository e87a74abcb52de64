"""The scale bench finds a task's failover signal across its continue-as-new chain, on
the real Temporal dev server: a task that rolled over after the signal (the move's own
new run, or a settled roll-over) still has its "signalled" mark."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.scale import first_signals

SIGNAL = "infra_failure"


@workflow.defn(name="RollsOverAfterSignals")
class RollsOverAfterSignals:
    """Continues as new after each signal, `rounds` times, then waits for good."""

    def __init__(self) -> None:
        self.signals = 0

    @workflow.run
    async def run(self, rounds: int) -> None:
        await workflow.wait_condition(lambda: self.signals > 0 or rounds == 0)
        if rounds > 0:
            workflow.continue_as_new(rounds - 1)
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=SIGNAL)
    def infra_failure(self, _reason: str) -> None:
        self.signals += 1


async def test_the_signal_is_found_in_an_earlier_run(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    queue = f"signals-{uuid.uuid4().hex[:8]}"
    before = f"before-{uuid.uuid4().hex[:8]}"
    rolled = f"rolled-{uuid.uuid4().hex[:8]}"
    quiet = f"quiet-{uuid.uuid4().hex[:8]}"
    # Unsandboxed: the sandbox would re-import this module, and the bench with it.
    async with Worker(
        client,
        task_queue=queue,
        workflows=[RollsOverAfterSignals],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        # Signalled before `after`: that signal is not the outage's, and is not found.
        early = await client.start_workflow(
            RollsOverAfterSignals.run,
            1,
            id=before,
            task_queue=queue,
            run_timeout=timedelta(minutes=5),
        )
        await early.signal(SIGNAL, "earlier")
        await asyncio.sleep(1.1)
        after = time.time()
        # Started before `after`, signalled after it, then continued as new twice more.
        handle = await client.start_workflow(
            RollsOverAfterSignals.run,
            2,
            id=rolled,
            task_queue=queue,
            run_timeout=timedelta(minutes=5),
        )
        await client.start_workflow(
            RollsOverAfterSignals.run,
            0,
            id=quiet,
            task_queue=queue,
            run_timeout=timedelta(minutes=5),
        )
        signalled = time.time()
        await handle.signal(SIGNAL, "region down")
        await _wait_for_runs(client, rolled, 2)
        await asyncio.sleep(2.5)  # the latest run's signal is clearly a later one
        await client.get_workflow_handle(rolled).signal(SIGNAL, "again")
        await _wait_for_runs(client, rolled, 3)

        found = await first_signals(client, [before, rolled, quiet], SIGNAL, after)

    assert set(found) == {rolled}
    # The first signal after `after`, from the first run, not the latest run's.
    assert abs(found[rolled] - signalled) < 2.0


async def _wait_for_runs(client: Client, workflow_id: str, runs: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        count = 0
        async for _ in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
            count += 1
        if count >= runs:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} did not reach {runs} runs")
