"""Kubernetes resource quantities as integers Meridian can add and compare."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity


def _parse(value: str | int | float) -> Decimal:
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from exc


def parse_cpu_millis(value: str | int | float) -> int:
    """'500m' -> 500, '2' -> 2000. Raises ValueError on anything else."""
    return int((_parse(value) * 1000).to_integral_value())


def parse_memory_bytes(value: str | int | float) -> int:
    """'256Mi' -> 268435456. Raises ValueError on anything else."""
    return int(_parse(value).to_integral_value())


def format_cpu(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def format_memory(num_bytes: int) -> str:
    for suffix, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if num_bytes % size == 0 and num_bytes >= size:
            return f"{num_bytes // size}{suffix}"
    return str(num_bytes)
