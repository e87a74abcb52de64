"""The ceiling's workflows: the least a Temporal task can be (deterministic, tiny).

BareWorkflow runs one no-op activity. MinimalTaskWorkflow has a minimal task's shape —
place, create, wait for the Job's signal, record — as three ordinary activities and
one signal, with none of the engine's work inside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

RETRY = RetryPolicy(maximum_attempts=3)
TIMEOUT = timedelta(seconds=30)


@dataclass
class CeilingInput:
    workflow_id: str


@dataclass
class CeilingResult:
    ok: bool


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, inp: CeilingInput) -> CeilingResult:
        await workflow.execute_activity(
            "bench_noop", inp, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
        )
        return CeilingResult(ok=True)


@workflow.defn(name="BenchMinimalTaskWorkflow")
class MinimalTaskWorkflow:
    def __init__(self) -> None:
        self._done = False

    @workflow.signal(name="job_done")
    def job_done(self, inp: CeilingInput) -> None:
        self._done = True

    @workflow.run
    async def run(self, inp: CeilingInput) -> CeilingResult:
        for name in ("bench_place", "bench_create"):
            await workflow.execute_activity(
                name, inp, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
            )
        await workflow.wait_condition(lambda: self._done, timeout=timedelta(seconds=60))
        await workflow.execute_activity(
            "bench_record", inp, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
        )
        return CeilingResult(ok=self._done)
