"""The task lifecycle's decisions, without Temporal: what each piece of news means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meridian.kube.contracts import FailureKind, JobObservation, JobPhase
from meridian.tasks.contracts import InfraFailure, TaskProgress
from meridian.tasks.lifecycle import (
    AttemptEnd,
    Outcome,
    after_app_failure,
    infra_failure_end,
    is_final_failure,
    judge_observation,
    under_failover,
)
from meridian.tasks.spec import FailoverPolicy, RetryPolicy, TaskStatus

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
REGION = "aws-us-east-1"


def _progress(**overrides: Any) -> TaskProgress:
    base: dict[str, Any] = {
        "status": TaskStatus.SCHEDULING,
        "attempt": 2,
        "region": REGION,
        "job_name": "t-1-a2",
        "last_resource_version": 10,
    }
    base.update(overrides)
    return TaskProgress(**base)


def _obs(phase: JobPhase, **overrides: Any) -> JobObservation:
    base: dict[str, Any] = {
        "task_id": "t-1",
        "attempt": 2,
        "region": REGION,
        "job_name": "t-1-a2",
        "phase": phase,
        "resource_version": 12,
    }
    base.update(overrides)
    return JobObservation(**base)


def _judge(obs: JobObservation, progress: TaskProgress | None = None) -> Any:
    return judge_observation(obs, progress or _progress(), now=NOW, unschedulable_seconds=60)


# -- observations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stale",
    [
        {"attempt": 1, "job_name": "t-1-a1"},  # an earlier attempt's Job
        {"job_name": "t-1-a9"},  # not this attempt's Job
        {"resource_version": 9},  # older than what was seen
    ],
)
def test_news_about_another_attempt_or_older_news_changes_nothing(stale: dict[str, Any]) -> None:
    judged = _judge(_obs(JobPhase.SUCCEEDED, **stale))
    assert judged.end is None
    assert judged.resource_version == 10
    assert not judged.running and not judged.confirm_missing


def test_success_ends_the_attempt_and_advances_the_resource_version() -> None:
    judged = _judge(_obs(JobPhase.SUCCEEDED))
    assert judged.end == AttemptEnd(Outcome.SUCCEEDED, f"Job t-1-a2 completed in {REGION}")
    assert judged.resource_version == 12


def test_an_observation_without_resource_version_is_news() -> None:
    judged = _judge(_obs(JobPhase.SUCCEEDED, resource_version=0))
    assert judged.end is not None and judged.end.outcome is Outcome.SUCCEEDED
    assert judged.resource_version == 10


def test_non_zero_exit_is_the_applications_failure() -> None:
    judged = _judge(_obs(JobPhase.FAILED, exit_code=3, failure_kind=FailureKind.APPLICATION))
    assert judged.end == AttemptEnd(Outcome.APP_FAILED, "Job t-1-a2 failed: exit code 3", 3)


def test_failure_without_exit_code_names_the_reason() -> None:
    judged = _judge(_obs(JobPhase.FAILED, reason="DeadlineExceeded"))
    assert judged.end is not None
    assert judged.end.reason == "Job t-1-a2 failed: DeadlineExceeded"


def test_lost_node_is_the_infrastructures_failure() -> None:
    judged = _judge(
        _obs(
            JobPhase.FAILED,
            reason="NodeLost",
            node_name="node-7",
            failure_kind=FailureKind.INFRASTRUCTURE,
        )
    )
    assert judged.end == AttemptEnd(Outcome.INFRA_FAILED, f"NodeLost in {REGION} on node node-7")


def test_missing_is_believed_from_our_own_read_only() -> None:
    ours = _judge(_obs(JobPhase.MISSING, source="backstop"))
    assert ours.end == AttemptEnd(Outcome.INFRA_FAILED, f"Job t-1-a2 disappeared from {REGION}")
    hearsay = _judge(_obs(JobPhase.MISSING, source="running-sweep"))
    assert hearsay.end is None
    assert hearsay.confirm_missing


def test_unschedulable_moves_only_after_the_limit() -> None:
    young = _judge(_obs(JobPhase.PENDING, unschedulable_since=NOW - timedelta(seconds=59)))
    assert young.end is None
    old = _judge(
        _obs(
            JobPhase.PENDING,
            unschedulable_since=NOW - timedelta(seconds=61),
            message="0/3 nodes have enough cpu",
        )
    )
    assert old.end == AttemptEnd(
        Outcome.INFRA_FAILED, f"Job unschedulable in {REGION} for 61s: 0/3 nodes have enough cpu"
    )


def test_running_is_recorded_once() -> None:
    assert _judge(_obs(JobPhase.RUNNING)).running
    assert not _judge(_obs(JobPhase.RUNNING), _progress(status=TaskStatus.RUNNING)).running


def test_infra_failure_concerns_only_the_current_attempt_in_its_region() -> None:
    progress = _progress()
    assert infra_failure_end(InfraFailure(region="azure-eastus", reason="down"), progress) is None
    assert infra_failure_end(InfraFailure(region=REGION, reason="x", attempt=1), progress) is None
    end = infra_failure_end(
        InfraFailure(region=REGION, reason="region down", region_down=True), progress
    )
    assert end == AttemptEnd(Outcome.INFRA_FAILED, "region down", region_down=True)


# -- policies ----------------------------------------------------------------------------


def test_failover_auto_moves_on_infrastructure_failure() -> None:
    end = AttemptEnd(Outcome.INFRA_FAILED, "NodeLost", region_down=True)
    assert under_failover(end, FailoverPolicy.AUTO).end is end


def test_failover_never_waits_for_a_dead_region_and_reruns_in_place_otherwise() -> None:
    down = under_failover(
        AttemptEnd(Outcome.INFRA_FAILED, "region down", region_down=True), FailoverPolicy.NEVER
    )
    assert down.end is None
    assert down.waiting_note == "failover: never; waiting: region down"
    lost = under_failover(AttemptEnd(Outcome.INFRA_FAILED, "NodeLost"), FailoverPolicy.NEVER)
    assert lost.end == AttemptEnd(Outcome.REPLACE, "NodeLost (failover: never; rerun in place)")


def test_failover_policy_leaves_other_endings_alone() -> None:
    success = AttemptEnd(Outcome.SUCCEEDED, "done")
    assert under_failover(success, FailoverPolicy.NEVER).end is success
    assert under_failover(None, FailoverPolicy.NEVER).end is None


def test_retry_until_the_attempts_are_used_up() -> None:
    end = AttemptEnd(Outcome.APP_FAILED, "Job t-1-a2 failed: exit code 1", exit_code=1)
    policy = RetryPolicy(max_attempts=3, backoff_seconds=2, backoff_multiplier=3)
    first = after_app_failure(end, policy, attempt=1, app_failures=1)
    assert not first.final and first.backoff_seconds == 2
    second = after_app_failure(end, policy, attempt=2, app_failures=2)
    assert not second.final and second.backoff_seconds == 6
    third = after_app_failure(end, policy, attempt=4, app_failures=3)
    assert third.final
    # Attempts moved by infrastructure failures count in `attempt`, not in the policy's.
    assert third.message == "Job t-1-a2 failed: exit code 1 (attempt 4; 3 of 3 attempts failed)"


@pytest.mark.parametrize(
    ("error_type", "final"),
    [("KubeInvalid", True), ("KubeForbidden", True), ("KubeUnavailable", False), ("", False)],
)
def test_only_refusals_of_the_spec_itself_end_the_task(error_type: str, final: bool) -> None:
    assert is_final_failure(error_type) is final
