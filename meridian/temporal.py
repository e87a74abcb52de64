"""Connecting to Temporal the same way everywhere: one data converter for all."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from meridian.settings import Settings

log = logging.getLogger(__name__)

# A live worker long-polls at least once a minute; the server remembers pollers for
# minutes after they stop, so only those seen within this window count.
POLLER_FRESH_SECONDS = 90.0


async def connect(settings: Settings, *, attempts: int = 30, delay: float = 1.0) -> Client:
    """Connect, retrying while the server starts (the dev server takes a moment)."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=pydantic_data_converter,
            )
        except RuntimeError as exc:  # the SDK raises RuntimeError on connection failure
            last = exc
            await asyncio.sleep(delay)
    raise RuntimeError(f"cannot reach Temporal at {settings.temporal_address}: {last}")


async def recent_pollers(client: Client, queue: str, *, timeout: float = 2.0) -> int | None:
    """Workers that polled the activity task queue `queue` lately, as Temporal's
    task-queue description lists them; None when Temporal does not answer in time."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    try:
        answer = await asyncio.wait_for(
            client.workflow_service.describe_task_queue(request), timeout=timeout
        )
    except (RPCError, RuntimeError, TimeoutError) as exc:
        log.info("describing task queue %s failed: %s", queue, exc)
        return None
    fresh_after = datetime.now(UTC).timestamp() - POLLER_FRESH_SECONDS
    return sum(
        1
        for poller in answer.pollers
        if not poller.HasField("last_access_time")
        or poller.last_access_time.ToDatetime(tzinfo=UTC).timestamp() >= fresh_after
    )
