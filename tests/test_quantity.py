"""Meridian's own quantity parser: the client's value for every quantity of the grammar,
a refusal for what is not one, and no `kubernetes` import in the central worker."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity as client_parse_quantity

from meridian.quantity import parse_cpu_millis, parse_memory_bytes, parse_quantity
from tests.conftest import REPO

_digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
_number = st.one_of(
    _digits,
    st.builds(lambda whole: f"{whole}.", _digits),
    st.builds(lambda whole, frac: f"{whole}.{frac}", _digits, _digits),
    st.builds(lambda frac: f".{frac}", _digits),
)
_suffix = st.one_of(
    st.just(""),
    st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]),
    st.sampled_from(["n", "u", "m", "k", "M", "G", "T", "P", "E"]),
    st.builds(
        lambda e, sign, exponent: f"{e}{sign}{exponent}",
        st.sampled_from(["e", "E"]),
        st.sampled_from(["", "+", "-"]),
        st.text(alphabet="0123456789", min_size=1, max_size=3),
    ),
)
quantities = st.builds(
    lambda sign, number, suffix: f"{sign}{number}{suffix}",
    st.sampled_from(["", "+", "-"]),
    _number,
    _suffix,
)


@given(quantities)
def test_a_quantity_parses_to_the_clients_value(text: str) -> None:
    ours, theirs = parse_quantity(text), client_parse_quantity(text)
    assert ours == theirs
    assert ours.as_tuple() == theirs.as_tuple()  # the same Decimal, exponent included
    for parse, value in ((parse_cpu_millis, theirs * 1000), (parse_memory_bytes, theirs)):
        if value and value.adjusted() >= 24:  # beyond any resource: refused
            with pytest.raises(ValueError, match="not a Kubernetes quantity"):
                parse(text)
        else:
            assert parse(text) == int(value.to_integral_value())


@pytest.mark.parametrize(
    "text", ["", "m", "1.2.3", "1ki", "1 Mi", " 1", "1x", "NaN", "Infinity", "1e", "--1"]
)
def test_what_is_not_a_quantity_is_refused_with_the_field_text(text: str) -> None:
    for parse in (parse_quantity, parse_cpu_millis, parse_memory_bytes):
        with pytest.raises(ValueError) as refused:
            parse(text)
        assert str(refused.value) == f"{text!r} is not a Kubernetes quantity"


@pytest.mark.parametrize(
    "text", ["1K", "1e3Mi", "1\n", "1_000", "١", "1.5e", "e3", ".", "+", "1Mii"]
)
def test_the_clients_laxer_readings_are_refused_too(text: str) -> None:
    # Python's Decimal or the client's suffix table accept these; Kubernetes does not.
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_memory_bytes(text)


@pytest.mark.parametrize(
    ("text", "millis", "nbytes"),
    [
        ("500m", 500, 0),
        ("2", 2000, 2),
        ("1.5", 1500, 2),  # memory rounds half to even, as the client's Decimal did
        (".5", 500, 0),
        ("5.", 5000, 5),
        ("256Mi", 268435456000, 268435456),
        ("1Gi", 1073741824000, 1073741824),
        ("1.5Gi", 1610612736000, 1610612736),
        ("2k", 2000000, 2000),
        ("1M", 1000000000, 1000000),
        ("1E", 10**21, 10**18),
        ("1e3", 1000000, 1000),
        ("1E-3", 1, 0),
        ("+1Ki", 1024000, 1024),
        ("-1", -1000, -1),
        ("100u", 0, 0),
    ],
)
def test_units(text: str, millis: int, nbytes: int) -> None:
    assert parse_cpu_millis(text) == millis
    assert parse_memory_bytes(text) == nbytes


def test_numbers_go_through_decimal_as_they_are() -> None:
    assert parse_cpu_millis(2) == 2000
    assert parse_cpu_millis(0.25) == 250
    assert parse_memory_bytes(1024) == 1024
    assert parse_quantity(0.5) == Decimal("0.5")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
            parse_memory_bytes(bad)


def test_an_overflow_is_refused_as_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_cpu_millis("1e999999")  # * 1000 overflows the Decimal context


@pytest.mark.parametrize("module", ["workers.central", "api.main"])
def test_the_processes_that_never_talk_to_a_cluster_do_not_import_the_client(
    module: str,
) -> None:
    # 10 MiB of RSS in the central worker and the API; a fresh interpreter, since this
    # test's own process has imported the client above.
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text", ["1e999999", "1e24", "1000000Ei", "-1e30"])
def test_a_quantity_beyond_any_resource_is_refused_at_once(text: str) -> None:
    # Made an int, "1e999999" alone would take half a minute of CPU.
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_memory_bytes(text)
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_cpu_millis(text)
    assert parse_memory_bytes("1e23") == 10**23
