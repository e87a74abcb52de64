"""Signalling task workflows, the one way every channel does it.

A workflow that has finished meanwhile needs no news, so NOT_FOUND is quiet; any other
RPC failure (Temporal unreachable, say) is logged as a warning — the sweeps repair what
a lost signal missed, but an operator should see that signals are being lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)


async def signal_task(client: Client, task_id: str, signal: str, arg: Any) -> bool:
    """Send one signal; False when the workflow is gone or Temporal refused it."""
    try:
        await client.get_workflow_handle(task_id).signal(signal, arg)
        return True
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.debug("signal %s to %s dropped: workflow finished", signal, task_id)
        else:
            log.warning("signal %s to %s failed: %s", signal, task_id, exc)
        return False


async def signal_tasks(
    client: Client, targets: Iterable[tuple[str, Any]], signal: str, *, concurrency: int = 50
) -> int:
    """Send `signal` to many tasks at once, at most `concurrency` in flight; how many landed."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(task_id: str, arg: Any) -> bool:
        async with semaphore:
            return await signal_task(client, task_id, signal, arg)

    results = await asyncio.gather(*(one(task_id, arg) for task_id, arg in targets))
    return sum(results)
