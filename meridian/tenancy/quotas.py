"""Quotas per business unit (`MERIDIAN_QUOTAS__*`): a default, overridden per unit.

An *active* task is one that holds or will hold resources in a cluster: SCHEDULING or
RUNNING. A PENDING task runs nothing until it is started, so it counts against no quota
until then; starting it is checked like submitting a started one. What is counted:

- `max_active_tasks`: active tasks of the unit;
- `cpu`, `memory`: the sum of the active tasks' `job.resources` requests;
- `submissions_per_second` with `submission_burst`: a token bucket over new submissions.

Every field is unlimited when left out (or set to `none`), the default out of the box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from meridian.quantity import parse_cpu_millis, parse_memory_bytes

# Written in an env var or YAML, these mean "no limit" (an unset env var cannot say so).
UNLIMITED = frozenset({"", "none", "null", "unlimited"})


class UnitQuota(BaseModel):
    """One unit's limits; None is unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_active_tasks: int | None = Field(None, ge=1)
    # Kubernetes quantities: the most the unit's active tasks may request together.
    cpu: str | None = None
    memory: str | None = None
    # New submissions per second, refilled continuously, saved up to `submission_burst`
    # (default: one second's worth, at least 1).
    submissions_per_second: float | None = Field(None, gt=0)
    submission_burst: int | None = Field(None, ge=1)

    @field_validator("*", mode="before")
    @classmethod
    def _unlimited(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in UNLIMITED:
            return None
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        if value is not None and parse_cpu_millis(value) <= 0:
            raise ValueError("cpu must be a positive Kubernetes quantity, e.g. 64 or 500m")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and parse_memory_bytes(value) <= 0:
            raise ValueError("memory must be a positive Kubernetes quantity, e.g. 256Gi")
        return value

    @property
    def cpu_millis(self) -> int | None:
        return None if self.cpu is None else parse_cpu_millis(self.cpu)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else parse_memory_bytes(self.memory)

    @property
    def burst(self) -> int:
        if self.submission_burst is not None:
            return self.submission_burst
        return max(1, int(self.submissions_per_second or 1))

    @property
    def limits_active(self) -> bool:
        return (self.max_active_tasks, self.cpu, self.memory) != (None, None, None)


class QuotaSettings(BaseModel):
    default: UnitQuota = Field(default_factory=UnitQuota)
    # Business unit -> the fields it overrides; a field given as null lifts that quota.
    units: dict[str, UnitQuota] = Field(default_factory=dict)
    # Retry-After of a 429 on an active-task quota. When a running task will end is
    # unknown, so this is a polite polling interval, not a promise.
    retry_after_seconds: int = Field(10, ge=1)

    def for_unit(self, business_unit: str) -> UnitQuota:
        override = self.units.get(business_unit)
        if override is None:
            return self.default
        given = {name: getattr(override, name) for name in override.model_fields_set}
        return self.default.model_copy(update=given)


@dataclass(frozen=True)
class Usage:
    """Active tasks and what they request (or what one task would add)."""

    tasks: int = 0
    cpu_millis: int = 0
    memory_bytes: int = 0

    @classmethod
    def of(cls, cpu: str, memory: str) -> Usage:
        """One task requesting `cpu` and `memory`."""
        return cls(1, parse_cpu_millis(cpu), parse_memory_bytes(memory))

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.tasks + other.tasks,
            self.cpu_millis + other.cpu_millis,
            self.memory_bytes + other.memory_bytes,
        )


class QuotaExceeded(Exception):
    """Over a quota: answered 429 with Retry-After. Nothing was created or started."""

    def __init__(self, business_unit: str, quota: str, message: str, retry_after_seconds: int):
        super().__init__(f"business unit {business_unit}: {message}")
        self.business_unit = business_unit
        self.quota = quota
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class QuotaFieldError:
    loc: tuple[str, ...]
    msg: str


class TaskTooLarge(Exception):
    """The task alone requests more than its unit's whole quota: waiting cannot help, so
    this is a 422 naming the field, not a 429."""

    def __init__(self, errors: list[QuotaFieldError]):
        super().__init__("; ".join(e.msg for e in errors))
        self.errors = errors


def check_active(
    business_unit: str,
    quota: UnitQuota,
    used: Usage,
    task: Usage,
    *,
    retry_after_seconds: int = 10,
) -> None:
    """Raise TaskTooLarge or QuotaExceeded unless `task` fits beside `used`."""
    too_large = too_large_errors(business_unit, quota, task)
    if too_large:
        raise TaskTooLarge(too_large)

    def over(name: str, message: str) -> QuotaExceeded:
        return QuotaExceeded(business_unit, name, message, retry_after_seconds)

    limit = quota.max_active_tasks
    if limit is not None and used.tasks + task.tasks > limit:
        raise over("max_active_tasks", f"{used.tasks} active tasks, quota max_active_tasks {limit}")
    cpu = quota.cpu_millis
    if cpu is not None and used.cpu_millis + task.cpu_millis > cpu:
        raise over(
            "cpu",
            f"active tasks request cpu {format_cpu(used.cpu_millis)}, this task "
            f"{format_cpu(task.cpu_millis)}, quota cpu {quota.cpu}",
        )
    memory = quota.memory_bytes
    if memory is not None and used.memory_bytes + task.memory_bytes > memory:
        raise over(
            "memory",
            f"active tasks request memory {format_memory(used.memory_bytes)}, this task "
            f"{format_memory(task.memory_bytes)}, quota memory {quota.memory}",
        )


def too_large_errors(business_unit: str, quota: UnitQuota, task: Usage) -> list[QuotaFieldError]:
    errors: list[QuotaFieldError] = []
    cpu, memory = quota.cpu_millis, quota.memory_bytes
    if cpu is not None and task.cpu_millis > cpu:
        errors.append(
            QuotaFieldError(
                ("job", "resources", "cpu"),
                f"cpu {format_cpu(task.cpu_millis)} is more than business unit "
                f"{business_unit}'s whole quota cpu {quota.cpu}",
            )
        )
    if memory is not None and task.memory_bytes > memory:
        errors.append(
            QuotaFieldError(
                ("job", "resources", "memory"),
                f"memory {format_memory(task.memory_bytes)} is more than business unit "
                f"{business_unit}'s whole quota memory {quota.memory}",
            )
        )
    return errors


def format_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_memory(size: int) -> str:
    for suffix, shift in (("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if size and size % (1 << shift) == 0:
            return f"{size >> shift}{suffix}"
    return str(size)
