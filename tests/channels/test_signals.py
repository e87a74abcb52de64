"""Signalling tasks: a finished or unknown workflow is a quiet False, not an error."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from meridian.channels.signals import signal_task, signal_tasks
from meridian.tasks.contracts import SIGNAL_STOP, StopRequest


async def test_unknown_workflow_is_false_not_an_error(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    assert await signal_task(client, "no-such-task", SIGNAL_STOP, StopRequest()) is False
    targets = [(f"no-such-{i}", StopRequest()) for i in range(5)]
    assert await signal_tasks(client, targets, SIGNAL_STOP, concurrency=2) == 0
