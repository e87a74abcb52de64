"""Kubernetes resource quantities as integers Meridian can add and compare.

The parser is Meridian's own, not the Kubernetes client's `kubernetes.utils.quantity`:
importing that imports the whole `kubernetes` package, 10 MiB of RSS in the central
worker and the API, which parse quantities but never talk to a cluster. It reads the
grammar of apimachinery's `resource.Quantity` -- an optional sign, a decimal number (`1`,
`1.5`, `.5`, `5.`), then at most one of a binary suffix (Ki Mi Gi Ti Pi Ei), a decimal
suffix (n u m k M G T P E) or a decimal exponent (`e3`, `E-2`) -- and computes the value
the way the client does, so a valid quantity parses to exactly the client's Decimal
(tests/test_quantity.py checks it against the client). It is stricter than the client on
what is not a quantity: `NaN`, `Infinity`, padding spaces, `1K` or `1e3Mi` are refused,
where the client lets Python's Decimal or its suffix table accept them.
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<decimal>[numkMGTPE])|(?P<exponent>[eE][+-]?[0-9]+))?"
)

# Powers of 1024 (binary suffixes) and of 1000 (decimal suffixes), as in the client.
_POWERS = {
    "n": -3,
    "u": -2,
    "m": -1,
    "k": 1,
    "K": 1,
    "M": 2,
    "G": 3,
    "T": 4,
    "P": 5,
    "E": 6,
}


def _parse_text(text: str) -> Decimal:
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(text)
    number, binary, decimal = match["number"], match["binary"], match["decimal"]
    if binary is not None:
        return Decimal(number) * (Decimal(1024) ** Decimal(_POWERS[binary[0]]))
    if decimal is not None:
        return Decimal(number) * (Decimal(1000) ** Decimal(_POWERS[decimal]))
    # A bare number or one with an exponent: Decimal reads both exactly.
    return Decimal(text)


def _parse(value: str | int | float) -> Decimal:
    if isinstance(value, (int, float, Decimal)):
        return Decimal(value)
    if not isinstance(value, str):
        raise TypeError(type(value).__name__)
    return _parse_text(value)


def _refused(value: object) -> ValueError:
    return ValueError(f"{value!r} is not a Kubernetes quantity")


# No resource comes near 10^24 of its unit; a larger value is refused before it is made
# an int, which for a quantity such as "1e999999" takes half a minute of CPU: one
# request must not be able to tie up the API that long.
_LARGEST_EXPONENT = 24


def _integral(value: Decimal) -> int:
    if value.is_finite() and value and value.adjusted() >= _LARGEST_EXPONENT:
        raise ValueError(f"out of range: at least 1e{_LARGEST_EXPONENT}")
    return int(value.to_integral_value())


def parse_quantity(value: str | int | float) -> Decimal:
    """'1.5Gi' -> Decimal(1610612736), the client's value. Raises ValueError on anything else."""
    try:
        return _parse(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _refused(value) from exc


def parse_cpu_millis(value: str | int | float) -> int:
    """'500m' -> 500, '2' -> 2000. Raises ValueError on anything else."""
    try:
        return _integral(_parse(value) * 1000)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _refused(value) from exc


def parse_memory_bytes(value: str | int | float) -> int:
    """'256Mi' -> 268435456. Raises ValueError on anything else."""
    try:
        return _integral(_parse(value))
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _refused(value) from exc
