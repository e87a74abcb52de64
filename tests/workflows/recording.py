"""What the history recorders share: where histories go and how a recorder runs.

Each recorder (`python -m tests.workflows.record_*`) drives workflows against fake
activities on the time-skipping server and saves their histories for test_replay.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

from temporalio.testing import WorkflowEnvironment

from tests.support import start_time_skipping

HISTORIES = Path(__file__).parent / "histories"


def save(name: str, history_json: str) -> None:
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history_json)


def run(record: Callable[[WorkflowEnvironment], Awaitable[None]]) -> NoReturn:
    """Run one recorder on a fresh time-skipping server, then leave."""

    async def main() -> None:
        env = await start_time_skipping()
        try:
            await record(env)
        finally:
            await env.shutdown()

    asyncio.run(main())
    os._exit(0)  # skip the SDK's crash-prone interpreter finalisation
