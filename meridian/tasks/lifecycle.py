"""What TaskWorkflow decides, as pure functions: no Temporal, no I/O, no clock.

The workflow (workflows/task.py) drives an attempt and asks these what the news means:
- `judge_observation`: a JobObservation about the current attempt → how it ended, or
  what to do next (confirm a "missing" by reading, record RUNNING);
- `infra_failure_end`: an InfraFailure signal → how the attempt ended;
- `under_failover`: the task's failover policy applied to an infrastructure failure;
- `after_app_failure`: the retry policy applied to an application failure;
- `is_final_failure`: a Kubernetes refusal that ends the task (the same spec is refused
  everywhere).

Texts returned here are what the task's history shows: change them knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from meridian.kube.contracts import FailureKind, JobObservation, JobPhase
from meridian.kube.errors import FINAL_FAILURE_TYPES
from meridian.tasks.contracts import InfraFailure, TaskProgress
from meridian.tasks.spec import FailoverPolicy, RetryPolicy, TaskStatus


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    APP_FAILED = "app_failed"
    INFRA_FAILED = "infra_failed"
    STOP = "stop"
    REPLACE = "replace"


@dataclass
class AttemptEnd:
    outcome: Outcome
    reason: str
    exit_code: int | None = None
    region_down: bool = False
    exclude_region: bool = True


# -- observations ------------------------------------------------------------------------


@dataclass
class Judgement:
    """What one observation means for the current attempt."""

    end: AttemptEnd | None = None
    # The highest resourceVersion seen for the attempt, this observation included.
    resource_version: int = 0
    # A sweep says the Job is gone: confirm with our own read before acting on hearsay.
    confirm_missing: bool = False
    # The Job runs and the task is not yet recorded RUNNING.
    running: bool = False


def judge_observation(
    obs: JobObservation, progress: TaskProgress, *, now: datetime, unschedulable_seconds: float
) -> Judgement:
    seen = progress.last_resource_version
    # Fencing: anything about another attempt's Job is history, not news.
    if obs.attempt != progress.attempt or obs.job_name != progress.job_name:
        return Judgement(resource_version=seen)
    if obs.resource_version and obs.resource_version < seen:
        return Judgement(resource_version=seen)
    verdict = Judgement(resource_version=max(seen, obs.resource_version))
    if obs.phase is JobPhase.SUCCEEDED:
        verdict.end = AttemptEnd(Outcome.SUCCEEDED, f"Job {obs.job_name} completed in {obs.region}")
    elif obs.phase is JobPhase.FAILED:
        verdict.end = _failed(obs)
    elif obs.phase is JobPhase.MISSING:
        if obs.source == "backstop":
            verdict.end = AttemptEnd(
                Outcome.INFRA_FAILED, f"Job {obs.job_name} disappeared from {obs.region}"
            )
        else:
            verdict.confirm_missing = True
    elif (end := _unschedulable_too_long(obs, now, unschedulable_seconds)) is not None:
        verdict.end = end
    elif obs.phase is JobPhase.RUNNING and progress.status is not TaskStatus.RUNNING:
        verdict.running = True
    return verdict


def _failed(obs: JobObservation) -> AttemptEnd:
    if obs.failure_kind is FailureKind.INFRASTRUCTURE:
        return AttemptEnd(
            Outcome.INFRA_FAILED,
            f"{obs.reason or 'infrastructure failure'} in {obs.region}"
            + (f" on node {obs.node_name}" if obs.node_name else ""),
        )
    detail = f"exit code {obs.exit_code}" if obs.exit_code is not None else (obs.reason or "failed")
    return AttemptEnd(
        Outcome.APP_FAILED, f"Job {obs.job_name} failed: {detail}", exit_code=obs.exit_code
    )


def _unschedulable_too_long(
    obs: JobObservation, now: datetime, unschedulable_seconds: float
) -> AttemptEnd | None:
    if obs.unschedulable_since is None:
        return None
    waited = (now - obs.unschedulable_since).total_seconds()
    if waited < unschedulable_seconds:
        return None
    return AttemptEnd(
        Outcome.INFRA_FAILED,
        f"Job unschedulable in {obs.region} for {int(waited)}s"
        + (f": {obs.message}" if obs.message else ""),
    )


def infra_failure_end(failure: InfraFailure, progress: TaskProgress) -> AttemptEnd | None:
    """None when the failure is about another region or another attempt."""
    if failure.region != progress.region:
        return None
    if failure.attempt is not None and failure.attempt != progress.attempt:
        return None
    return AttemptEnd(
        Outcome.INFRA_FAILED,
        failure.reason,
        region_down=failure.region_down,
        exclude_region=failure.exclude_region,
    )


# -- policies ----------------------------------------------------------------------------


@dataclass
class FailoverVerdict:
    """`end` to act on (None: keep following the attempt), and a note to record once
    when the task starts waiting for its region."""

    end: AttemptEnd | None
    waiting_note: str | None = None


def under_failover(end: AttemptEnd | None, failover: FailoverPolicy) -> FailoverVerdict:
    """`failover: never`: wait out a dead region, rerun in place otherwise."""
    if end is None or end.outcome is not Outcome.INFRA_FAILED:
        return FailoverVerdict(end)
    if failover is not FailoverPolicy.NEVER:
        return FailoverVerdict(end)
    if end.region_down:
        return FailoverVerdict(None, waiting_note=f"failover: never; waiting: {end.reason}")
    return FailoverVerdict(
        AttemptEnd(Outcome.REPLACE, f"{end.reason} (failover: never; rerun in place)")
    )


@dataclass
class RetryVerdict:
    """After an application failure: fail the task with `message`, or retry after
    `backoff_seconds`."""

    final: bool
    message: str = ""
    backoff_seconds: float = 0.0


def after_app_failure(
    end: AttemptEnd, retry: RetryPolicy, *, attempt: int, app_failures: int
) -> RetryVerdict:
    """`app_failures` counts this failure too."""
    if app_failures >= retry.max_attempts:
        return RetryVerdict(
            final=True,
            message=f"{end.reason} (attempt {attempt}; "
            f"{app_failures} of {retry.max_attempts} attempts failed)",
        )
    return RetryVerdict(final=False, backoff_seconds=retry.backoff_for(app_failures))


def is_final_failure(error_type: str) -> bool:
    """A Kubernetes refusal that the same spec meets in any region (invalid, forbidden):
    the task's own failure, never a reason to move it."""
    return error_type in FINAL_FAILURE_TYPES
