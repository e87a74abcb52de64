"""Quota settings (a default, overridden per unit) and the pure quota checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from meridian.settings import Settings
from meridian.tenancy.bucket import Bucket, take
from meridian.tenancy.quotas import (
    QuotaExceeded,
    QuotaSettings,
    TaskTooLarge,
    UnitQuota,
    Usage,
    check_active,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_a_unit_overrides_only_the_fields_it_names() -> None:
    quotas = QuotaSettings.model_validate(
        {
            "default": {"max_active_tasks": 100, "cpu": "64", "submissions_per_second": 5},
            "units": {"ads": {"max_active_tasks": 50}, "bank": {"cpu": None}},
        }
    )
    ads = quotas.for_unit("ads")
    assert (ads.max_active_tasks, ads.cpu, ads.submissions_per_second) == (50, "64", 5)
    # An explicit null lifts that quota for the unit; the rest still comes from default.
    bank = quotas.for_unit("bank")
    assert (bank.max_active_tasks, bank.cpu) == (100, None)
    assert quotas.for_unit("other") == quotas.default


def test_quotas_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERIDIAN_QUOTAS__DEFAULT__MAX_ACTIVE_TASKS", "20")
    monkeypatch.setenv("MERIDIAN_QUOTAS__DEFAULT__MEMORY", "64Gi")
    monkeypatch.setenv("MERIDIAN_QUOTAS__UNITS__ADS__MAX_ACTIVE_TASKS", "3")
    monkeypatch.setenv("MERIDIAN_QUOTAS__UNITS__ADS__MEMORY", "unlimited")
    quotas = Settings().quotas
    assert quotas.for_unit("ads").max_active_tasks == 3
    assert quotas.for_unit("ads").memory is None
    assert quotas.for_unit("bank").max_active_tasks == 20
    assert quotas.for_unit("bank").memory_bytes == 64 << 30


def test_unlimited_by_default() -> None:
    quota = Settings().quotas.for_unit("anyone")
    assert quota == UnitQuota()
    check_active("anyone", quota, Usage(tasks=10**6, cpu_millis=10**9), Usage.of("64", "1Ti"))


@pytest.mark.parametrize(
    "fields",
    [
        {"cpu": "lots"},
        {"cpu": "0"},
        {"memory": "-1Gi"},
        {"max_active_tasks": 0},
        {"submissions_per_second": 0},
        {"submission_burst": 0},
        {"unknown": 1},
    ],
)
def test_nonsense_quotas_are_refused_at_start_up(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UnitQuota.model_validate(fields)


def test_over_max_active_tasks_names_the_quota_and_its_numbers() -> None:
    quota = UnitQuota(max_active_tasks=50)
    check_active("ads", quota, Usage(tasks=49), Usage.of("1", "1Gi"))
    with pytest.raises(QuotaExceeded) as caught:
        check_active("ads", quota, Usage(tasks=50), Usage.of("1", "1Gi"), retry_after_seconds=7)
    exc = caught.value
    assert (exc.quota, exc.retry_after_seconds) == ("max_active_tasks", 7)
    assert str(exc) == "business unit ads: 50 active tasks, quota max_active_tasks 50"


def test_cpu_and_memory_count_the_sum_of_active_requests() -> None:
    quota = UnitQuota(cpu="4", memory="8Gi")
    used = Usage(tasks=3, cpu_millis=3500, memory_bytes=6 << 30)
    check_active("ads", quota, used, Usage.of("500m", "2Gi"))  # exactly full: fits
    with pytest.raises(QuotaExceeded) as cpu:
        check_active("ads", quota, used, Usage.of("501m", "1Gi"))
    assert cpu.value.quota == "cpu"
    assert str(cpu.value) == (
        "business unit ads: active tasks request cpu 3500m, this task 501m, quota cpu 4"
    )
    with pytest.raises(QuotaExceeded) as memory:
        check_active("ads", quota, used, Usage.of("100m", "3Gi"))
    assert memory.value.quota == "memory"
    assert "memory 6Gi, this task 3Gi, quota memory 8Gi" in str(memory.value)


def test_a_task_larger_than_the_whole_quota_is_not_a_wait_but_an_error() -> None:
    # Retrying could never help: it is answered 422 naming the field, not 429.
    quota = UnitQuota(cpu="2", memory="1Gi")
    with pytest.raises(TaskTooLarge) as caught:
        check_active("ads", quota, Usage(), Usage.of("3", "2Gi"))
    assert [e.loc for e in caught.value.errors] == [
        ("job", "resources", "cpu"),
        ("job", "resources", "memory"),
    ]
    assert "quota cpu 2" in caught.value.errors[0].msg


def test_token_bucket_allows_a_burst_then_one_per_interval() -> None:
    bucket = Bucket(tokens=2.0, refilled_at=T0)
    first = take(bucket, T0, rate=0.5, burst=2)
    second = take(first.bucket, T0, rate=0.5, burst=2)
    third = take(second.bucket, T0, rate=0.5, burst=2)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.retry_after_seconds == 2  # one token every 2 s
    assert third.bucket == second.bucket  # a refusal takes nothing
    later = take(second.bucket, T0 + timedelta(seconds=2), rate=0.5, burst=2)
    assert later.allowed
    # Idle time refills up to the burst, never beyond.
    idle = take(Bucket(tokens=0.0, refilled_at=T0), T0 + timedelta(hours=1), rate=0.5, burst=2)
    assert idle.allowed and idle.bucket.tokens == pytest.approx(1.0)


def test_token_bucket_survives_a_clock_that_steps_back() -> None:
    # Replicas' clocks differ a little: an earlier `now` refills nothing, takes normally.
    bucket = Bucket(tokens=1.0, refilled_at=T0)
    result = take(bucket, T0 - timedelta(seconds=5), rate=1, burst=5)
    assert result.allowed and result.bucket == Bucket(tokens=0.0, refilled_at=T0)
