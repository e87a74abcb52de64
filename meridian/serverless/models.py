"""A region's serverless capacity as the regions file declares it (`serverless:`).

A region may declare one serverless capacity: its `kind`, the account's limits, the pod
sizes the cloud rounds requests up to, prices and a typical cold start. Whatever the file
leaves out comes from the kind's defaults (`kinds.KIND_DEFAULTS`), so after validation
every field is set. Errors name the field (`regions.0.serverless.max_pods`), which the
API turns into a 422 the same way as a task body's.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.serverless.kinds import COMMON_DEFAULTS, KIND_DEFAULTS, ServerlessKind

GIB = 1024**3


def _quantity_text(value: Any) -> Any:
    # YAML gives numbers for "cpu: 2" or "max_cpu: 0.5"; Kubernetes quantities are text.
    if isinstance(value, bool):
        raise ValueError("must be a Kubernetes quantity (e.g. 500m, 2, 256Mi), not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity")
        return repr(value) if isinstance(value, float) else str(value)
    return value


def _cpu(value: str) -> str:
    if parse_cpu_millis(value) <= 0:
        raise ValueError(f"{value!r} must be a positive CPU quantity, e.g. 250m or 2")
    return value


def _memory(value: str) -> str:
    if parse_memory_bytes(value) <= 0:
        raise ValueError(f"{value!r} must be a positive memory quantity, e.g. 512Mi or 2Gi")
    return value


def _memory_or_zero(value: str) -> str:
    if parse_memory_bytes(value) < 0:
        raise ValueError(f"{value!r} must be a memory quantity of 0 or more, e.g. 256Mi")
    return value


def _checked(check: Any) -> Any:
    return BeforeValidator(lambda v: check(_quantity_text(v)))


Cpu = Annotated[str, _checked(_cpu)]
Memory = Annotated[str, _checked(_memory)]
MemoryOrZero = Annotated[str, _checked(_memory_or_zero)]


class PodSizeOption(BaseModel):
    """Allowed pod sizes: each CPU value with each allowed memory value.

    CPU is a list (`cpu: ["0.25"]`) or a range (`cpu_min`, `cpu_max`, `cpu_step`); memory
    likewise (`memory: [512Mi, 1Gi]` or `memory_min`, `memory_max`, `memory_step`).
    `memory_per_cpu_min/max` (GiB per vCPU) bound the memory for each CPU value, as clouds
    with a ratio rule state it (CCI: 2 to 8 GiB per vCPU).
    """

    model_config = ConfigDict(extra="forbid")

    cpu: list[Cpu] | None = None
    cpu_min: Cpu | None = None
    cpu_max: Cpu | None = None
    cpu_step: Cpu | None = None
    memory: list[Memory] | None = None
    memory_min: Memory | None = None
    memory_max: Memory | None = None
    memory_step: Memory | None = None
    memory_per_cpu_min: Annotated[float, Field(gt=0)] | None = None
    memory_per_cpu_max: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_form_each(self) -> PodSizeOption:
        _one_form("cpu", self.cpu, (self.cpu_min, self.cpu_max, self.cpu_step), parse_cpu_millis)
        _one_form(
            "memory",
            self.memory,
            (self.memory_min, self.memory_max, self.memory_step),
            parse_memory_bytes,
        )
        low, high = self.memory_per_cpu_min, self.memory_per_cpu_max
        if low is not None and high is not None and low > high:
            raise ValueError("memory_per_cpu_min must not exceed memory_per_cpu_max")
        return self

    def cpu_choices(self) -> list[int]:
        """The allowed CPU values in millicores, smallest first."""
        if self.cpu is not None:
            return sorted(parse_cpu_millis(c) for c in self.cpu)
        assert self.cpu_min is not None and self.cpu_max is not None and self.cpu_step
        return _steps(
            parse_cpu_millis(self.cpu_min),
            parse_cpu_millis(self.cpu_max),
            parse_cpu_millis(self.cpu_step),
        )

    def memory_for(self, cpu_millis: int, need_bytes: int) -> int | None:
        """The smallest allowed memory of at least `need_bytes` with this CPU, or None."""
        low = need_bytes
        high: float = math.inf
        if self.memory_per_cpu_min is not None:
            low = max(low, math.ceil(self.memory_per_cpu_min * GIB * cpu_millis / 1000))
        if self.memory_per_cpu_max is not None:
            high = self.memory_per_cpu_max * GIB * cpu_millis / 1000
        if self.memory is not None:
            fits = [m for m in map(parse_memory_bytes, self.memory) if m >= low]
            chosen = min(fits) if fits else None
        else:
            assert self.memory_min and self.memory_max and self.memory_step
            start, stop = parse_memory_bytes(self.memory_min), parse_memory_bytes(self.memory_max)
            step = parse_memory_bytes(self.memory_step)
            chosen = start if low <= start else start + math.ceil((low - start) / step) * step
            if chosen > stop:
                chosen = None
        if chosen is None or chosen > high:
            return None
        return chosen


def _one_form(
    name: str, listed: list[str] | None, ranged: tuple[str | None, ...], parse: Any
) -> None:
    given = [v is not None for v in ranged]
    if listed is not None:
        if any(given):
            raise ValueError(f"give {name} (a list) or {name}_min/_max/_step, not both")
        if not listed:
            raise ValueError(f"{name} must list at least one value")
        return
    if not all(given):
        raise ValueError(f"give {name} (a list) or all of {name}_min, {name}_max, {name}_step")
    low, high = parse(ranged[0]), parse(ranged[1])
    if low > high:
        raise ValueError(f"{name}_min must not exceed {name}_max")


def _steps(start: int, stop: int, step: int) -> list[int]:
    return list(range(start, stop + 1, step))


class ServerlessConfig(BaseModel):
    """One region's serverless capacity; every field not given comes from its kind."""

    model_config = ConfigDict(extra="forbid")

    kind: ServerlessKind
    # Declared but switched off (the fleet file says so per region): nodes only.
    enabled: bool = True
    max_pods: Annotated[int, Field(ge=1)]
    max_cpu: Cpu
    max_memory: Memory
    pod_sizes: Annotated[list[PodSizeOption], Field(min_length=1)]
    # Added to the pod's memory request before rounding (Fargate: its kubelet and proxy).
    memory_overhead: MemoryOrZero
    price_per_vcpu_hour: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    price_per_gib_hour: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    currency: Annotated[str, Field(min_length=1, max_length=8)]
    cold_start_seconds: Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)]
    # Fargate: the namespaces the profile selects (a burst pod must run in one of them).
    namespaces: list[str]
    # GKE: the compute class burst pods select.
    compute_class: str | None = None
    # ECI: steer with the pod label ("label") or the virtual node's selector and
    # toleration ("virtual-node"); both are documented.
    eci_steering: Literal["label", "virtual-node"] | None = None
    # CCI: enforce (only CCI) or auto (the scheduler may still pick a node); Meridian has
    # already decided to burst when it steers, hence enforce by default.
    cci_policy: Literal["enforce", "auto"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            kind = ServerlessKind(str(data.get("kind")))
        except ValueError:
            return data  # the kind field's own error names the accepted kinds
        return {**COMMON_DEFAULTS, **KIND_DEFAULTS[kind], **data}

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not value.isalpha() or not value.isupper():
            raise ValueError("currency must be an ISO 4217 code such as USD or CNY")
        return value

    @property
    def max_cpu_millis(self) -> int:
        return parse_cpu_millis(self.max_cpu)

    @property
    def max_memory_bytes(self) -> int:
        return parse_memory_bytes(self.max_memory)

    @property
    def memory_overhead_bytes(self) -> int:
        return parse_memory_bytes(self.memory_overhead)
