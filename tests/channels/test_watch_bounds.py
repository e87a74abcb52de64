"""The Job watch keeps a long-lived unit worker's memory flat and loses no Job's phase.

The cluster here is a script fed through the watcher's two blocking seams (the list and
the watch stream), so that thousands of events cost milliseconds; the stream itself
runs in the watcher's reader thread exactly as the real one does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, cast

from meridian.channels.watch import JobWatcher
from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.gateway import JobGateway
from meridian.kube.labels import LABEL_ATTEMPT, LABEL_TASK_ID
from meridian.settings import ChannelSettings

Event = dict[str, Any]


def _job(name: str, rv: int, phase: str) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase == "running":
        status = {"active": 1, "ready": 1}
    elif phase == "succeeded":
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    elif phase == "failed":
        status = {
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        }
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": str(rv),
            "labels": {LABEL_TASK_ID: name, LABEL_ATTEMPT: "1"},
        },
        "status": status,
    }


def _event(kind: str, name: str, rv: int, phase: str = "running") -> Event:
    return {"type": kind, "object": _job(name, rv, phase)}


class _Pods:
    """The gateway's one call the watch makes itself: a failed Job's pods."""

    def job_pods(self, region: str, namespace: str, job_name: str) -> list[dict[str, Any]]:
        terminated = {"exitCode": 3, "reason": "Error"}
        return [
            {
                "metadata": {"name": f"{job_name}-pod"},
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [{"name": "task", "state": {"terminated": terminated}}],
                },
            }
        ]


class _ScriptedWatcher(JobWatcher):
    """A JobWatcher whose cluster answers from a script: list pages, then watch streams."""

    pages: list[list[tuple[list[dict[str, Any]], str]]]
    streams: list[Iterator[Event]]

    def _list_blocking(self) -> list[tuple[list[dict[str, Any]], str]]:
        return self.pages.pop(0)

    def _stream_blocking(self) -> Iterator[Event]:
        for event in self.streams.pop(0):
            if self._stop_flag.is_set():
                return
            yield event


def _watcher(
    report: Any,
    pages: list[list[tuple[list[dict[str, Any]], str]]],
    streams: list[Iterator[Event]],
    limits: ChannelSettings,
) -> _ScriptedWatcher:
    watcher = _ScriptedWatcher(
        region="r1",
        gateway=cast(JobGateway, _Pods()),
        namespace="meridian",
        report=report,
        limits=limits,
    )
    watcher.pages = pages
    watcher.streams = streams
    return watcher


class _Reports:
    def __init__(self) -> None:
        self.seen: list[JobObservation] = []
        self.open = asyncio.Event()
        self.open.set()

    async def __call__(self, obs: JobObservation) -> None:
        await self.open.wait()
        self.seen.append(obs)

    def last_phase(self) -> dict[str, JobPhase]:
        return {obs.job_name: obs.phase for obs in self.seen}


async def _run(watcher: JobWatcher, cycles: int) -> None:
    await asyncio.wait_for(watcher.run(asyncio.Event(), max_cycles=cycles), timeout=30)


async def test_a_stalled_loop_holds_the_reader_back_and_every_last_phase_arrives() -> None:
    jobs, pending_limit = 400, 20
    read = 0

    def stream() -> Iterator[Event]:
        nonlocal read
        rv = 100
        for i in range(jobs):
            for kind, phase in (("ADDED", "pending"), ("MODIFIED", "running")):
                rv += 1
                read += 1
                yield _event(kind, f"job-{i}", rv, phase)
            rv += 1
            read += 1
            yield _event("MODIFIED", f"job-{i}", rv, "failed" if i % 2 else "succeeded")

    reports = _Reports()
    reports.open.clear()  # the event loop side is busy: nothing it is given gets handled
    watcher = _watcher(
        reports,
        [[([], "100")]],
        [stream()],
        ChannelSettings(watch_pending_jobs=pending_limit, watch_seen_jobs=1000),
    )
    task = asyncio.create_task(_run(watcher, cycles=1))
    # Three events a Job; a Job or two in the loop's hands, `pending_limit` waiting.
    most = 3 * (pending_limit + 4)
    deadline = time.monotonic() + 2.0
    while read <= most and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert read <= most, f"the reader ran {read} events ahead of a stalled loop"
    reports.open.set()
    await task

    assert read == 3 * jobs
    expected = {f"job-{i}": JobPhase.FAILED if i % 2 else JobPhase.SUCCEEDED for i in range(jobs)}
    assert reports.last_phase() == expected
    failed = [obs for obs in reports.seen if obs.phase is JobPhase.FAILED]
    assert {obs.exit_code for obs in failed} == {3}  # the pods were read, as before
    # Every Job has ended and been reported: nothing left to remember.
    assert watcher.remembered_jobs == 0


async def test_remembered_jobs_are_capped_and_an_evicted_job_still_reports() -> None:
    jobs, seen_limit = 300, 50

    def stream() -> Iterator[Event]:
        rv = 100
        for i in range(jobs):
            rv += 1
            yield _event("ADDED", f"job-{i}", rv, "pending")
            rv += 1
            yield _event("MODIFIED", f"job-{i}", rv, "running")
        # The first Job has long been forgotten (it only ran); its end is still news.
        yield _event("MODIFIED", "job-0", rv + 1, "succeeded")

    reports = _Reports()
    watcher = _watcher(
        reports,
        [[([], "100")]],
        [stream()],
        ChannelSettings(watch_pending_jobs=10, watch_seen_jobs=seen_limit),
    )
    await _run(watcher, cycles=1)
    assert watcher.remembered_jobs <= seen_limit
    last = reports.last_phase()
    assert len(last) == jobs
    assert last.pop("job-0") is JobPhase.SUCCEEDED
    assert set(last.values()) == {JobPhase.RUNNING}


async def test_a_deletion_does_not_swallow_the_phase_before_it() -> None:
    # A Job that fails and is deleted at once, while the loop is busy: its events wait
    # together, and the failure must still be reported before the Job is forgotten.
    def stream() -> Iterator[Event]:
        yield _event("MODIFIED", "blocker", 101, "running")
        yield _event("MODIFIED", "doomed", 102, "running")
        yield _event("MODIFIED", "doomed", 103, "failed")
        yield _event("DELETED", "doomed", 104, "failed")
        yield _event("MODIFIED", "removed", 105, "running")
        yield _event("DELETED", "removed", 106, "running")

    reports = _Reports()
    reports.open.clear()
    watcher = _watcher(
        reports,
        [[([], "100")]],
        [stream()],
        ChannelSettings(watch_pending_jobs=10, watch_seen_jobs=100),
    )
    task = asyncio.create_task(_run(watcher, cycles=1))
    await asyncio.sleep(0.2)  # let the reader queue everything behind the first report
    reports.open.set()
    await task
    last = reports.last_phase()
    assert last["doomed"] is JobPhase.FAILED
    assert last["removed"] is JobPhase.RUNNING
    assert watcher.remembered_jobs == 1  # only the blocker, still running


async def test_a_relist_after_gone_does_not_report_finished_jobs_again() -> None:
    finished = [_job(f"job-{i}", 10 + i, "succeeded") for i in range(10)]
    newcomer = _job("job-new", 30, "succeeded")
    gone: Event = {"type": "ERROR", "object": {"code": 410, "message": "too old"}}
    reports = _Reports()
    watcher = _watcher(
        reports,
        [[(finished, "20")], [([*finished, newcomer], "30")]],
        [iter([gone]), iter([])],
        ChannelSettings(),
    )
    await _run(watcher, cycles=2)
    assert watcher.stats.gone == 1 and watcher.stats.lists == 2
    names = [obs.job_name for obs in reports.seen]
    assert sorted(names) == sorted([*(f"job-{i}" for i in range(10)), "job-new"])
    assert watcher.remembered_jobs == 0
