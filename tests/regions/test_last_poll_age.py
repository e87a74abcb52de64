"""How long ago a worker polled a queue, as the real Temporal dev server says: what tells
a busy unit worker (its probe late, its queues polled) from a dead one."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from meridian.temporal import last_poll_age


@activity.defn(name="noop")
async def noop() -> None:
    return None


async def test_a_polled_queue_has_a_recent_poll_and_a_dead_worker_ages(
    dev_env: WorkflowEnvironment,
) -> None:
    client = dev_env.client
    queue, other = f"polled-{uuid.uuid4().hex[:8]}", f"never-{uuid.uuid4().hex[:8]}"
    assert await last_poll_age(client, [queue, other]) is None  # no poller listed
    async with Worker(client, task_queue=queue, activities=[noop]):
        await asyncio.sleep(1.0)
        age = await last_poll_age(client, [other, queue])
        assert age is not None and age < 3.0, age
    # The worker is gone: Temporal still lists it for minutes, with its last poll aging.
    await asyncio.sleep(2.5)
    age = await last_poll_age(client, [queue])
    assert age is not None and age >= 2.0, age
