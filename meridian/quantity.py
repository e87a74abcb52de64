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
