"""Watch events lost: the compensating sweeps repair the missed transitions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubesim.control import AsyncKubesimControl
from meridian.kube.contracts import JobObservation
from tests.chaos.audit import Auditor, Clusters, expect, is_live, key_of
from tests.chaos.conftest import submit_all, uid
from tests.chaos.helpers import batch, sweeps, wait_until
from tests.integration.harness import Engine
from workers.unit import Signaller


@pytest.fixture(scope="module")
def engine_overrides() -> dict[str, Any]:
    # The backstop is pushed far out so that only the sweeps can repair what the watch
    # missed within the test's deadline: a pass proves the sweeps, not the timer.
    return {"status_backstop_seconds": 300.0}


@pytest.fixture
def lost_watch_signals(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[JobObservation]]:
    """Every signal the unit worker's watch sends is lost on its way to Temporal.

    That is what network jitter between a unit and the Temporal service looks like to
    the workflow; the watch believes it reported (and dedups), so it never resends.
    """
    lost: list[JobObservation] = []

    async def drop(self: Signaller, obs: JobObservation) -> None:
        lost.append(obs)

    monkeypatch.setattr(Signaller, "job_status", drop)
    yield lost


async def test_sweeps_repair_missed_completions_within_one_interval(
    chaos_engine: Engine,
    control: AsyncKubesimControl,
    clusters: Clusters,
    auditor: Auditor,
    lost_watch_signals: list[JobObservation],
) -> None:
    engine, http = chaos_engine, chaos_engine.http
    interval = max(
        engine.settings.sweeps.running_task_interval_seconds,
        engine.settings.sweeps.job_interval_seconds,
    )
    regions = engine.regions.names
    tasks = [uid("sw") for _ in range(16)]
    await submit_all(
        engine,
        [
            batch(t, "6s", data_source={"provider": p, "region": r})
            for i, t in enumerate(tasks)
            for p, r in [
                [
                    ("aws", "us-east-1"),
                    ("azure", "eastus"),
                    ("gcp", "europe-west1"),
                    ("alibaba", "cn-hangzhou"),
                ][i % 4]
            ]
        ],
    )
    # Dropped watch streams on top: the watchers reconnect (from their resourceVersion)
    # while their signals are lost anyway.
    for region in regions:
        await control.drop_watches(region)
    # RUNNING too is only learnt from a sweep now (running-task sweep: Job running,
    # database not).
    await wait_until(
        http,
        tasks,
        lambda t: t["status"] in ("RUNNING", "SUCCEEDED"),
        timeout=30 + interval,
        what="RUNNING",
    )
    # When did each Job really finish in its cluster? Then: SUCCEEDED by one interval
    # later (plus the round trip of a signal and a database write).
    finished: dict[str, float] = {}
    deadline = time.monotonic() + 30

    by_key = {key_of(t): t for t in tasks}  # the Jobs' task-id label is the key

    def finished_now() -> set[str]:
        done = set()
        for region in regions:
            for job in clusters.jobs(region):
                key = (job.metadata.labels or {}).get("meridian.io/task-id")
                if key in by_key and not is_live(job):
                    done.add(by_key[key])
        return done

    while len(finished) < len(tasks):
        assert time.monotonic() < deadline, f"Jobs did not finish: {set(tasks) - set(finished)}"
        for task_id in await asyncio.to_thread(finished_now):
            finished.setdefault(task_id, time.monotonic())
        await asyncio.sleep(0.25)
    wait_started = time.monotonic()
    succeeded = await wait_until(
        http, tasks, lambda t: t["status"] == "SUCCEEDED", timeout=interval + 15, what="SUCCEEDED"
    )
    for task_id, at in finished.items():
        lag = (wait_started + succeeded[task_id]) - at
        assert lag <= interval + 3.0, f"{task_id} repaired {lag:.1f}s after its Job ended"
    assert lost_watch_signals, "the watch never tried to signal: the fault was not injected"
    report = await auditor.audit(expect(tasks, "SUCCEEDED"), timeout=30)
    assert all(t["attempt"] == 1 for t in report.tasks.values())  # repaired, not re-run
    runs = await sweeps(http)
    signalled = sum(int(r["fixed"].get("signalled", 0)) for r in runs)
    assert signalled >= len(tasks), runs[:4]
    # Each run says what it cost: list requests in the regions, statements centrally
    # (a running-task sweep reads the active tasks of every region at least once).
    running = [r for r in runs if r["kind"] == "running-tasks"]
    assert running and all(r["db_queries"] > 0 for r in running), running[:2]
