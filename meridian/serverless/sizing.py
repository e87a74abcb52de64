"""Rounding a pod's requests up to the sizes a serverless cloud runs and bills.

Each cloud runs a pod on one of its sizes: at least the requests (plus the cloud's own
memory overhead, Fargate's 256 MiB), and bills that size, not the requests. Of the sizes
that fit, the cheapest is the one the cloud picks (every documented rule is "round up to
the nearest size"; the nearest is the cheapest where price grows with size).
"""

from __future__ import annotations

from pydantic import BaseModel

from meridian.serverless.models import GIB, ServerlessConfig

MIB = 1024**2


class BilledSize(BaseModel):
    """The size a pod is billed for: CPU in millicores, memory in bytes."""

    cpu_millis: int
    memory_bytes: int

    @property
    def cpu(self) -> str:
        return format_cpu(self.cpu_millis)

    @property
    def memory(self) -> str:
        return format_memory(self.memory_bytes)


class SizeError(ValueError):
    """No size of the capacity holds the requests (too large for the cloud's pods)."""


def round_up(config: ServerlessConfig, cpu_millis: int, memory_bytes: int) -> BilledSize:
    """The size the cloud runs a pod with these requests on (raises SizeError)."""
    need_memory = memory_bytes + config.memory_overhead_bytes
    best: tuple[float, int, int] | None = None
    for option in config.pod_sizes:
        for cpu in option.cpu_choices():
            if cpu < cpu_millis:
                continue
            memory = option.memory_for(cpu, need_memory)
            if memory is None:
                continue
            price = _hourly(config, cpu, memory)
            candidate = (price, cpu, memory)
            if best is None or candidate < best:
                best = candidate
            break  # a larger CPU of the same option costs more
    if best is None:
        raise SizeError(
            f"no {config.kind.value} pod size holds {format_cpu(cpu_millis)} CPU and "
            f"{format_memory(memory_bytes)} memory"
        )
    return BilledSize(cpu_millis=best[1], memory_bytes=best[2])


def requests_for(config: ServerlessConfig, size: BilledSize) -> tuple[str, str]:
    """The requests (cpu, memory) to give a pod so that it is billed exactly `size`: the
    size itself, less the memory the cloud adds on its own (else Fargate would add its
    256 MiB a second time and round up to the next size)."""
    memory = max(size.memory_bytes - config.memory_overhead_bytes, 1)
    return size.cpu, format_memory(memory)


def _hourly(config: ServerlessConfig, cpu_millis: int, memory_bytes: int) -> float:
    return (
        cpu_millis / 1000 * config.price_per_vcpu_hour
        + memory_bytes / GIB * config.price_per_gib_hour
    )


def format_cpu(millis: int) -> str:
    """'250m', '2': whole cores without a suffix, as Kubernetes prints them."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_memory(value: int) -> str:
    """'512Mi', '2Gi', or plain bytes when not a whole MiB (ACI's decimal steps)."""
    if value % GIB == 0:
        return f"{value // GIB}Gi"
    if value % MIB == 0:
        return f"{value // MIB}Mi"
    return str(value)
