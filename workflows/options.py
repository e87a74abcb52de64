"""Activity options, one helper per role, each with one retry policy.

Every workflow calls its activities through these, so the same kind of call retries the
same way everywhere:

- `local`: the central worker's own work (database writes, placement, assessments),
  as local activities: retried with a short capped backoff until `within` runs out
  (unbounded by default: a database that is down is waited for, never given up on).
- `region`: work on a region's unit worker (Job create/read/delete, sweeps, node and
  pool actions), scheduled on that region's task queue. `within` bounds the whole call
  including the wait for a worker to take it: a region whose worker stopped polling
  never starts it, and the caller moves on. Final Kubernetes failures (invalid,
  forbidden) are not retried.
- `health`: a probe. One attempt: a probe that fails *is* the answer, and the next tick
  probes again. `start_within` catches a worker that is not polling; `finish_within`
  catches an API that does not answer.

Return values are keyword arguments for `workflow.execute_activity_method` and
`workflow.execute_local_activity_method`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from meridian.kube.errors import FINAL_FAILURE_TYPES
    from meridian.queues import region_health_queue, region_task_queue

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
)
REGION_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=300),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    non_retryable_error_types=list(FINAL_FAILURE_TYPES),
)
HEALTH_RETRY = RetryPolicy(maximum_attempts=1)


class LocalOptions(TypedDict, total=False):
    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


class RegionOptions(TypedDict, total=False):
    task_queue: str
    schedule_to_close_timeout: timedelta
    schedule_to_start_timeout: timedelta
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


def local(*, each: float = 30.0, within: float | None = None) -> LocalOptions:
    """`each`: one attempt's limit; `within`: all attempts' (None: keep trying)."""
    options = LocalOptions(start_to_close_timeout=timedelta(seconds=each), retry_policy=LOCAL_RETRY)
    if within is not None:
        options["schedule_to_close_timeout"] = timedelta(seconds=within)
    return options


def region(
    name: str, *, within: float, each: float | None = None, start_within: float | None = None
) -> RegionOptions:
    """On `name`'s task queue; `within`: the whole call, waiting for a worker included;
    `start_within`: how long a worker may take to pick it up (a call whose work may take
    longer than `within` allows a plain call, yet whose worker must answer as soon)."""
    options = RegionOptions(
        task_queue=region_task_queue(name),
        schedule_to_close_timeout=timedelta(seconds=within),
        retry_policy=REGION_RETRY,
    )
    if each is not None:
        options["start_to_close_timeout"] = timedelta(seconds=each)
    if start_within is not None:
        options["schedule_to_start_timeout"] = timedelta(seconds=start_within)
    return options


def health(name: str, *, start_within: float, finish_within: float) -> RegionOptions:
    """A probe on `name`'s health queue, apart from its Job work (a backlog of creates
    must not make a busy region look dead)."""
    return RegionOptions(
        task_queue=region_health_queue(name),
        schedule_to_start_timeout=timedelta(seconds=start_within),
        start_to_close_timeout=timedelta(seconds=finish_within),
        retry_policy=HEALTH_RETRY,
    )
